//! The PHI-access audit log: who read which contact's attributes, when and
//! why. Append-only and hash-chained like the consent ledger, one chain for
//! the whole deployment. Entries carry IDs and attribute names, never values.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ContactId;
use super::chain::{ChainError, Link, chained, verify_links};

/// One access, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// An IAM principal ARN, or `local-admin`.
    pub actor: String,
    /// What was done, e.g. `contact.read`, `send.batch`.
    pub action: String,
    pub contact_id: Option<ContactId>,
    /// Attribute names, never values.
    pub attributes: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Chains `event` after `prev` (or after genesis for the first entry).
    pub fn chain(prev: Option<&AuditEntry>, event: AuditEvent) -> AuditEntry {
        chained(prev, event)
    }
}

impl Link for AuditEntry {
    const LABEL: &'static [u8] = b"carepost-audit-v1\n";
    type Content = AuditEvent;
    fn parts(&self) -> (u64, &str, &str, &AuditEvent) {
        (self.seq, &self.prev_hash, &self.hash, &self.event)
    }
    fn from_parts(seq: u64, prev_hash: String, hash: String, event: AuditEvent) -> Self {
        AuditEntry { seq, event, prev_hash, hash }
    }
}

/// Verifies the log from its first entry, in sequence order.
pub fn verify_audit_chain(entries: &[AuditEntry]) -> Result<(), ChainError> {
    verify_links(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            at: OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(),
            actor: "local-admin".into(),
            action: action.into(),
            contact_id: Some(ContactId::new_random()),
            attributes: vec!["first_name".into(), "conditions".into()],
            reason: "support ticket 123".into(),
        }
    }

    fn log(n: usize) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let next = AuditEntry::chain(entries.last(), event(&format!("contact.read.{i}")));
            entries.push(next);
        }
        entries
    }

    #[test]
    fn an_intact_log_verifies() {
        assert_eq!(verify_audit_chain(&log(3)), Ok(()));
    }

    #[test]
    fn an_edited_entry_is_detected() {
        let mut entries = log(3);
        entries[1].event.attributes.clear();
        assert_eq!(verify_audit_chain(&entries), Err(ChainError::Altered { seq: 2 }));
    }

    #[test]
    fn a_removed_entry_is_detected() {
        let mut entries = log(3);
        entries.remove(1);
        assert_eq!(verify_audit_chain(&entries), Err(ChainError::Broken { seq: 3 }));
    }
}
