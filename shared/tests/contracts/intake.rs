//! `IntakeStore`: waiting consent requests (stored once, read until they
//! expire or are removed) and per-key request counts in fixed windows.

use std::time::Duration;

use carepost::domain::{ContactId, IntakeId};
use carepost::ports::{IntakeStore, LimitKey, LimitWindow, PendingIntake, StoreError};

use super::support::T0;

const HOUR: Duration = Duration::from_secs(3600);

fn pending() -> PendingIntake {
    PendingIntake {
        id: IntakeId::new_random(),
        form_id: "web-signup".into(),
        candidate: ContactId::new_random(),
        sealed_contact: vec![1, 2, 3, 0, 255],
        sealed_request: vec![9; 300],
        received_at: T0,
        expires_at: T0 + 24 * HOUR,
    }
}

pub async fn intake_store_contract(store: &dyn IntakeStore) {
    a_request_is_read_back_whole_until_removed(store).await;
    a_request_is_gone_once_it_expires_and_its_id_is_taken_once(store).await;
    requests_are_counted_per_key_and_window(store).await;
    racing_requests_are_all_counted(store).await;
}

pub async fn a_request_is_read_back_whole_until_removed(store: &dyn IntakeStore) {
    let intake = pending();

    store.put_intake(&intake).await.unwrap();
    let read = store.intake(&intake.id, T0).await.unwrap();
    store.remove_intake(&intake.id).await.unwrap();
    store.remove_intake(&intake.id).await.unwrap();

    assert_eq!(read, Some(intake.clone()));
    assert_eq!(store.intake(&intake.id, T0).await.unwrap(), None, "removed");
    assert_eq!(store.intake(&IntakeId::new_random(), T0).await.unwrap(), None);
}

pub async fn a_request_is_gone_once_it_expires_and_its_id_is_taken_once(store: &dyn IntakeStore) {
    let intake = pending();
    store.put_intake(&intake).await.unwrap();

    let again = store.put_intake(&PendingIntake { form_id: "other".into(), ..intake.clone() }).await;
    let before = store.intake(&intake.id, intake.expires_at - Duration::from_secs(1)).await.unwrap();
    let at_expiry = store.intake(&intake.id, intake.expires_at).await.unwrap();

    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(before.map(|i| i.form_id), Some("web-signup".to_owned()), "the first write stands");
    assert_eq!(at_expiry, None);
}

pub async fn requests_are_counted_per_key_and_window(store: &dyn IntakeStore) {
    let (ip, address) = (LimitKey::from_digest(key("ip")), LimitKey::from_digest(key("address")));
    let this_hour = LimitWindow::holding(T0, HOUR);
    let next_hour = LimitWindow::holding(T0 + HOUR, HOUR);

    let first = store.count_requests(&[ip.clone(), address.clone()], this_hour).await.unwrap();
    let second = store.count_requests(&[ip.clone(), address.clone()], this_hour).await.unwrap();
    let ip_only = store.count_requests(std::slice::from_ref(&ip), this_hour).await.unwrap();
    let later = store.count_requests(&[ip, address], next_hour).await.unwrap();

    assert_eq!((first, second, ip_only, later), (vec![1, 1], vec![2, 2], vec![3], vec![1, 1]));
    assert_eq!(this_hour.end, next_hour.start);
}

pub async fn racing_requests_are_all_counted(store: &dyn IntakeStore) {
    let hot = LimitKey::from_digest(key("hot"));
    let window = LimitWindow::holding(T0, HOUR);

    let counts =
        futures::future::join_all((0..20).map(|_| store.count_requests(std::slice::from_ref(&hot), window))).await;

    let mut seen: Vec<u32> = counts.into_iter().map(|c| c.unwrap()[0]).collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u32>>(), "each racing request got its own count");
}

/// A fresh hex key per test run, as the use case's keyed hashes look.
fn key(what: &str) -> String {
    format!("{what}{}", IntakeId::new_random().to_string().replace('-', ""))
}

mod embedded {
    use carepost::adapters::embedded::SqliteIntakeStore;

    use super::super::support::{Scratch, scratch};

    fn store() -> (Scratch, SqliteIntakeStore) {
        let s = scratch();
        let store = SqliteIntakeStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn a_request_is_read_back_whole_until_removed() {
        let (_s, store) = store();
        super::a_request_is_read_back_whole_until_removed(&store).await;
    }

    #[tokio::test]
    async fn a_request_is_gone_once_it_expires_and_its_id_is_taken_once() {
        let (_s, store) = store();
        super::a_request_is_gone_once_it_expires_and_its_id_is_taken_once(&store).await;
    }

    #[tokio::test]
    async fn requests_are_counted_per_key_and_window() {
        let (_s, store) = store();
        super::requests_are_counted_per_key_and_window(&store).await;
    }

    #[tokio::test]
    async fn racing_requests_are_all_counted() {
        let (_s, store) = store();
        super::racing_requests_are_all_counted(&store).await;
    }
}
