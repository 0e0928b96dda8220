use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address, trimmed. The local part keeps its case
/// (RFC 5321 lets servers treat it as case-sensitive); [`EmailAddress::normalized`]
/// lower-cases the whole address for the blind index and suppression.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid email address")]
pub struct ParseEmailAddressError;

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, ParseEmailAddressError> {
        let trimmed = input.trim();
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_control()) {
            return Err(ParseEmailAddressError);
        }
        let parsed = email_address::EmailAddress::from_str(trimmed).map_err(|_| ParseEmailAddressError)?;
        // Display names and comments are not addresses we can mail.
        if parsed.as_str() != trimmed || !trimmed.contains('@') || trimmed.contains(['<', '>', ' ']) {
            return Err(ParseEmailAddressError);
        }
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(ParseEmailAddressError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for lookups: trimmed and lower-cased.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Redacted on purpose: an email address is PHI and must never reach a log.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_a_plain_address_and_trims_it() {
        let email = EmailAddress::parse("  Ada.Lovelace@Example.org ").unwrap();
        assert_eq!(email.as_str(), "Ada.Lovelace@Example.org");
        assert_eq!(email.normalized(), "ada.lovelace@example.org");
    }

    #[test]
    fn parse_refuses_addresses_we_cannot_mail() {
        for bad in ["", "plain", "a@b", "A <a@example.org>", "a@example.org\r\nBcc: x@y.z", "a b@example.org"] {
            assert_eq!(EmailAddress::parse(bad), Err(ParseEmailAddressError), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_address() {
        let email = EmailAddress::parse("ada@example.org").unwrap();
        assert!(!format!("{email:?}").contains("ada"));
    }
}
