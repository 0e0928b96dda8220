//! A web origin (`scheme://host[:port]`) allowed to post a form: https, or
//! http on loopback for local development. Lower-cased, no trailing slash,
//! so comparing two is comparing strings.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why a configured origin was refused. Origins are operator
/// configuration, never patient input, so the value is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrigin {
    #[error("origin '{0}' needs a scheme")]
    NoScheme(String),
    #[error("origin '{0}' must be https://host[:port] (http only on loopback)")]
    NotAnOrigin(String),
}

impl Origin {
    pub fn parse(raw: &str) -> Result<Origin, InvalidOrigin> {
        let origin = raw.trim().trim_end_matches('/');
        let (scheme, rest) = origin.split_once("://").ok_or_else(|| InvalidOrigin::NoScheme(origin.to_owned()))?;
        let host = rest.rsplit_once(':').map_or(rest, |(h, port)| if port.parse::<u16>().is_ok() { h } else { rest });
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        let well_formed = !rest.is_empty()
            && !rest.contains(['/', '?', '#', '@', ' '])
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !well_formed || !(scheme == "https" || (scheme == "http" && loopback)) {
            return Err(InvalidOrigin::NotAnOrigin(origin.to_owned()));
        }
        Ok(Origin(origin.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `url` is this origin or a URL on it.
    pub fn contains_url(&self, url: &str) -> bool {
        let o = self.as_str();
        url == o || url.starts_with(&format!("{o}/")) || url.starts_with(&format!("{o}?"))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for Origin {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_https_or_loopback_http_and_lower_cased() {
        assert_eq!(Origin::parse("https://WWW.Clinic.example/").unwrap(), "https://www.clinic.example");
        assert!(Origin::parse("http://localhost:8080").is_ok());
        assert_eq!(Origin::parse("clinic.example"), Err(InvalidOrigin::NoScheme("clinic.example".into())));
        assert!(matches!(Origin::parse("http://clinic.example"), Err(InvalidOrigin::NotAnOrigin(_))));
        assert!(Origin::parse("https://clinic.example/path").is_err());
    }

    #[test]
    fn a_url_on_the_origin_is_contained_and_a_lookalike_host_is_not() {
        let o = Origin::parse("https://clinic.example").unwrap();
        assert!(o.contains_url("https://clinic.example/thanks"));
        assert!(!o.contains_url("https://clinic.example.evil.test/thanks"));
    }
}
