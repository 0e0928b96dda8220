//! Minimum-necessary views of contacts: the list returns IDs and
//! non-identifying fields only; PHI comes only from an explicit
//! single-contact read, which states why and is audited. And the batch
//! upsert, with a result per item.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AppError, ContactAdmin};
use crate::domain::{AttributeClass, ContactId, ExternalId, InvalidField, ProfileInput, Sensitive};
use crate::ports::ShardSpec;

/// The most contacts one batch upsert takes.
pub const BATCH_LIMIT: usize = 500;

/// One contact in a list: its ID and the schema's non-identifying attributes, no PHI.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactSummary {
    pub contact_id: ContactId,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub attributes: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactPage {
    pub contacts: Vec<ContactSummary>,
    /// Pass back as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A contact with its PHI, for an audited single-contact read (`Sensitive`:
/// serialized as plain values, never shown by `Debug`).
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    pub contact_id: ContactId,
    pub external_id: Option<String>,
    pub email: Sensitive<String>,
    pub attributes: Sensitive<serde_json::Value>,
}

/// One item of a batch upsert (`attributes`' `Debug` is redacted).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub external_id: String,
    pub email: Sensitive<String>,
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

impl ContactAdmin {
    /// A page of contacts in a stable order: IDs, update times and the
    /// schema's non-identifying attributes (only those are decrypted; one
    /// audit entry per page names them).
    pub async fn list(&self, actor: &str, after: Option<&str>, limit: usize) -> Result<ContactPage, AppError> {
        let page = self.contacts.scan_shard(ShardSpec { index: 0, total: 1 }, after, limit.clamp(1, 1000)).await?;
        let schema = &self.settings.schema;
        let listed = schema.codes_of(AttributeClass::NonIdentifying);
        if !listed.is_empty() && !page.records.is_empty() {
            let names = schema.attributes().iter().filter(|d| listed.contains(&d.code)).map(|d| d.name.clone());
            let reason = format!("list view: non-identifying attributes of {} contacts", page.records.len());
            self.audit.record(actor, "contacts.list", None, names.collect(), reason).await?;
        }
        let mut contacts = Vec::with_capacity(page.records.len());
        for r in page.records {
            let (_, profile) = self.envelope.open_where(&r.id, &r.sealed, |code| listed.contains(&code)).await?;
            let attributes = schema.profile_json(&profile, &[AttributeClass::NonIdentifying]);
            contacts.push(ContactSummary { contact_id: r.id, updated_at: r.updated_at, attributes });
        }
        Ok(ContactPage { contacts, next: page.next })
    }

    /// One contact with its PHI; the reason and the caller go to the audit log first.
    pub async fn read(&self, actor: &str, id: &ContactId, reason: Option<&str>) -> Result<ContactView, AppError> {
        let reason = parse_reason(reason)?;
        let Some(record) = self.contacts.get(id).await? else { return Err(AppError::NotFound("contact")) };
        self.audit.record(actor, "contact.read", Some(*id), self.settings.schema.names(), reason).await?;
        let (email, p) = self.envelope.open(&record.id, &record.sealed, None).await?;
        let every_class = [AttributeClass::Identifier, AttributeClass::Phi, AttributeClass::NonIdentifying];
        Ok(ContactView {
            contact_id: record.id,
            external_id: record.external_id.map(|e| e.as_str().to_owned()),
            email: email.as_str().to_owned().into(),
            attributes: self.settings.schema.profile_json(&p, &every_class).into(),
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
            match self.upsert(actor, external, item.email.expose(), &item.attributes).await {
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
