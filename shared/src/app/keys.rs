//! Customer-key rotation and the re-encryption behind it. Rotation gives the
//! key provider new key material; from then on every new data key is wrapped
//! under it, and records sealed before still open (the old material stays).
//! Re-sealing then walks the contacts page by page, each page its own
//! request, so it runs beside normal traffic, resumes from its cursor and
//! fits a Lambda's time limit.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use time::OffsetDateTime;

use super::{AppError, Auditor};
use crate::crypto::Envelope;
use crate::domain::{Attribute, ContactId, InvalidField};
use crate::error::{Classify, ErrorClass};
use crate::ports::{Clock, ContactStore, ShardSpec};

/// The most contacts one re-seal page handles.
pub const RESEAL_PAGE_LIMIT: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// Pass to every re-seal page: data keys born before it are retired.
    #[serde(with = "time::serde::rfc3339")]
    pub rotated_at: OffsetDateTime,
    /// The provider's description of the new key material (no secret).
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ResealPage {
    pub scanned: usize,
    pub resealed: usize,
    /// Updated or erased while this page ran: already sealed under a new data key, or gone.
    pub changed_meanwhile: usize,
    /// Contacts whose sealed attributes do not open (tampered or corrupt): left as they are.
    pub unreadable: Vec<ContactId>,
    /// Pass back as `cursor` for the next page; absent when every contact has been seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

pub struct KeyRotation {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) audit: Arc<Auditor>,
    pub(super) clock: Arc<dyn Clock>,
}

impl KeyRotation {
    /// Rotates the customer key and retires this process's current data key.
    pub async fn rotate(&self, actor: &str) -> Result<Rotation, AppError> {
        let rotated_at = self.clock.now();
        let key = self.envelope.rotate_customer_key().await?;
        self.audit.record(actor, "keys.rotate", None, Vec::new(), key.clone()).await?;
        Ok(Rotation { rotated_at, key })
    }

    /// Re-seals one page of contacts under a data key born after `rotated_at`.
    /// The page's decryption is audited before it happens, as one entry.
    pub async fn reseal_page(
        &self,
        actor: &str,
        rotated_at: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ResealPage, AppError> {
        if rotated_at > self.clock.now() {
            return Err(
                InvalidField::new("rotated_at", "must be the time a rotation returned, not a future time").into()
            );
        }
        self.envelope.retire_keys_born_before(SystemTime::from(rotated_at)).await;
        let whole_table = ShardSpec { index: 0, total: 1 };
        let page = self.contacts.scan_shard(whole_table, cursor, limit.clamp(1, RESEAL_PAGE_LIMIT)).await?;
        let mut out = ResealPage { scanned: page.records.len(), next: page.next, ..Default::default() };
        if page.records.is_empty() {
            return Ok(out);
        }
        let attributes = Attribute::ALL.iter().map(|a| a.as_str().to_owned()).collect();
        let reason = format!("key rotation: re-sealing {} contacts", page.records.len());
        self.audit.record(actor, "contacts.reseal", None, attributes, reason).await?;
        for record in page.records {
            let resealed = match self.envelope.reseal(&record.id, &record.sealed).await {
                Ok(resealed) => resealed,
                Err(e) if e.class() == ErrorClass::Permanent => {
                    out.unreadable.push(record.id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if self.contacts.replace_sealed(&record.id, &record.sealed, &resealed).await? {
                out.resealed += 1;
            } else {
                out.changed_meanwhile += 1;
            }
        }
        Ok(out)
    }
}
