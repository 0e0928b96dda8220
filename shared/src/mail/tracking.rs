//! First-party open and click tracking, for campaigns that opt in.
//!
//! The campaign's links are the literal `href="https://…"` values of its
//! HTML template, numbered in order of first appearance. Each becomes
//! `/t/c/{token}`, the token naming the contact, the campaign and the
//! link's number (never the URL: a click redirects only to the campaign's
//! own link, so the endpoint cannot be made an open redirect). Links built
//! with template expressions are left alone, as are the text part's links.
//! An open is a 1×1 image at `/t/o/{token}` at the end of the HTML body.

/// The campaign's trackable links, in order, each once.
pub fn trackable_links(html_template: &str) -> Vec<String> {
    let mut links: Vec<String> = Vec::new();
    let mut rest = html_template;
    while let Some(at) = find_href(rest) {
        rest = &rest[at..];
        let Some(end) = rest.find('"') else { break };
        let value = &rest[..end];
        rest = &rest[end..];
        let literal = !value.contains("{{") && !value.contains("{%");
        if literal && value.starts_with("https://") && !links.iter().any(|l| l == value) && links.len() < 1000 {
            links.push(value.to_owned());
        }
    }
    links
}

/// The byte offset just after the next whole-word `href="`.
fn find_href(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("href=\"") {
        let at = from + found;
        let before = at.checked_sub(1).map(|i| lower.as_bytes()[i]);
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Some(at + "href=\"".len());
        }
        from = at + 1;
    }
    None
}

/// The rendered HTML with each trackable link pointing at its click URL.
pub fn rewrite_links(html: &str, links: &[String], click_url: impl Fn(u16) -> String) -> String {
    let mut out = html.to_owned();
    for (index, link) in links.iter().enumerate() {
        let Ok(index) = u16::try_from(index) else { break };
        out = out.replace(&format!("href=\"{link}\""), &format!("href=\"{}\"", click_url(index)));
    }
    out
}

/// The rendered HTML with the open pixel before `</body>` (or at the end).
pub fn add_open_pixel(html: &str, pixel_url: &str) -> String {
    let pixel = format!("<img src=\"{pixel_url}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{pixel}{}", &html[..at], &html[at..]),
        None => format!("{html}\n{pixel}"),
    }
}

/// Where a click goes: the link as written in the template, with the one
/// HTML entity a URL attribute needs (`&amp;`) decoded.
pub fn redirect_target(link: &str) -> String {
    link.replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literal_https_hrefs_are_tracked_each_once() {
        let html = r#"<a href="https://clinic.example/book">Book</a> <a HREF="https://clinic.example/book">again</a>
            <a href="{{ unsubscribe_url }}">stop</a> <a href="mailto:desk@clinic.example">mail</a>
            <a data-href="https://x.example/not">x</a> <a href="https://clinic.example/flu?a=1&amp;b=2">Flu</a>"#;
        assert_eq!(trackable_links(html), ["https://clinic.example/book", "https://clinic.example/flu?a=1&amp;b=2"]);
    }

    #[test]
    fn links_are_rewritten_and_the_pixel_goes_before_the_body_end() {
        let links = vec!["https://clinic.example/book".to_owned()];
        let html = r#"<body><a href="https://clinic.example/book">Book</a></body>"#;
        let tracked =
            add_open_pixel(&rewrite_links(html, &links, |i| format!("https://t.example/c/{i}")), "https://t.example/o");
        assert_eq!(
            tracked,
            r#"<body><a href="https://t.example/c/0">Book</a><img src="https://t.example/o" width="1" height="1" alt="" style="display:block;border:0"></body>"#
        );
        assert_eq!(redirect_target("https://a.example/?x=1&amp;y=2"), "https://a.example/?x=1&y=2");
    }
}
