//! `SecureMessageStore`: one message per campaign and contact, its notice
//! flag, codes issued within a rate limit, failed proofs counted and
//! forgiven by a success.

use std::time::Duration;

use carepost::domain::{CampaignId, ContactId};
use carepost::ports::{IssuedCode, SecureMessage, SecureMessageStore, Window};

use super::support::T0;

const HOUR: Duration = Duration::from_secs(3600);

fn message(sealed: &[u8]) -> SecureMessage {
    SecureMessage {
        campaign: CampaignId::new_random(),
        contact: ContactId::new_random(),
        sealed: sealed.to_vec(),
        created_at: T0,
        expires_at: T0 + 30 * 24 * HOUR,
        notice_sent: false,
        code: None,
        failures: 0,
    }
}

fn code(hash: &str) -> IssuedCode {
    IssuedCode { hash: hash.to_owned(), expires_at: T0 + HOUR }
}

fn hour_ending(at: time::OffsetDateTime) -> Window {
    Window::ending(at, HOUR, 30 * 24 * HOUR)
}

pub async fn secure_message_store_contract(store: &dyn SecureMessageStore) {
    a_message_is_stored_once_per_campaign_and_contact(store).await;
    codes_are_issued_within_the_rate_limit_and_the_latest_counts(store).await;
    failures_are_counted_until_a_success_forgives_them(store).await;
}

pub async fn a_message_is_stored_once_per_campaign_and_contact(store: &dyn SecureMessageStore) {
    let first = message(b"sealed-first");
    let mut second = message(b"sealed-second");
    second.campaign = first.campaign;
    second.contact = first.contact;
    assert_eq!(store.get(&first.campaign, &first.contact).await.unwrap(), None);

    let stored = store.create(&first).await.unwrap();
    let again = store.create(&second).await.unwrap();
    store.notice_sent(&first.campaign, &first.contact).await.unwrap();

    assert_eq!(stored, first);
    assert_eq!(again.sealed, b"sealed-first", "the earlier message stays");
    let read = store.get(&first.campaign, &first.contact).await.unwrap().unwrap();
    assert!(read.notice_sent);
    assert_eq!((read.created_at, read.expires_at), (first.created_at, first.expires_at));
    let other_campaign = CampaignId::new_random();
    assert_eq!(store.get(&other_campaign, &first.contact).await.unwrap(), None);
}

pub async fn codes_are_issued_within_the_rate_limit_and_the_latest_counts(store: &dyn SecureMessageStore) {
    let m = store.create(&message(b"sealed")).await.unwrap();
    let (campaign, contact) = (m.campaign, m.contact);

    let mut issued = Vec::new();
    for (i, minutes) in [0u64, 10, 20, 30].into_iter().enumerate() {
        let at = T0 + Duration::from_secs(minutes * 60);
        issued.push(
            store.issue_code(&campaign, &contact, &code(&format!("hash-{i}")), 3, hour_ending(at)).await.unwrap(),
        );
    }
    let after_the_hour = store.issue_code(&campaign, &contact, &code("hash-late"), 3, hour_ending(T0 + 2 * HOUR)).await;
    let unknown = store.issue_code(&CampaignId::new_random(), &contact, &code("x"), 3, hour_ending(T0)).await;

    assert_eq!(issued, vec![true, true, true, false], "three codes an hour");
    assert!(after_the_hour.unwrap(), "older codes no longer count");
    assert!(!unknown.unwrap(), "no message, no code");
    let read = store.get(&campaign, &contact).await.unwrap().unwrap();
    assert_eq!(read.code.map(|c| c.hash), Some("hash-late".to_owned()));
}

pub async fn failures_are_counted_until_a_success_forgives_them(store: &dyn SecureMessageStore) {
    let m = store.create(&message(b"sealed")).await.unwrap();
    let (campaign, contact) = (m.campaign, m.contact);
    store.issue_code(&campaign, &contact, &code("hash"), 3, hour_ending(T0)).await.unwrap();

    let counts = [
        store.record_failure(&campaign, &contact).await.unwrap(),
        store.record_failure(&campaign, &contact).await.unwrap(),
    ];
    store.spend_code(&campaign, &contact).await.unwrap();

    assert_eq!(counts, [1, 2]);
    let read = store.get(&campaign, &contact).await.unwrap().unwrap();
    assert_eq!((read.failures, read.code), (0, None), "the code is spent and the failures forgiven");
}

mod embedded {
    use carepost::adapters::embedded::SqliteSecureMessageStore;

    use super::super::support::scratch;

    #[tokio::test]
    async fn the_sqlite_store_passes_the_contract() {
        let s = scratch();
        super::secure_message_store_contract(&SqliteSecureMessageStore::new(s.db.clone())).await;
    }
}
