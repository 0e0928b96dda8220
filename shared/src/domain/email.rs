use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address, trimmed. The local part keeps its case
/// (RFC 5321 lets servers treat it as case-sensitive); [`EmailAddress::normalized`]
/// lower-cases the whole address for the blind index and suppression.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseEmailAddressError {
    #[error("not a valid email address")]
    Invalid,
    /// SES (and most mail systems) cannot deliver to a non-ASCII local part.
    #[error("the part before the @ must use plain letters, digits and punctuation (no accents or other scripts)")]
    NonAsciiLocalPart,
}

impl EmailAddress {
    /// An address we can mail: an internationalized domain becomes its
    /// ASCII (punycode) form; a non-ASCII local part is refused.
    pub fn parse(input: &str) -> Result<Self, ParseEmailAddressError> {
        let trimmed = input.trim();
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_control()) {
            return Err(ParseEmailAddressError::Invalid);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(ParseEmailAddressError::Invalid)?;
        if !local.is_ascii() {
            return Err(ParseEmailAddressError::NonAsciiLocalPart);
        }
        let ascii_domain = if domain.is_ascii() {
            domain.to_owned()
        } else {
            idna::domain_to_ascii(domain).map_err(|_| ParseEmailAddressError::Invalid)?
        };
        let ascii = format!("{local}@{ascii_domain}");
        let trimmed = ascii.as_str();
        if trimmed.len() > 254 {
            return Err(ParseEmailAddressError::Invalid);
        }
        let parsed = email_address::EmailAddress::from_str(trimmed).map_err(|_| ParseEmailAddressError::Invalid)?;
        // Display names and comments are not addresses we can mail.
        if parsed.as_str() != trimmed || !trimmed.contains('@') || trimmed.contains(['<', '>', ' ']) {
            return Err(ParseEmailAddressError::Invalid);
        }
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(ParseEmailAddressError::Invalid);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain the mail goes to, lower-cased: what reach is reported by.
    pub fn domain(&self) -> RecipientDomain {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        RecipientDomain(domain.to_ascii_lowercase())
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
            assert_eq!(EmailAddress::parse(bad), Err(ParseEmailAddressError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn an_international_domain_becomes_ascii_and_a_non_ascii_local_part_is_refused() {
        assert_eq!(EmailAddress::parse("ada@bücher.example").unwrap().as_str(), "ada@xn--bcher-kva.example");
        assert_eq!(EmailAddress::parse("jöse@example.org"), Err(ParseEmailAddressError::NonAsciiLocalPart));
    }

    #[test]
    fn debug_output_never_shows_the_address() {
        let email = EmailAddress::parse("ada@example.org").unwrap();
        assert!(!format!("{email:?}").contains("ada"));
    }
}

/// The domain part of a recipient's address (`example.org`), lower-cased
/// ASCII: reports split delivery by it, never by address. A domain shown
/// only where enough recipients share it (the small-cell rule), because a
/// personal domain can name a patient.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecipientDomain(String);

impl RecipientDomain {
    /// A stored domain: what [`EmailAddress::domain`] gives, lower-case
    /// printable ASCII without `@` or spaces, at most 254 (an address
    /// `EmailAddress::parse` accepted never fails this).
    pub fn parse(input: &str) -> Option<Self> {
        let ok = (1..=254).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b'@');
        ok.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod recipient_domain_tests {
    use super::*;

    #[test]
    fn the_domain_of_an_address_is_its_lower_cased_part_after_the_at_and_nothing_of_the_local_part() {
        let email = EmailAddress::parse("Jane.Probe@Mail.Example.ORG").unwrap();
        assert_eq!(email.domain().as_str(), "mail.example.org");
        assert_eq!(RecipientDomain::parse("mail.example.org"), Some(email.domain()));
        assert_eq!(RecipientDomain::parse("jane@example.org"), None);
        assert_eq!(RecipientDomain::parse(""), None);
        for odd in ["pat@under_score.example", "pat@xn--bcher-kva.example", "pat@1.example"] {
            let email = EmailAddress::parse(odd).unwrap();
            assert_eq!(RecipientDomain::parse(email.domain().as_str()), Some(email.domain()), "{odd}");
        }
    }
}
