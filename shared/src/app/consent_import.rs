//! Consent given before Carepost, brought over from the system that captured
//! it: each grant becomes a ledger entry with method `import`, the original
//! date, the source system and the consent text's hash. An import never
//! overrides a withdrawal: a topic the patient withdrew stays withdrawn.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::consent::RequestProof;
use super::{AppError, ContactAdmin};
use crate::domain::{
    ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ExternalId, ImportedFrom,
    InvalidField, Sensitive, SourceSystem,
};

/// At most this many contacts per request (the contacts batch's size).
pub const IMPORT_LIMIT: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentImport {
    pub source_system: SourceSystem,
    /// SHA-256 (hex) of the consent text the patients agreed to there.
    pub consent_text_sha256: String,
    pub entries: Vec<ImportedConsent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedConsent {
    /// A record number can identify the patient: `Debug` is redacted.
    pub external_id: Sensitive<String>,
    pub categories: Vec<ConsentCategory>,
    #[serde(with = "time::serde::rfc3339")]
    pub consented_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// At least one topic was granted by this import.
    Imported,
    /// Every topic was already granted, or withdrawn and kept so.
    Unchanged,
    Rejected,
}

#[derive(Debug, Serialize)]
pub struct ImportResult {
    pub index: usize,
    pub status: ImportStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<ConsentCategory>,
    /// Topics the patient withdrew in Carepost: the import leaves them withdrawn.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_withdrawn: Vec<ConsentCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ImportResult {
    fn rejected(index: usize, field: &str, message: &str) -> ImportResult {
        ImportResult {
            index,
            status: ImportStatus::Rejected,
            granted: Vec::new(),
            kept_withdrawn: Vec::new(),
            field: Some(field.to_owned()),
            message: Some(message.to_owned()),
        }
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl ContactAdmin {
    /// Records each entry's prior opt-ins on the contact found by its
    /// external ID; one result per entry, in order. Idempotent: importing the
    /// same file again grants nothing new.
    pub async fn import_consent(
        &self,
        actor: &str,
        import: ConsentImport,
        proof: RequestProof,
    ) -> Result<Vec<ImportResult>, AppError> {
        if import.entries.len() > IMPORT_LIMIT {
            return Err(InvalidField::new("entries", format!("at most {IMPORT_LIMIT} per request")).into());
        }
        if !is_sha256_hex(&import.consent_text_sha256) {
            return Err(InvalidField::new("consent_text_sha256", "must be 64 lowercase hex digits (SHA-256)").into());
        }
        let now = self.clock.now();
        let mut results = Vec::with_capacity(import.entries.len());
        for (index, entry) in import.entries.into_iter().enumerate() {
            let Ok(external_id) = ExternalId::parse(entry.external_id.expose()) else {
                results.push(ImportResult::rejected(index, "external_id", "is not a valid external ID"));
                continue;
            };
            if entry.categories.is_empty() {
                results.push(ImportResult::rejected(index, "categories", "names no topic"));
                continue;
            }
            if entry.consented_at > now {
                results.push(ImportResult::rejected(index, "consented_at", "is in the future"));
                continue;
            }
            let Some(contact) = self.contacts.find_by_external_id(&external_id).await? else {
                results.push(ImportResult::rejected(index, "external_id", "no contact has this external ID"));
                continue;
            };
            let grants = self.consent.grants(&contact.id).await?;
            let status_of = |c: &ConsentCategory| grants.iter().find(|g| &g.category == c).map(|g| g.status);
            let mut granted = Vec::new();
            let mut kept_withdrawn = Vec::new();
            for category in entry.categories {
                match status_of(&category) {
                    Some(ConsentStatus::Active) => {}
                    Some(ConsentStatus::Withdrawn) => kept_withdrawn.push(category),
                    _ if !granted.contains(&category) => granted.push(category),
                    _ => {}
                }
            }
            if !granted.is_empty() {
                let evidence = ConsentEvidence {
                    contact_id: contact.id,
                    kind: ConsentEntryKind::Granted,
                    categories: granted.clone(),
                    at: now,
                    method: ConsentMethod::Import,
                    form_id: None,
                    consent_text_sha256: Some(import.consent_text_sha256.clone()),
                    request_id: None,
                    expires_at: None,
                    imported: Some(ImportedFrom {
                        source_system: import.source_system.clone(),
                        consented_at: entry.consented_at,
                    }),
                    sealed_proof: self.consent_ledger.seal_proof(&contact.id, &proof).await?,
                };
                self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
                let reason = format!("prior consent imported from {}", import.source_system.as_str());
                self.audit.record(actor, "consent.import", Some(contact.id), Vec::new(), reason).await?;
            }
            let status = if granted.is_empty() { ImportStatus::Unchanged } else { ImportStatus::Imported };
            results.push(ImportResult { index, status, granted, kept_withdrawn, field: None, message: None });
        }
        Ok(results)
    }
}

#[cfg(test)]
#[path = "consent_import_tests.rs"]
mod tests;
