//! Telling people from machines in opens and clicks. Image proxies (Gmail,
//! Yahoo), Apple Mail Privacy Protection and link scanners of mail security
//! gateways fetch pixels and follow links without a person reading; counted
//! as human they inflate open and click rates and feed false "opened"
//! segments. The signals are the request's user agent and method only: the
//! IP address is PHI and is never read for this.

/// Fragments of user agents that belong to proxies, scanners and scripts
/// (matched case-insensitively).
const MACHINE_AGENT_FRAGMENTS: &[&str] = &[
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "bot",
    "crawler",
    "spider",
    "scanner",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "forcepoint",
    "safelinks",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "headlesschrome",
];

/// Whether a request with this user agent (and HTTP method, where there is
/// one) comes from a machine rather than a person reading the email.
pub fn is_machine(user_agent: Option<&str>, method_is_head: bool) -> bool {
    if method_is_head {
        return true;
    }
    let agent = user_agent.unwrap_or("").trim();
    // Apple Mail Privacy Protection fetches every image with a bare agent.
    if agent.is_empty() || agent == "Mozilla/5.0" {
        return true;
    }
    let lower = agent.to_ascii_lowercase();
    MACHINE_AGENT_FRAGMENTS.iter().any(|f| lower.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desktop_browser_is_a_person() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert!(!is_machine(Some(firefox), false));
    }

    #[test]
    fn image_proxies_scanners_scripts_and_head_requests_are_machines() {
        assert!(is_machine(
            Some("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
            false
        ));
        assert!(is_machine(Some("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"), false));
        assert!(is_machine(Some("Mozilla/5.0"), false), "Apple Mail Privacy Protection");
        assert!(is_machine(Some("python-requests/2.32"), false));
        assert!(is_machine(None, false));
        assert!(is_machine(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"), true));
    }
}
