//! The template linter, run at campaign creation. It refuses what would put
//! PHI where it travels beyond the message body, or mark it unprotected:
//!
//! * a PHI attribute in the subject or preheader (SES copies the subject
//!   into every event; mail clients show the preheader in lists);
//! * a PHI attribute in any link or tracking parameter (URLs end up in
//!   proxies, logs and analytics);
//! * a link that is not https (the unsubscribe link is https by construction);
//! * a PHI attribute anywhere in a campaign not flagged as PHI-personalized;
//! * marketing mail without a visible unsubscribe link (an `<a>` with text
//!   whose href is `{{ unsubscribe_url }}`, and the URL in the text part) or
//!   without the sender's postal address (`{{ postal_address }}` in both
//!   parts), which CAN-SPAM requires and mailbox providers look for.
//!
//! Variables are found with minijinja's own parser, so `{{ first_name }}`,
//! `{{ first_name | upper }}` and `{% if conditions %}` all count as uses.

use std::collections::BTreeSet;

use minijinja::Environment;

use crate::domain::{InvalidField, TemplateSource};

/// Template variables that identify a patient or reveal health information.
pub const PHI_VARIABLES: [&str; 10] = [
    "first_name",
    "last_name",
    "age",
    "date_of_birth",
    "sex",
    "zip",
    "conditions",
    "medications",
    "journey_stage",
    "last_visit",
];

/// Attributes whose value holds a URL.
const URL_ATTRIBUTES: [&str; 4] = ["href", "src", "action", "background"];

/// The PHI variables a template snippet uses; a snippet that does not parse
/// on its own (a link cut through a `{% if %}`) is judged by the names it
/// mentions, which can only err on the side of refusing.
fn phi_used(snippet: &str) -> BTreeSet<&'static str> {
    let env = Environment::new();
    match env.template_from_str(snippet) {
        Ok(template) => {
            let used = template.undeclared_variables(false);
            PHI_VARIABLES.into_iter().filter(|v| used.contains(*v)).collect()
        }
        Err(_) => PHI_VARIABLES
            .into_iter()
            .filter(|v| snippet.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|word| word == *v))
            .collect(),
    }
}

/// Whether a template uses the variable `name` (its whole text, as minijinja parses it).
fn uses_variable(template: &str, name: &str) -> bool {
    match Environment::new().template_from_str(template) {
        Ok(parsed) => parsed.undeclared_variables(false).contains(name),
        Err(_) => false,
    }
}

/// Whether the HTML has an `<a href="{{ unsubscribe_url }}">` with visible text.
fn has_visible_unsubscribe_link(html: &str) -> bool {
    let compact: String = html.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    compact.match_indices("href=").any(|(at, _)| {
        let rest = compact[at + 5..].trim_start_matches(['"', '\'']);
        if !rest.starts_with("{{unsubscribe_url}}") {
            return false;
        }
        // The anchor's text: from the end of its opening tag to `</a`.
        let Some(open_end) = rest.find('>') else { return false };
        let inner = &rest[open_end + 1..];
        let text = inner.split("</a").next().unwrap_or_default();
        let mut visible = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => visible.push(c),
                _ => {}
            }
        }
        !visible.is_empty()
    })
}

