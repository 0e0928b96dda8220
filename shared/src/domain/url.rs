use std::fmt;

/// The public base URL that links in emails point at (unsubscribe,
/// confirmation, preferences). It must be https; plain http is accepted only
/// for a loopback host, so a local stack can be clicked through.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicBaseUrl(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("public base URL must be https://host[/path] (http only for 127.0.0.1 or localhost)")]
pub struct ParsePublicBaseUrlError;

impl PublicBaseUrl {
    pub fn parse(input: &str) -> Result<Self, ParsePublicBaseUrlError> {
        let trimmed = input.trim().trim_end_matches('/');
        let (scheme, rest) = trimmed.split_once("://").ok_or(ParsePublicBaseUrlError)?;
        let host_port = rest.split('/').next().unwrap_or_default();
        let host = match host_port.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host_port,
        };
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        let loopback = host == "localhost" || host == "127.0.0.1";
        let scheme_ok = scheme == "https" || (scheme == "http" && loopback);
        if host_ok && scheme_ok && !rest.contains(['?', '#', ' ']) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ParsePublicBaseUrlError)
        }
    }

    /// `base + path`, where `path` starts with '/'.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PublicBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicBaseUrl({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_except_on_loopback() {
        assert!(PublicBaseUrl::parse("https://mail.clinic.example/").is_ok());
        assert!(PublicBaseUrl::parse("http://127.0.0.1:8787").is_ok());
        assert!(PublicBaseUrl::parse("http://clinic.example").is_err());
        assert!(PublicBaseUrl::parse("ftp://clinic.example").is_err());
        assert_eq!(PublicBaseUrl::parse("https://a.example/x/").unwrap().join("/u/t"), "https://a.example/x/u/t");
    }
}
