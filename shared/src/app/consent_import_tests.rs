//! The consent import's branches on in-memory stores and a manual clock.

use std::time::Duration;

use super::{ConsentImport, ImportStatus, ImportedConsent};
use crate::app::consent::RequestProof;
use crate::app::test_support::{Harness, category};
use crate::domain::{ConsentMethod, ConsentStatus, ContactId, Sensitive, SourceSystem};
use crate::ports::Clock;

const TEXT_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn import(h: &Harness, entries: Vec<(&str, &[&str])>) -> ConsentImport {
    ConsentImport {
        source_system: SourceSystem::parse("Epic MyChart").unwrap(),
        consent_text_sha256: TEXT_HASH.into(),
        entries: entries
            .into_iter()
            .map(|(external_id, topics)| ImportedConsent {
                external_id: Sensitive::new(external_id.to_owned()),
                categories: topics.iter().map(|t| category(t)).collect(),
                consented_at: h.clock.now() - Duration::from_secs(86_400 * 400),
            })
            .collect(),
    }
}

async fn status(h: &Harness, contact: &ContactId, topic: &str) -> Option<ConsentStatus> {
    let grants = h.app.ports.consent.grants(contact).await.unwrap();
    grants.into_iter().find(|g| g.category == category(topic)).map(|g| g.status)
}

#[tokio::test]
async fn an_import_grants_the_topics_with_method_import_and_its_provenance() {
    let h = Harness::new();
    let contact = h.patient("ana@example.org", &[]).await;

    let results = h
        .app
        .contacts
        .import_consent("test", import(&h, vec![("ext-ana-example-org", &["wellness-tips"])]), RequestProof::default())
        .await
        .unwrap();

    assert_eq!(results[0].status, ImportStatus::Imported);
    assert_eq!(status(&h, &contact, "wellness-tips").await, Some(ConsentStatus::Active));
    let history = h.app.ports.consent.history(&contact).await.unwrap();
    let entry = &history.last().unwrap().evidence;
    assert_eq!(entry.method, ConsentMethod::Import);
    assert_eq!(entry.imported.as_ref().unwrap().source_system.as_str(), "Epic MyChart");
    assert_eq!(entry.consent_text_sha256.as_deref(), Some(TEXT_HASH));
}

#[tokio::test]
async fn a_withdrawn_topic_stays_withdrawn_and_a_granted_one_is_unchanged() {
    let h = Harness::new();
    let contact = h.patient("ben@example.org", &["wellness-tips", "appointment-reminders"]).await;
    let withdraw = [category("wellness-tips")];
    h.app.consent_ledger.withdraw(&contact, &withdraw, ConsentMethod::Admin, RequestProof::default()).await.unwrap();
    let entries_before = h.app.ports.consent.history(&contact).await.unwrap().len();

    let topics: &[&str] = &["wellness-tips", "appointment-reminders"];
    let results = h
        .app
        .contacts
        .import_consent("test", import(&h, vec![("ext-ben-example-org", topics)]), RequestProof::default())
        .await
        .unwrap();

    assert_eq!(results[0].status, ImportStatus::Unchanged);
    assert_eq!(results[0].kept_withdrawn, vec![category("wellness-tips")]);
    assert_eq!(status(&h, &contact, "wellness-tips").await, Some(ConsentStatus::Withdrawn));
    assert_eq!(h.app.ports.consent.history(&contact).await.unwrap().len(), entries_before, "nothing recorded");
}

#[tokio::test]
async fn an_unknown_contact_a_future_date_and_an_empty_topic_list_are_rejected_by_field() {
    let h = Harness::new();
    h.patient("cleo@example.org", &[]).await;
    let mut body = import(&h, vec![("ext-nobody", &["wellness-tips"]), ("ext-cleo-example-org", &[])]);
    let mut future = import(&h, vec![("ext-cleo-example-org", &["wellness-tips"])]).entries.remove(0);
    future.consented_at = h.clock.now() + Duration::from_secs(3600);
    body.entries.push(future);

    let results = h.app.contacts.import_consent("test", body, RequestProof::default()).await.unwrap();

    let fields: Vec<_> = results.iter().map(|r| (r.status, r.field.as_deref())).collect();
    assert_eq!(
        fields,
        [
            (ImportStatus::Rejected, Some("external_id")),
            (ImportStatus::Rejected, Some("categories")),
            (ImportStatus::Rejected, Some("consented_at")),
        ]
    );
}

#[tokio::test]
async fn a_consent_text_hash_that_is_not_sha256_hex_refuses_the_request() {
    let h = Harness::new();
    let mut body = import(&h, vec![]);
    body.consent_text_sha256 = "not-a-hash".into();

    let refused = h.app.contacts.import_consent("test", body, RequestProof::default()).await;

    assert!(matches!(refused, Err(crate::app::AppError::Invalid(f)) if f.field == "consent_text_sha256"));
}

#[test]
fn a_source_system_is_printable_text_of_at_most_a_hundred_characters() {
    assert!(SourceSystem::parse("Epic MyChart").is_ok());
    assert!(SourceSystem::parse("  ").is_err());
    assert!(SourceSystem::parse(&"x".repeat(101)).is_err());
    assert!(SourceSystem::parse("evil\u{202e}txt").is_err());
    assert!(SourceSystem::parse("line\nbreak").is_err());
}
