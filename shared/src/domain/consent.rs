//! Consent: per-topic categories, the current state per (contact, category),
//! and the append-only, hash-chained ledger that proves how it was given.

use std::fmt;

use super::chain::{ChainError, Link, chained, verify_links};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ConsentRequestId, ContactId};

/// A consent topic such as `appointment-reminders`: lower-case letters,
/// digits and '-', 1 to 40 characters. Which categories exist is configuration.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsentCategory(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a consent category is 1 to 40 characters of a-z, 0-9 and '-'")]
pub struct ParseConsentCategoryError;

impl ConsentCategory {
    pub fn parse(input: &str) -> Result<Self, ParseConsentCategoryError> {
        let ok = (1..=40).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(input.to_owned())) } else { Err(ParseConsentCategoryError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SES subscription-management topic that stands for this category:
    /// the same name (a category is a valid SES topic name). SES
    /// `Subscription` events are mapped back with `from_ses_topic`.
    pub fn ses_topic(&self) -> &str {
        &self.0
    }

    /// The category an SES topic stands for; `None` for a topic name that
    /// is not a category (the caller also checks it is one it offers).
    pub fn from_ses_topic(topic: &str) -> Option<Self> {
        Self::parse(topic).ok().filter(|c| !c.is_hipaa_authorization())
    }

    /// What a person reads: "wellness-tips" is "Wellness tips".
    pub fn label(&self) -> String {
        let words = self.0.replace('-', " ");
        let mut chars = words.chars();
        chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
    }

    /// The HIPAA marketing authorization (45 CFR 164.508): its own record in
    /// the consent ledger, with an expiry, never a topic a form can offer.
    pub fn hipaa_authorization() -> Self {
        Self(HIPAA_AUTHORIZATION.to_owned())
    }

    pub fn is_hipaa_authorization(&self) -> bool {
        self.0 == HIPAA_AUTHORIZATION
    }
}

/// The reserved category under which HIPAA marketing authorizations are kept.
pub const HIPAA_AUTHORIZATION: &str = "hipaa-marketing-authorization";

super::text_conversions!(ConsentCategory, ParseConsentCategoryError);

impl fmt::Debug for ConsentCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsentCategory({})", self.0)
    }
}

impl fmt::Display for ConsentCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Asked for, waiting for the double opt-in confirmation.
    Pending,
    Active,
    Withdrawn,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Pending => "pending",
            ConsentStatus::Active => "active",
            ConsentStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "withdrawn" => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

