//! Writing and reading the PHI-access audit log: every decryption of
//! contact attributes outside the send path is recorded with who, which
//! contact, which attributes (names only), when and why; fan-out records one
//! entry per page and the sender one per batch. One hash chain for the
//! deployment; an append that loses a race chains again onto the new head.

use std::sync::Arc;

use super::AppError;
use crate::domain::chain::verify_links_after;
use crate::domain::{AuditEntry, AuditEvent, ChainError, ContactId, GENESIS_HASH};
use crate::ports::{AuditLog, Clock, StoreError};

/// Who an access is attributed to when no person is behind it.
pub const FANOUT_ACTOR: &str = "carepost:fanout";
pub const SENDER_ACTOR: &str = "carepost:sender";
/// The journey timer's sweep and the journey simulation.
pub const JOURNEY_ACTOR: &str = "carepost:journeys";
/// The embedded stack's administrator (its bearer token).
pub const LOCAL_ADMIN: &str = "local-admin";

/// The result of checking the whole log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerdict {
    pub verified: bool,
    pub entries: u64,
    /// The first entry that was edited, or that follows a removed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<u64>,
}

const PAGE: usize = 500;

/// Writes and reads the audit log; every service that decrypts PHI outside
/// the patient's own requests holds one.
pub struct Auditor {
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

impl Auditor {
    pub fn new(audit: Arc<dyn AuditLog>, clock: Arc<dyn Clock>) -> Auditor {
        Auditor { audit, clock }
    }

    /// Appends one access to the log.
    pub async fn record(
        &self,
        actor: &str,
        action: &str,
        contact_id: Option<ContactId>,
        attributes: Vec<String>,
        reason: String,
    ) -> Result<AuditEntry, AppError> {
        let event = AuditEvent {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            contact_id,
            attributes,
            reason,
        };
        let mut last_conflict = String::new();
        // Concurrent writers (senders, fan-out shards) race for the head.
        for _ in 0..20 {
            let head = self.audit.last().await?;
            let entry = AuditEntry::chain(head.as_ref(), event.clone());
            match self.audit.append(&entry).await {
                Ok(()) => return Ok(entry),
                Err(StoreError::Conflict(m)) => last_conflict = m,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!("audit log head kept moving: {last_conflict}")))
    }

    /// Up to `limit` entries after sequence number `after`.
    pub async fn entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, AppError> {
        Ok(self.audit.entries(after, limit.clamp(1, 1000)).await?)
    }

    /// Walks the whole chain page by page.
    pub async fn verify(&self) -> Result<AuditVerdict, AppError> {
        let mut previous: Option<AuditEntry> = None;
        let mut count = 0u64;
        loop {
            let after = previous.as_ref().map_or(0, |e| e.seq);
            let page = self.audit.entries(after, PAGE).await?;
            if page.is_empty() {
                return Ok(AuditVerdict { verified: true, entries: count, broken_at: None });
            }
            count += page.len() as u64;
            let (seq, hash) = previous.as_ref().map_or((0, GENESIS_HASH), |e| (e.seq, e.hash.as_str()));
            if let Err(ChainError::Altered { seq } | ChainError::Broken { seq }) = verify_links_after(seq, hash, &page)
            {
                return Ok(AuditVerdict { verified: false, entries: count, broken_at: Some(seq) });
            }
            previous = page.last().cloned();
        }
    }
}
