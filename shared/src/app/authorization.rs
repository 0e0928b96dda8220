//! HIPAA marketing authorizations (45 CFR 164.508): a patient's signed
//! permission to use their PHI in marketing, with an expiry date and the
//! right to revoke. Each is its own record in the contact's hash-chained
//! consent ledger (reserved category `hipaa-marketing-authorization`), with
//! the SHA-256 of the authorization text the patient signed.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};

use std::sync::Arc;

use super::consent::RequestProof;
use super::{AppError, ConsentLedger};
use crate::domain::{
    ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ContactId, InvalidField,
};
use crate::ports::{Clock, ContactStore};

/// The longest an authorization may run from when it is recorded.
const LONGEST: time::Duration = time::Duration::days(10 * 366);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationInput {
    /// `YYYY-MM-DD` (the end of that day, UTC) or an RFC 3339 time. Required:
    /// 164.508(c)(1)(v) wants an expiration date or event.
    pub expires_at: String,
    /// SHA-256 (hex) of the authorization text the patient signed.
    pub authorization_text_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationRecorded {
    pub contact_id: ContactId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The consent ledger entry that holds it.
    pub seq: u64,
}

fn parse_expiry(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, InvalidField> {
    let raw = raw.trim();
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let at = Date::parse(raw, &day)
        .map(|d| d.with_time(Time::from_hms(23, 59, 59).expect("valid time")).assume_utc())
        .or_else(|_| OffsetDateTime::parse(raw, &Rfc3339))
        .map_err(|_| InvalidField::new("expires_at", "must be a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    if at <= now {
        return Err(InvalidField::new("expires_at", "must be in the future"));
    }
    if at > now + LONGEST {
        return Err(InvalidField::new("expires_at", "must be at most ten years ahead"));
    }
    Ok(at)
}

fn parse_text_hash(raw: &str) -> Result<String, InvalidField> {
    let hash = raw.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(InvalidField::new("authorization_text_sha256", "must be 64 hexadecimal digits (SHA-256)"))
    }
}

pub struct HipaaAuthorizations {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) clock: Arc<dyn Clock>,
}

impl HipaaAuthorizations {
    /// Records a signed authorization; a later one replaces the expiry.
    pub async fn record(
        &self,
        contact_id: &ContactId,
        input: &AuthorizationInput,
        proof: RequestProof,
    ) -> Result<AuthorizationRecorded, AppError> {
        let now = self.clock.now();
        let expires_at = parse_expiry(&input.expires_at, now)?;
        let text_hash = parse_text_hash(&input.authorization_text_sha256)?;
        if self.contacts.get(contact_id).await?.is_none() {
            return Err(AppError::NotFound("contact"));
        }
        let evidence = ConsentEvidence {
            contact_id: *contact_id,
            kind: ConsentEntryKind::Granted,
            categories: vec![ConsentCategory::hipaa_authorization()],
            at: now,
            method: ConsentMethod::Admin,
            form_id: None,
            consent_text_sha256: Some(text_hash),
            request_id: None,
            expires_at: Some(expires_at),
            imported: None,
            sealed_proof: self.consent_ledger.seal_proof(contact_id, &proof).await?,
        };
        let entry = self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
        Ok(AuthorizationRecorded { contact_id: *contact_id, expires_at, seq: entry.seq })
    }

    /// Revokes the contact's authorization (164.508(b)(5)); true if there was
    /// one in force. Takes effect for every job not yet sent.
    pub async fn revoke(&self, contact_id: &ContactId, proof: RequestProof) -> Result<bool, AppError> {
        if self.contacts.get(contact_id).await?.is_none() {
            return Err(AppError::NotFound("contact"));
        }
        let changed = self
            .consent_ledger
            .withdraw(contact_id, &[ConsentCategory::hipaa_authorization()], ConsentMethod::Admin, proof)
            .await?;
        Ok(!changed.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_a_future_date_or_time_within_ten_years() {
        let now = OffsetDateTime::parse("2026-11-30T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(parse_expiry("2027-06-30", now).unwrap().to_string(), "2027-06-30 23:59:59.0 +00:00:00");
        assert!(parse_expiry("2027-06-30T00:00:00Z", now).is_ok());
        assert_eq!(parse_expiry("2026-11-29", now).unwrap_err().field, "expires_at");
        assert!(parse_expiry("2040-01-01", now).is_err());
        assert!(parse_expiry("next year", now).is_err());
    }

    #[test]
    fn the_text_hash_is_sha256_hex() {
        assert!(parse_text_hash(&"Ab".repeat(32)).is_ok());
        assert!(parse_text_hash("abc").is_err());
        assert!(parse_text_hash(&"zz".repeat(32)).is_err());
    }
}
