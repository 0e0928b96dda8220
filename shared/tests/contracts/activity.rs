//! `ActivityStore`: a contact's last open and click (never moved back), its
//! soft bounces within a window, the frequency cap's claims, and recipient
//! domains remembered lacking TLS until their memory expires.

use std::time::Duration;

use carepost::domain::{CampaignId, ConsentRequestId, ContactId, RecipientDomain};
use carepost::ports::{Activity, ActivityStore, Engagement, Window};
use time::OffsetDateTime;

use super::support::T0;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn expiry() -> time::OffsetDateTime {
    T0 + 400 * DAY
}

/// The window of `length` ending `at`, for a row that expires at [`expiry`].
fn window(at: OffsetDateTime, length: Duration) -> Window {
    Window { at, since: at - length, expires_at: expiry() }
}

pub async fn activity_store_contract(store: &dyn ActivityStore) {
    a_contact_without_activity_has_none(store).await;
    opens_and_clicks_are_kept_apart_and_never_move_back(store).await;
    soft_bounces_are_counted_within_the_window_only(store).await;
    a_domain_lacks_tls_from_its_failure_until_the_memory_expires(store).await;
    one_confirmation_slot_per_interval(store).await;
    a_slot_whose_email_did_not_leave_is_the_requests_again_or_given_back(store).await;
    the_frequency_cap_admits_max_campaigns_per_window_and_repeats_of_one(store).await;
    racing_claims_never_pass_the_frequency_cap(store).await;
}

pub async fn the_frequency_cap_admits_max_campaigns_per_window_and_repeats_of_one(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();
    let week = Duration::from_secs(7 * 24 * 3600);
    let day = |d: u64| T0 + Duration::from_secs(d * 24 * 3600);
    let (a, b, c) = (CampaignId::new_random(), CampaignId::new_random(), CampaignId::new_random());
    let claim = |campaign: CampaignId, at: OffsetDateTime| async move {
        store.claim_marketing_send(&contact, &campaign, 2, window(at, week)).await.unwrap()
    };

    let first = claim(a, day(0)).await;
    let second = claim(b, day(1)).await;
    let third_in_the_week = claim(c, day(2)).await;
    let first_again = claim(a, day(3)).await;
    let counted_on_day_3 = store.marketing_sends_since(&contact, day(3) - week, &c).await.unwrap();
    let counted_except_a = store.marketing_sends_since(&contact, day(3) - week, &a).await.unwrap();
    let third_a_week_later = claim(c, day(7) + Duration::from_secs(1)).await;

    assert_eq!((first, second, third_in_the_week, first_again), (true, true, false, true));
    assert_eq!((counted_on_day_3, counted_except_a), (2, 1));
    assert!(third_a_week_later, "the first claim has left the window");
}

pub async fn racing_claims_never_pass_the_frequency_cap(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();
    let campaigns: Vec<CampaignId> = (0..6).map(|_| CampaignId::new_random()).collect();
    let since = T0 - Duration::from_secs(3600);

    let claims = futures::future::join_all(
        campaigns.iter().map(|c| store.claim_marketing_send(&contact, c, 2, window(T0, Duration::from_secs(3600)))),
    )
    .await;

    let granted = claims.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(granted, 2);
    assert_eq!(store.marketing_sends_since(&contact, since, &CampaignId::new_random()).await.unwrap(), 2);
}

pub async fn one_confirmation_slot_per_interval(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();
    let (first_request, other_request) = (ConsentRequestId::new_random(), ConsentRequestId::new_random());
    let hour = Duration::from_secs(3600);
    let at = |minutes: u64| T0 + Duration::from_secs(minutes * 60);
    let claim = |request: ConsentRequestId, minutes: u64| async move {
        store.claim_confirmation_slot(&contact, &request, window(at(minutes), hour)).await.unwrap()
    };

    let first = claim(first_request, 0).await;
    store.confirmation_handed_over(&contact, &first_request).await.unwrap();
    let within_the_hour = claim(other_request, 59).await;
    let same_request_after_its_email = claim(first_request, 59).await;
    let after_the_hour = claim(other_request, 60).await;
    store.confirmation_handed_over(&contact, &other_request).await.unwrap();
    let right_after = claim(first_request, 61).await;

    assert_eq!((first, within_the_hour, same_request_after_its_email), (true, false, false));
    assert_eq!((after_the_hour, right_after), (true, false));
    store.record_engagement(&contact, Engagement::Open, at(62), expiry()).await.unwrap();
    assert!(!claim(first_request, 63).await, "kept");
}

