use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($name:ident, $err:ident, $what:literal) => {
        #[doc = concat!("Random identifier of a ", $what, "; carries no PHI.")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uuid);

        #[derive(Debug, PartialEq, Eq)]
        pub struct $err;

        impl fmt::Display for $err {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "not a valid {} id", $what)
            }
        }

        impl std::error::Error for $err {}

        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn parse(input: &str) -> Result<Self, $err> {
                Uuid::try_parse(input).map(Self).map_err(|_| $err)
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        super::text_conversions!(@try_from $name, $err);

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.as_hyphenated())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.as_hyphenated())
            }
        }
    };
}

uuid_id!(ContactId, ParseContactIdError, "contact");
uuid_id!(CampaignId, ParseCampaignIdError, "campaign");
uuid_id!(ConsentRequestId, ParseConsentRequestIdError, "consent request");
uuid_id!(IntakeId, ParseIntakeIdError, "consent intake");
uuid_id!(JourneyId, ParseJourneyIdError, "journey");

impl IntakeId {
    /// The consent request an intake becomes: the same 16 bytes, so a retry
    /// of the worker finds the request it already recorded.
    pub fn request_id(&self) -> ConsentRequestId {
        ConsentRequestId::from_bytes(*self.as_bytes())
    }
}

impl ContactId {
    /// A stable bucket in `0..=65535` from the random ID, used to split the
    /// contact table into fan-out shards of even size.
    pub fn bucket(&self) -> u16 {
        let b = self.as_bytes();
        u16::from_be_bytes([b[0], b[1]])
    }
}

/// The customer's own opaque identifier for a contact (from their EHR or CRM).
/// It appears in admin URLs, so it must not be PHI: no names, emails or MRNs
/// with meaning; `[A-Za-z0-9_.-]{1,64}` only.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("external id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-' and not contain '@'")]
pub struct ParseExternalIdError;

impl ExternalId {
    pub fn parse(input: &str) -> Result<Self, ParseExternalIdError> {
        let ok = (1..=64).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok { Ok(Self(input.to_owned())) } else { Err(ParseExternalIdError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

super::text_conversions!(ExternalId, ParseExternalIdError);

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalId({})", self.0)
    }
}

/// The identifier a mail provider gave an accepted message (SES message ID,
/// or our own Message-ID for SMTP and the outbox).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ProviderMessageId(String);

impl ProviderMessageId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_string_form() {
        let id = ContactId::new_random();
        assert_eq!(ContactId::parse(&id.to_string()), Ok(id));
        assert!(ContactId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn external_id_refuses_characters_that_could_carry_an_address() {
        assert!(ExternalId::parse("crm-000123").is_ok());
        for bad in ["", "ada@example.org", "a b", "x/y", &"a".repeat(65)] {
            assert!(ExternalId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
