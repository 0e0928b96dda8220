//! Minimum-necessary views of contacts: the list returns IDs and
//! non-identifying fields only; PHI comes only from an explicit
//! single-contact read, which states why and is audited. And the batch
//! upsert, with a result per item.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{ContactId, ExternalId, InvalidField, ProfileInput, format_date};
use crate::ports::ShardSpec;

/// The most contacts one batch upsert takes.
pub const BATCH_LIMIT: usize = 500;

/// One contact in a list: no PHI.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactSummary {
    pub contact_id: ContactId,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactPage {
    pub contacts: Vec<ContactSummary>,
    /// Pass back as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A contact with its PHI, for an audited single-contact read.
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    pub contact_id: ContactId,
    pub external_id: Option<String>,
    pub email: String,
    pub attributes: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub external_id: String,
    pub email: String,
    #[serde(default)]
    pub attributes: ProfileInput,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Created,
    Updated,
    Rejected,
}

/// The outcome of one item: the contact's ID, or why it was refused (the
/// field's name and the rule, never the value).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchResult {
    pub index: usize,
    pub status: BatchStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn parse_reason(reason: Option<&str>) -> Result<String, InvalidField> {
    let reason = reason.unwrap_or("").trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(InvalidField::new("reason", "say why you need this patient's data (1 to 200 characters)"));
    }
    Ok(reason.to_owned())
}

impl App {
    /// A page of contacts, IDs and update times only, in a stable order.
    pub async fn list_contacts(&self, after: Option<&str>, limit: usize) -> Result<ContactPage, AppError> {
        let page =
            self.ports.contacts.scan_shard(ShardSpec { index: 0, total: 1 }, after, limit.clamp(1, 1000)).await?;
        Ok(ContactPage {
            contacts: page
                .records
                .into_iter()
                .map(|r| ContactSummary { contact_id: r.id, updated_at: r.updated_at })
                .collect(),
            next: page.next,
        })
    }

    /// One contact with its PHI; the reason and the caller go to the audit log first.
    pub async fn read_contact(
        &self,
        actor: &str,
        id: &ContactId,
        reason: Option<&str>,
    ) -> Result<ContactView, AppError> {
        let reason = parse_reason(reason)?;
        let Some(record) = self.ports.contacts.get(id).await? else { return Err(AppError::NotFound("contact")) };
        let attributes = crate::domain::Attribute::ALL.iter().map(|a| a.as_str().to_owned()).collect();
        self.record_access(actor, "contact.read", Some(*id), attributes, reason).await?;
        let (email, p) = self.envelope.open(&record.id, &record.sealed, None).await?;
        Ok(ContactView {
            contact_id: record.id,
            external_id: record.external_id.map(|e| e.as_str().to_owned()),
            email: email.as_str().to_owned(),
            attributes: serde_json::json!({
                "first_name": p.first_name,
                "last_name": p.last_name,
                "date_of_birth": p.date_of_birth.map(format_date),
                "sex": p.sex.map(|s| s.as_str()),
                "zip": p.zip,
                "language": p.language,
                "conditions": p.conditions,
                "medications": p.medications,
                "journey_stage": p.journey_stage,
                "last_visit": p.last_visit.map(format_date),
            }),
        })
    }

    /// Upserts up to `BATCH_LIMIT` contacts, each on its own: one bad item
    /// does not stop the others. Idempotent by external ID.
    pub async fn upsert_batch(&self, actor: &str, items: Vec<BatchItem>) -> Result<Vec<BatchResult>, AppError> {
        if items.len() > BATCH_LIMIT {
            return Err(InvalidField::new("contacts", format!("at most {BATCH_LIMIT} per batch")).into());
        }
        let mut results = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let rejected = |field: String, message: String| BatchResult {
                index,
                status: BatchStatus::Rejected,
                contact_id: None,
                field: Some(field),
                message: Some(message),
            };
            let external = match ExternalId::parse(&item.external_id) {
                Ok(e) => e,
                Err(e) => {
                    results.push(rejected("external_id".into(), e.to_string()));
                    continue;
                }
            };
            match self.upsert_contact(actor, external, &item.email, &item.attributes).await {
                Ok(outcome) => results.push(BatchResult {
                    index,
                    status: if outcome.created { BatchStatus::Created } else { BatchStatus::Updated },
                    contact_id: Some(outcome.contact_id),
                    field: None,
                    message: None,
                }),
                Err(AppError::Invalid(f)) => results.push(rejected(f.field, f.message)),
                Err(AppError::Conflict(m)) => results.push(rejected("email".into(), m)),
                Err(e) => return Err(e),
            }
        }
        Ok(results)
    }
}