pub async fn a_slot_whose_email_did_not_leave_is_the_requests_again_or_given_back(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();
    let (request, other) = (ConsentRequestId::new_random(), ConsentRequestId::new_random());
    let hour = Duration::from_secs(3600);
    let claim = |r: ConsentRequestId, minutes: u64| async move {
        store.claim_confirmation_slot(&contact, &r, window(T0 + Duration::from_secs(minutes * 60), hour)).await.unwrap()
    };

    let first = claim(request, 0).await;
    let retry_of_the_same = claim(request, 1).await;
    let another_meanwhile = claim(other, 2).await;
    store.release_confirmation_slot(&contact, &other).await.unwrap();
    let still_held = claim(other, 3).await;
    store.release_confirmation_slot(&contact, &request).await.unwrap();
    let after_release = claim(other, 4).await;
    store.confirmation_handed_over(&contact, &other).await.unwrap();
    store.release_confirmation_slot(&contact, &other).await.unwrap();
    let spent = claim(request, 5).await;

    assert_eq!((first, retry_of_the_same, another_meanwhile), (true, true, false));
    assert!(!still_held, "only the holder gives a slot back");
    assert!(after_release, "a released slot is free");
    assert!(!spent, "a slot whose email left cannot be given back");
}

pub async fn a_contact_without_activity_has_none(store: &dyn ActivityStore) {
    assert_eq!(store.activity(&ContactId::new_random()).await.unwrap(), None);
}

pub async fn opens_and_clicks_are_kept_apart_and_never_move_back(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();

    store.record_engagement(&contact, Engagement::Open, T0 + DAY, expiry()).await.unwrap();
    store.record_engagement(&contact, Engagement::Open, T0, expiry()).await.unwrap();
    store.record_engagement(&contact, Engagement::Click, T0 + 2 * DAY, expiry()).await.unwrap();

    assert_eq!(
        store.activity(&contact).await.unwrap(),
        Some(Activity { last_open: Some(T0 + DAY), last_click: Some(T0 + 2 * DAY) })
    );
}

pub async fn soft_bounces_are_counted_within_the_window_only(store: &dyn ActivityStore) {
    let contact = ContactId::new_random();
    let week = 7 * DAY;

    let first = store.record_soft_bounce(&contact, window(T0, week)).await.unwrap();
    let second = store.record_soft_bounce(&contact, window(T0 + DAY, week)).await.unwrap();
    // Ten days on, the first two are outside a seven-day window.
    let later = T0 + 10 * DAY;
    let third = store.record_soft_bounce(&contact, window(later, week)).await.unwrap();
    let fourth = store.record_soft_bounce(&contact, window(later + DAY, week)).await.unwrap();

    assert_eq!((first, second, third, fourth), (1, 2, 1, 2));
    assert_eq!(store.activity(&contact).await.unwrap().map(|a| a.last_open), Some(None), "bounces are not opens");
}

pub async fn a_domain_lacks_tls_from_its_failure_until_the_memory_expires(store: &dyn ActivityStore) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let gap = RecipientDomain::parse(&format!("no-tls-{tag}.example")).unwrap();
    let other = RecipientDomain::parse(&format!("tls-{tag}.example")).unwrap();
    assert!(!store.lacks_tls(&gap, T0).await.unwrap(), "nothing remembered yet");

    store.remember_tls_gap(&gap, T0, T0 + 30 * DAY).await.unwrap();

    assert!(store.lacks_tls(&gap, T0 + DAY).await.unwrap());
    assert!(!store.lacks_tls(&other, T0 + DAY).await.unwrap(), "only the domain that failed");
    assert!(!store.lacks_tls(&gap, T0 + 31 * DAY).await.unwrap(), "forgotten once the memory expires");
    // A later failure renews the memory.
    store.remember_tls_gap(&gap, T0 + 20 * DAY, T0 + 50 * DAY).await.unwrap();
    assert!(store.lacks_tls(&gap, T0 + 31 * DAY).await.unwrap());
}

mod embedded {
    use carepost::adapters::embedded::SqliteActivityStore;

    use super::super::support::{Scratch, scratch};

    fn store() -> (Scratch, SqliteActivityStore) {
        let s = scratch();
        let store = SqliteActivityStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn the_frequency_cap_admits_max_campaigns_per_window_and_repeats_of_one() {
        let (_s, store) = store();
        super::the_frequency_cap_admits_max_campaigns_per_window_and_repeats_of_one(&store).await;
    }

    #[tokio::test]
    async fn racing_claims_never_pass_the_frequency_cap() {
        let (_s, store) = store();
        super::racing_claims_never_pass_the_frequency_cap(&store).await;
    }

    #[tokio::test]
    async fn a_contact_without_activity_has_none() {
        let (_s, store) = store();
        super::a_contact_without_activity_has_none(&store).await;
    }

    #[tokio::test]
    async fn opens_and_clicks_are_kept_apart_and_never_move_back() {
        let (_s, store) = store();
        super::opens_and_clicks_are_kept_apart_and_never_move_back(&store).await;
    }

    #[tokio::test]
    async fn soft_bounces_are_counted_within_the_window_only() {
        let (_s, store) = store();
        super::soft_bounces_are_counted_within_the_window_only(&store).await;
    }

    #[tokio::test]
    async fn one_confirmation_slot_per_interval() {
        let (_s, store) = store();
        super::one_confirmation_slot_per_interval(&store).await;
    }

    #[tokio::test]
    async fn a_slot_whose_email_did_not_leave_is_the_requests_again_or_given_back() {
        let (_s, store) = store();
        super::a_slot_whose_email_did_not_leave_is_the_requests_again_or_given_back(&store).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_store() {
        let (_s, store) = store();
        super::activity_store_contract(&store).await;
    }
}
