//! `AuditLog`: one append-only hash chain. An append must follow the
//! current last entry; a stale writer gets `Conflict` and chains again;
//! entries read back in order, unchanged, and verify.

use carepost::domain::{AuditEntry, AuditEvent, ContactId, verify_audit_chain};
use carepost::ports::{AuditLog, StoreError};

use super::support::T0;

fn event(action: &str) -> AuditEvent {
    AuditEvent {
        at: T0,
        actor: "arn:aws:iam::111122223333:role/support".into(),
        action: action.into(),
        contact_id: Some(ContactId::new_random()),
        attributes: vec!["first_name".into(), "medications".into()],
        reason: "patient asked for a copy".into(),
    }
}

/// Appends after whatever is last now.
async fn append(log: &dyn AuditLog, action: &str) -> AuditEntry {
    let last = log.last().await.unwrap();
    let entry = AuditEntry::chain(last.as_ref(), event(action));
    log.append(&entry).await.unwrap();
    entry
}

pub async fn audit_log_contract(log: &dyn AuditLog) {
    appended_entries_read_back_in_order_and_verify(log).await;
    an_append_that_does_not_follow_the_last_entry_is_a_conflict(log).await;
}

pub async fn appended_entries_read_back_in_order_and_verify(log: &dyn AuditLog) {
    let start = log.last().await.unwrap().map_or(0, |e| e.seq);
    let mut written = Vec::new();
    for i in 0..12 {
        written.push(append(log, &format!("contact.read.{i}")).await);
    }

    let first_page = log.entries(start, 5).await.unwrap();
    let rest = log.entries(start + 5, 100).await.unwrap();
    let everything = log.entries(0, 1000).await.unwrap();

    assert_eq!(first_page, written[..5]);
    assert_eq!(rest, written[5..]);
    assert_eq!(log.last().await.unwrap().as_ref(), written.last());
    assert_eq!(verify_audit_chain(&everything), Ok(()));
}

pub async fn an_append_that_does_not_follow_the_last_entry_is_a_conflict(log: &dyn AuditLog) {
    let before = log.last().await.unwrap();
    let head = append(log, "contact.read").await;
    let stale = AuditEntry::chain(before.as_ref(), event("contact.read.stale"));
    let mut forged = AuditEntry::chain(Some(&head), event("contact.read.forged"));
    forged.prev_hash = "f".repeat(64);
    let skipping = AuditEntry::chain(Some(&AuditEntry::chain(Some(&head), event("x"))), event("contact.read.skip"));

    let results = [log.append(&stale).await, log.append(&forged).await, log.append(&skipping).await];

    for result in results {
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    }
    assert_eq!(log.last().await.unwrap(), Some(head));
}

mod embedded {
    use carepost::adapters::embedded::SqliteAuditLog;

    use super::super::support::{Scratch, scratch};

    fn log() -> (Scratch, SqliteAuditLog) {
        let s = scratch();
        let log = SqliteAuditLog::new(s.db.clone());
        (s, log)
    }

    #[tokio::test]
    async fn appended_entries_read_back_in_order_and_verify() {
        let (_s, log) = log();
        super::appended_entries_read_back_in_order_and_verify(&log).await;
    }

    #[tokio::test]
    async fn an_append_that_does_not_follow_the_last_entry_is_a_conflict() {
        let (_s, log) = log();
        super::an_append_that_does_not_follow_the_last_entry_is_a_conflict(&log).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_log() {
        let (_s, log) = log();
        super::audit_log_contract(&log).await;
    }
}