/// CAN-SPAM's two requirements of commercial mail, checked in both parts.
fn check_marketing_footer(source: &TemplateSource) -> Result<(), InvalidField> {
    if !has_visible_unsubscribe_link(&source.html) {
        return Err(InvalidField::new(
            "template.html",
            "marketing mail needs a visible unsubscribe link: <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        ));
    }
    if !uses_variable(&source.text, "unsubscribe_url") {
        return Err(InvalidField::new(
            "template.text",
            "marketing mail needs the unsubscribe link: {{ unsubscribe_url }}",
        ));
    }
    for (field, body) in [("template.html", &source.html), ("template.text", &source.text)] {
        if !uses_variable(body, "postal_address") {
            return Err(InvalidField::new(
                field,
                "marketing mail needs the sender's postal address: {{ postal_address }}",
            ));
        }
    }
    Ok(())
}

fn names(used: &BTreeSet<&'static str>) -> String {
    used.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// The values of URL-bearing attributes in an HTML template.
fn html_links(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut links = Vec::new();
    for attribute in URL_ATTRIBUTES {
        let needle = format!("{attribute}=");
        let mut from = 0;
        while let Some(found) = lower[from..].find(&needle) {
            let at = from + found;
            from = at + needle.len();
            // Only a whole attribute name: `data-href=` and `xsrc=` are not links.
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                continue;
            }
            let rest = &html[from..];
            let value = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or_default(),
                _ => rest.split(|c: char| c.is_whitespace() || c == '>').next().unwrap_or_default(),
            };
            links.push(value.trim().to_owned());
        }
    }
    links
}

/// URLs written out in a text template: from `http://` or `https://` to the
/// next whitespace outside a `{{ … }}` expression.
fn text_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("http") {
        let start = from + found;
        let rest = &text[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            from = start + 4;
            continue;
        }
        let mut depth = 0usize;
        let mut end = rest.len();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{' || *n == '%') => depth += 1,
                '}' | '%' if depth > 0 && chars.peek().is_some_and(|(_, n)| *n == '}') => depth -= 1,
                c if c.is_whitespace() && depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        links.push(rest[..end].to_owned());
        from = start + end.max(4);
    }
    links
}

/// Whether a link target is acceptable without PHI concerns about transport:
/// https, mail and phone links, in-page anchors, or the unsubscribe URL
/// (which the sender builds from the https public base URL).
fn secure_target(link: &str) -> bool {
    let target = link.trim_start();
    let lower = target.to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with("tel:")
        || lower.starts_with('#')
        || target.replace(' ', "").starts_with("{{unsubscribe_url}}")
}

fn check_links(field: &str, links: &[String]) -> Result<(), InvalidField> {
    for link in links {
        let used = phi_used(link);
        if !used.is_empty() {
            return Err(InvalidField::new(
                field,
                format!("a link uses PHI attribute {}: links and tracking parameters must carry no PHI", names(&used)),
            ));
        }
        if !secure_target(link) {
            return Err(InvalidField::new(field, format!("link '{link}' must use https")));
        }
    }
    Ok(())
}

/// What the linter needs to know of the campaign besides its template.
#[derive(Debug, Clone, Copy, Default)]
pub struct LintContext {
    pub phi_personalized: bool,
    /// The campaign's purpose is marketing: the CAN-SPAM footer is required.
    pub marketing: bool,
}

/// Refuses a template that would leak PHI, or marketing mail without its
/// footer; the error names the field at fault and what is missing.
pub fn lint(source: &TemplateSource, context: LintContext) -> Result<(), InvalidField> {
    let phi_personalized = context.phi_personalized;
    let one_line_parts =
        [("template.subject", Some(&source.subject)), ("template.preheader", source.preheader.as_ref())];
    for (field, part) in one_line_parts {
        let used = part.map(|p| phi_used(p)).unwrap_or_default();
        if !used.is_empty() {
            return Err(InvalidField::new(
                field,
                format!("must not use PHI attribute {}: it is shown and copied outside the message body", names(&used)),
            ));
        }
    }
    check_links("template.html", &html_links(&source.html))?;
    check_links("template.text", &text_links(&source.text))?;
    if !phi_personalized {
        let bodies = [("template.html", &source.html), ("template.text", &source.text)];
        for (field, body) in bodies {
            let used = phi_used(body);
            if !used.is_empty() {
                return Err(InvalidField::new(
                    "phi_personalized",
                    format!(
                        "{field} uses PHI attribute {}; a campaign that personalizes with PHI must be flagged \
                         phi_personalized",
                        names(&used)
                    ),
                ));
            }
        }
    }
    if context.marketing {
        check_marketing_footer(source)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(subject: &str, html: &str, text: &str) -> TemplateSource {
        TemplateSource { subject: subject.into(), preheader: None, html: html.into(), text: text.into() }
    }

    fn refused(source: &TemplateSource, phi_personalized: bool) -> InvalidField {
        lint(source, LintContext { phi_personalized, marketing: false }).expect_err("the linter refuses it")
    }

    #[test]
    fn a_personalized_template_with_safe_links_passes() {
        let source = template(
            "Your check-up reminder",
            r#"<p>Hi {{ first_name | default("there") }}</p><a href="https://clinic.example/book?c=spring">Book</a>"#,
            "Hi {{ first_name }}. Book: https://clinic.example/book Stop: {{ unsubscribe_url }}",
        );
        assert!(lint(&source, LintContext { phi_personalized: true, marketing: false }).is_ok());
    }

    #[test]
    fn phi_in_the_subject_is_refused_naming_the_subject() {
        let error = refused(&template("Hello {{ first_name|upper }}", "<p>x</p>", "x"), true);
        assert_eq!(error.field, "template.subject");
        assert!(error.message.contains("'first_name'"), "{}", error.message);
    }

    #[test]
    fn phi_in_the_preheader_is_refused_naming_the_preheader() {
        let mut source = template("Reminder", "<p>x</p>", "x");
        source.preheader = Some("{% if conditions %}About your care{% endif %}".into());
        let error = refused(&source, true);
        assert_eq!(error.field, "template.preheader");
        assert!(error.message.contains("'conditions'"));
    }

    #[test]
    fn phi_in_a_link_or_tracking_parameter_is_refused() {
        let html = r#"<a href="https://clinic.example/r?utm_content={{ zip }}">Go</a>"#;
        let error = refused(&template("Reminder", html, "x"), true);
        assert_eq!(error.field, "template.html");
        assert!(error.message.contains("'zip'"));
        let text = "Book at https://clinic.example/book?dob={{ date_of_birth }} today";
        let error = refused(&template("Reminder", "<p>x</p>", text), true);
        assert_eq!(error.field, "template.text");
        assert!(error.message.contains("'date_of_birth'"));
    }

    #[test]
    fn a_link_without_https_is_refused() {
        let error = refused(&template("Reminder", r#"<img src="http://cdn.example/logo.png">"#, "x"), false);
        assert_eq!(error.field, "template.html");
        assert!(error.message.contains("https"));
        let error = refused(&template("Reminder", "<p>x</p>", "See http://clinic.example"), false);
        assert_eq!(error.field, "template.text");
    }

    #[test]
    fn phi_in_a_campaign_not_flagged_phi_personalized_is_refused() {
        let error = refused(&template("Reminder", "<p>{{ medications | join(', ') }}</p>", "x"), false);
        assert_eq!(error.field, "phi_personalized");
        assert!(error.message.contains("template.html") && error.message.contains("'medications'"));
    }

    #[test]
    fn non_identifying_variables_need_no_flag() {
        let source = template("Reminder", "<p>{{ language }}</p>", "Stop: {{ unsubscribe_url }}");
        assert!(lint(&source, LintContext::default()).is_ok());
    }

    #[test]
    fn attribute_names_that_merely_end_in_src_are_not_links() {
        assert_eq!(
            html_links(r#"<div data-src="x" data-href='y'><a href=https://a.example/>"#),
            ["https://a.example/"]
        );
    }

    fn marketing(html: &str, text: &str) -> Result<(), InvalidField> {
        lint(&template("News", html, text), LintContext { phi_personalized: false, marketing: true })
    }

    const FOOTER_TEXT: &str = "Clinic, {{ postal_address }}. Stop: {{ unsubscribe_url }}";

    #[test]
    fn marketing_mail_with_a_visible_unsubscribe_link_and_the_postal_address_passes() {
        let html = "<p>{{ postal_address }}</p><p><a href=\"{{ unsubscribe_url }}\"><span>Unsubscribe</span></a></p>";
        assert!(marketing(html, FOOTER_TEXT).is_ok());
    }

    #[test]
    fn marketing_mail_without_a_visible_unsubscribe_link_is_refused_naming_the_html() {
        let hidden =
            "<p>{{ postal_address }}</p><a href=\"{{ unsubscribe_url }}\"><img src=\"https://c.example/x.png\"></a>";
        let missing = "<p>{{ postal_address }}</p>";

        for html in [hidden, missing] {
            let err = marketing(html, FOOTER_TEXT).unwrap_err();
            assert_eq!(err.field, "template.html");
            assert!(err.message.contains("visible unsubscribe link"), "{}", err.message);
        }
    }

    #[test]
    fn marketing_mail_without_the_postal_address_is_refused_naming_the_part() {
        let html = "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>";
        let err = marketing(html, FOOTER_TEXT).unwrap_err();
        assert_eq!((err.field.as_str(), err.message.contains("postal address")), ("template.html", true));
        let err = marketing(&format!("{html} {{{{ postal_address }}}}"), "Stop: {{ unsubscribe_url }}").unwrap_err();
        assert_eq!(err.field, "template.text");
    }

    #[test]
    fn treatment_mail_needs_no_marketing_footer() {
        assert!(lint(&template("Reminder", "<p>See you</p>", "See you"), LintContext::default()).is_ok());
    }
}