/// The current state of one (contact, category) consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGrant {
    pub category: ConsentCategory,
    pub status: ConsentStatus,
    pub updated_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl ConsentGrant {
    /// Whether this grant allows a send at `now`.
    pub fn allows_send(&self, now: OffsetDateTime) -> bool {
        self.status == ConsentStatus::Active && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Whether the grants hold a HIPAA marketing authorization valid at `now`
/// (given, not revoked, not expired).
pub fn hipaa_authorized(grants: &[ConsentGrant], now: OffsetDateTime) -> bool {
    grants.iter().any(|g| g.category.is_hipaa_authorization() && g.allows_send(now))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    WebForm,
    Api,
    Import,
    Unsubscribe,
    Complaint,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentEntryKind {
    /// Consent asked for, awaiting double opt-in.
    Requested,
    /// Consent given (directly, or by confirming a request).
    Granted,
    Withdrawn,
    /// The contact's PHI was erased; the entry is the tombstone, and the
    /// ledger before it is the consent evidence the law requires keeping.
    Erased,
}

/// One ledger entry before it is chained. The proof fields that are PHI
/// (source IP, user agent) travel only inside `sealed_proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvidence {
    pub contact_id: ContactId,
    pub kind: ConsentEntryKind,
    pub categories: Vec<ConsentCategory>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub method: ConsentMethod,
    pub form_id: Option<String>,
    pub consent_text_sha256: Option<String>,
    pub request_id: Option<ConsentRequestId>,
    /// When what this entry grants lapses (a HIPAA authorization's expiry).
    /// Absent from entries that grant without end, so their hash is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Where a grant brought over from another system came from (method
    /// `import`). Absent from consent Carepost captured, so its hash is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportedFrom>,
    /// Envelope-encrypted JSON of IP, user agent and origin.
    #[serde(with = "hex_bytes")]
    pub sealed_proof: Vec<u8>,
}

impl ConsentEvidence {
    /// An entry with no form, request, expiry, import or proof behind it:
    /// what an administrator's or an integration's action records.
    pub fn without_proof(
        contact_id: ContactId,
        kind: ConsentEntryKind,
        categories: Vec<ConsentCategory>,
        at: OffsetDateTime,
        method: ConsentMethod,
    ) -> ConsentEvidence {
        ConsentEvidence {
            contact_id,
            kind,
            categories,
            at,
            method,
            form_id: None,
            consent_text_sha256: None,
            request_id: None,
            expires_at: None,
            imported: None,
            sealed_proof: Vec::new(),
        }
    }
}

/// The provenance of consent given before Carepost: the system that
/// captured it and when the patient gave it. Neither is PHI (a system name
/// such as "Epic MyChart" and a date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedFrom {
    pub source_system: SourceSystem,
    #[serde(with = "time::serde::rfc3339")]
    pub consented_at: OffsetDateTime,
}

/// The name of the system prior consent comes from: 1 to 100 printable
/// characters, no control or bidi-override characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceSystem(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a source system is 1 to 100 printable characters")]
pub struct InvalidSourceSystem;

impl SourceSystem {
    pub fn parse(text: &str) -> Result<SourceSystem, InvalidSourceSystem> {
        let text = text.trim();
        let printable =
            text.chars().all(|c| !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'));
        if text.is_empty() || text.chars().count() > 100 || !printable {
            return Err(InvalidSourceSystem);
        }
        Ok(SourceSystem(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

super::text_conversions!(SourceSystem, InvalidSourceSystem);

/// A chained ledger entry: `hash = SHA-256(prev_hash || canonical evidence)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub seq: u64,
    pub evidence: ConsentEvidence,
    pub prev_hash: String,
    pub hash: String,
}

impl ConsentEntry {
    /// Chains `evidence` after `prev` (or after genesis for a contact's first entry).
    pub fn chain(prev: Option<&ConsentEntry>, evidence: ConsentEvidence) -> ConsentEntry {
        chained(prev, evidence)
    }
}

impl Link for ConsentEntry {
    const LABEL: &'static [u8] = b"carepost-consent-v1\n";
    type Content = ConsentEvidence;
    fn parts(&self) -> (u64, &str, &str, &ConsentEvidence) {
        (self.seq, &self.prev_hash, &self.hash, &self.evidence)
    }
    fn from_parts(seq: u64, prev_hash: String, hash: String, evidence: ConsentEvidence) -> Self {
        ConsentEntry { seq, evidence, prev_hash, hash }
    }
}

/// Where a contact's chain breaks, if it does.
pub type ConsentChainError = ChainError;

/// Verifies one contact's entries, in sequence order.
pub fn verify_chain(entries: &[ConsentEntry]) -> Result<(), ConsentChainError> {
    verify_links(entries)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(kind: ConsentEntryKind) -> ConsentEvidence {
        ConsentEvidence {
            contact_id: ContactId::new_random(),
            kind,
            categories: vec![ConsentCategory::parse("wellness-tips").unwrap()],
            at: OffsetDateTime::UNIX_EPOCH,
            method: ConsentMethod::WebForm,
            form_id: Some("signup".into()),
            consent_text_sha256: Some("ab".repeat(32)),
            request_id: None,
            expires_at: None,
            imported: None,
            sealed_proof: vec![1, 2, 3],
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let first = ConsentEntry::chain(None, evidence(ConsentEntryKind::Requested));
        let second = ConsentEntry::chain(Some(&first), evidence(ConsentEntryKind::Granted));
        assert_eq!(verify_chain(&[first, second]), Ok(()));
    }

    #[test]
    fn an_edited_entry_is_detected() {
        let first = ConsentEntry::chain(None, evidence(ConsentEntryKind::Requested));
        let mut second = ConsentEntry::chain(Some(&first), evidence(ConsentEntryKind::Withdrawn));
        second.evidence.kind = ConsentEntryKind::Granted;
        assert_eq!(verify_chain(&[first, second]), Err(ConsentChainError::Altered { seq: 2 }));
    }

    #[test]
    fn a_removed_entry_is_detected() {
        let first = ConsentEntry::chain(None, evidence(ConsentEntryKind::Requested));
        let second = ConsentEntry::chain(Some(&first), evidence(ConsentEntryKind::Granted));
        let third = ConsentEntry::chain(Some(&second), evidence(ConsentEntryKind::Withdrawn));
        assert_eq!(verify_chain(&[first, third]), Err(ConsentChainError::Broken { seq: 3 }));
    }

    #[test]
    fn a_hipaa_authorization_counts_only_while_active_and_unexpired() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        let grant = |status, expires_at| ConsentGrant {
            category: ConsentCategory::hipaa_authorization(),
            status,
            updated_at: now,
            expires_at,
        };
        let later = Some(now + time::Duration::days(1));
        let earlier = Some(now - time::Duration::days(1));
        assert!(hipaa_authorized(&[grant(ConsentStatus::Active, later)], now));
        assert!(!hipaa_authorized(&[grant(ConsentStatus::Active, earlier)], now), "expired");
        assert!(!hipaa_authorized(&[grant(ConsentStatus::Withdrawn, later)], now), "revoked");
        let topic = ConsentGrant {
            category: ConsentCategory::parse("wellness-tips").unwrap(),
            ..grant(ConsentStatus::Active, later)
        };
        assert!(!hipaa_authorized(&[topic], now), "a topic's consent is not an authorization");
    }

    #[test]
    fn categories_are_slugs() {
        assert!(ConsentCategory::parse("appointment-reminders").is_ok());
        assert!(ConsentCategory::parse("Wellness").is_err());
        assert!(ConsentCategory::parse("").is_err());
    }
}
