//! `SendLedger`: exactly-once bookkeeping per (campaign, contact). A claim
//! holds a lease; a lapsed lease can be taken over with a higher attempt; only
//! the current attempt may settle or release. The suites pass `now`
//! explicitly, so no test waits for a lease to run out.

use std::time::Duration;

use carepost::domain::{
    BounceKind, CampaignCounter, CampaignId, ContactId, LinkKey, ProviderMessageId, RecipientDomain,
};
use carepost::ports::{
    ClaimOutcome, DeliveryRecord, DeliveryReport, DeliveryState, DomainReach, EventMark, HELD_REASON, LedgerCounts,
    LedgerState, Reopenable, SendLedger, StoreError,
};

use super::support::{T0, unique};

const LEASE: Duration = Duration::from_secs(30);

fn pair() -> (CampaignId, ContactId) {
    (CampaignId::new_random(), ContactId::new_random())
}

fn sent(id: &str) -> LedgerState {
    LedgerState::Sent { provider_message_id: ProviderMessageId::new(id) }
}

fn assert_conflict(result: Result<(), StoreError>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

pub async fn ledger_contract(ledger: &dyn SendLedger) {
    the_first_claim_is_attempt_one(ledger).await;
    a_second_claim_while_the_lease_is_held_is_busy(ledger).await;
    a_claim_after_the_lease_lapsed_takes_over_as_the_next_attempt(ledger).await;
    settling_with_a_stale_attempt_is_a_conflict(ledger).await;
    a_claim_after_a_send_was_settled_is_done(ledger).await;
    skipped_and_failed_are_terminal_too(ledger).await;
    a_released_claim_can_be_claimed_again_at_once_with_a_higher_attempt(ledger).await;
    releasing_with_a_stale_attempt_is_a_conflict(ledger).await;
    a_settled_send_is_found_by_its_provider_message_id(ledger).await;
    counts_group_one_campaigns_rows_by_state(ledger).await;
    a_lease_is_held_to_its_exact_end(ledger).await;
    failed_rows_are_listed_in_id_order_and_reopened_for_a_new_claim(ledger).await;
    held_rows_are_told_apart_from_other_skips(ledger).await;
    each_provider_event_is_first_only_once_per_message(ledger).await;
    stranded_rows_are_released_or_lapsed_claims_past_the_time_never_settled_ones(ledger).await;
    clicks_are_first_once_per_message_and_link(ledger).await;
    a_provider_failure_turns_only_a_sent_row_failed_and_keeps_it_matchable(ledger).await;
    the_delivery_state_ranks_and_the_subtype_and_delay_type_are_kept(ledger).await;
    a_delivery_and_its_mark_are_kept_together_and_first_only_once(ledger).await;
    reach_is_counted_per_recipient_domain_from_the_rows_settled_with_one(ledger).await;
}

pub async fn reach_is_counted_per_recipient_domain_from_the_rows_settled_with_one(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let domain = |d: &str| RecipientDomain::parse(d).unwrap();
    let settle_to = |contact: ContactId, state: LedgerState, d: &'static str| async move {
        ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
        ledger.settle_with(&campaign, &contact, 1, &state, Some(&domain(d))).await.unwrap();
        contact
    };
    let delivered = settle_to(ContactId::new_random(), sent(&unique("ses")), "big.example").await;
    let opened = settle_to(ContactId::new_random(), sent(&unique("ses")), "big.example").await;
    let expired = settle_to(ContactId::new_random(), sent(&unique("ses")), "big.example").await;
    let refused = LedgerState::Failed { reason: "tls_unavailable".into() };
    settle_to(ContactId::new_random(), refused, "no-tls.example").await;
    // Skipped before the address was read: no domain, not counted.
    settled(ledger, &campaign, &ContactId::new_random(), LedgerState::Skipped { reason: "no_consent".into() }).await;
    let report = |state| DeliveryReport { state, bounce_subtype: None, delay_type: None };
    ledger.record_delivery(&campaign, &delivered, &report(DeliveryState::Delivered), T0).await.unwrap();
    ledger.record_delivery(&campaign, &opened, &report(DeliveryState::Delivered), T0).await.unwrap();
    ledger.first_mark(&campaign, &opened, &CampaignCounter::Opened.into()).await.unwrap();
    let tls = report(DeliveryState::Bounced(BounceKind::TlsUnavailable));
    ledger.record_delivery(&campaign, &expired, &tls, T0).await.unwrap();

    let reach = ledger.reach_by_domain(&campaign).await.unwrap();

    let big = DomainReach {
        domain: domain("big.example"),
        recipients: 3,
        sent: 3,
        delivered: 2,
        bounced: 0,
        tls_unavailable: 1,
        opened: 1,
        complained: 0,
    };
    let no_tls = DomainReach {
        domain: domain("no-tls.example"),
        recipients: 1,
        sent: 0,
        delivered: 0,
        bounced: 0,
        tls_unavailable: 1,
        opened: 0,
        complained: 0,
    };
    assert_eq!(reach, vec![big, no_tls], "most sent first; the skipped row has no domain");
    assert!(ledger.reach_by_domain(&CampaignId::new_random()).await.unwrap().is_empty());
}

pub async fn clicks_are_first_once_per_message_and_link(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    settled(ledger, &campaign, &contact, sent(&unique("ses"))).await;
    let (a, b) = (LinkKey::of_url("https://clinic.example/a"), LinkKey::of_url("https://clinic.example/b"));

    let first_a = ledger.first_mark(&campaign, &contact, &EventMark::link(CampaignCounter::Clicked, a.clone())).await;
    let again_a = ledger.first_mark(&campaign, &contact, &EventMark::link(CampaignCounter::Clicked, a)).await;
    let first_b = ledger.first_mark(&campaign, &contact, &EventMark::link(CampaignCounter::Clicked, b)).await;
    let message = ledger.first_event(&campaign, &contact, CampaignCounter::Clicked).await;

    assert_eq!((first_a.unwrap(), again_a.unwrap(), first_b.unwrap()), (true, false, true));
    assert!(message.unwrap(), "the message-level mark is its own");
}

pub async fn a_provider_failure_turns_only_a_sent_row_failed_and_keeps_it_matchable(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    let id = unique("ses");
    settled(ledger, &campaign, &contact, sent(&id)).await;
    let (claimed_campaign, claimed) = pair();
    ledger.claim(&claimed_campaign, &claimed, T0, LEASE).await.unwrap();
    let reason = "rendering_failure: missing_attribute; template carepost-template";

    let failed = ledger.fail_sent(&campaign, &contact, reason).await.unwrap();
    let again = ledger.fail_sent(&campaign, &contact, reason).await.unwrap();
    let not_sent = ledger.fail_sent(&claimed_campaign, &claimed, reason).await.unwrap();

    assert!(failed && !again && !not_sent);
    assert_eq!(ledger.state(&campaign, &contact).await.unwrap(), Some(LedgerState::Failed { reason: reason.into() }));
    assert_eq!(ledger.find_by_provider_id(&ProviderMessageId::new(id)).await.unwrap(), Some((campaign, contact)));
    assert_eq!(ledger.counts(&campaign).await.unwrap().failed, 1);
    assert!(matches!(ledger.state(&claimed_campaign, &claimed).await.unwrap(), Some(LedgerState::Claimed { .. })));
}

pub async fn the_delivery_state_ranks_and_the_subtype_and_delay_type_are_kept(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    settled(ledger, &campaign, &contact, sent(&unique("ses"))).await;
    let report = |state, bounce_subtype: Option<&str>, delay_type: Option<&str>| DeliveryReport {
        state,
        bounce_subtype: bounce_subtype.map(Into::into),
        delay_type: delay_type.map(Into::into),
    };
    let record = || async { ledger.delivery(&campaign, &contact).await.unwrap() };
    let empty = record().await;

    ledger
        .record_delivery(&campaign, &contact, &report(DeliveryState::Delayed, None, Some("MailboxFull")), T0)
        .await
        .unwrap();
    let delayed = record().await;
    ledger.record_delivery(&campaign, &contact, &report(DeliveryState::Delivered, None, None), T0).await.unwrap();
    // A late delay does not undo the delivery; its type is still kept.
    ledger
        .record_delivery(&campaign, &contact, &report(DeliveryState::Delayed, None, Some("General")), T0)
        .await
        .unwrap();
    let delivered = record().await;
    let bounced = DeliveryState::Bounced(BounceKind::Permanent);
    ledger.record_delivery(&campaign, &contact, &report(bounced, Some("NoEmail"), None), T0).await.unwrap();
    let (nobody_campaign, nobody) = pair();
    ledger.record_delivery(&nobody_campaign, &nobody, &report(bounced, Some("General"), None), T0).await.unwrap();

    assert_eq!(empty, DeliveryRecord::default());
    assert_eq!(delayed.state, Some(DeliveryState::Delayed));
    assert_eq!(delayed.delay_type.as_deref(), Some("MailboxFull"));
    assert_eq!(delivered.state, Some(DeliveryState::Delivered));
    assert_eq!(delivered.delay_type.as_deref(), Some("General"));
    assert_eq!(
        record().await,
        DeliveryRecord {
            state: Some(bounced),
            bounce_subtype: Some("NoEmail".into()),
            delay_type: Some("General".into())
        }
    );
    assert_eq!(ledger.delivery(&nobody_campaign, &nobody).await.unwrap(), DeliveryRecord::default(), "no row made");
    assert!(ledger.state(&nobody_campaign, &nobody).await.unwrap().is_none());
    assert!(matches!(ledger.state(&campaign, &contact).await.unwrap(), Some(LedgerState::Sent { .. })));
}

pub async fn a_delivery_and_its_mark_are_kept_together_and_first_only_once(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    settled(ledger, &campaign, &contact, sent(&unique("ses"))).await;
    let delivered = DeliveryReport { state: DeliveryState::Delivered, bounce_subtype: None, delay_type: None };
    let late_delay =
        DeliveryReport { state: DeliveryState::Delayed, bounce_subtype: None, delay_type: Some("General".into()) };
    let mark: EventMark = CampaignCounter::Delivered.into();
    let (nobody_campaign, nobody) = pair();

    let first = ledger.record_delivery_marked(&campaign, &contact, &delivered, T0, &mark).await.unwrap();
    let again = ledger.record_delivery_marked(&campaign, &contact, &delivered, T0, &mark).await.unwrap();
    let delay_mark: EventMark = CampaignCounter::Delayed.into();
    let lower = ledger.record_delivery_marked(&campaign, &contact, &late_delay, T0, &delay_mark).await.unwrap();
    ledger.record_delivery_marked(&nobody_campaign, &nobody, &delivered, T0, &mark).await.unwrap();

    assert!(first, "the first delivery is new");
    assert!(!again, "its repeat is not");
    assert!(lower, "a lower-ranked report's own mark is new");
    let record = ledger.delivery(&campaign, &contact).await.unwrap();
    assert_eq!(record.state, Some(DeliveryState::Delivered), "a late delay does not undo the delivery");
    assert_eq!(record.delay_type.as_deref(), Some("General"));
    assert!(!ledger.first_mark(&campaign, &contact, &mark).await.unwrap(), "first_mark sees the mark made here");
    assert!(ledger.state(&nobody_campaign, &nobody).await.unwrap().is_none(), "no row made");
}

pub async fn stranded_rows_are_released_or_lapsed_claims_past_the_time_never_settled_ones(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let mut contacts: Vec<ContactId> = (0..3).map(|_| ContactId::new_random()).collect();
    contacts.sort_by_key(ToString::to_string);
    let (released, claimed, done) = (contacts[0], contacts[1], contacts[2]);
    ledger.claim(&campaign, &released, T0, LEASE).await.unwrap();
    ledger.release(&campaign, &released, 1).await.unwrap();
    ledger.claim(&campaign, &claimed, T0 + Duration::from_secs(100), LEASE).await.unwrap();
    ledger.claim(&campaign, &done, T0, LEASE).await.unwrap();
    ledger.settle(&campaign, &done, 1, &sent("stranded-contract")).await.unwrap();

    let inside_the_released_lease = ledger.stranded(&campaign, T0 + Duration::from_secs(10), None, 10).await.unwrap();
    let after_it = ledger.stranded(&campaign, T0 + LEASE + Duration::from_secs(2), None, 10).await.unwrap();
    let after_both = ledger.stranded(&campaign, T0 + Duration::from_secs(200), None, 10).await.unwrap();
    let paged = ledger.stranded(&campaign, T0 + Duration::from_secs(200), Some(&released), 10).await.unwrap();

    assert_eq!(inside_the_released_lease, Vec::<ContactId>::new(), "its retry may still be waiting");
    assert_eq!(after_it, vec![released]);
    assert_eq!(after_both, vec![released, claimed], "in ID order; the sent row never");
    assert_eq!(paged, vec![claimed]);
}

pub async fn each_provider_event_is_first_only_once_per_message(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let (one, other) = (ContactId::new_random(), ContactId::new_random());
    settled(ledger, &campaign, &one, sent(&unique("ses"))).await;
    settled(ledger, &campaign, &other, sent(&unique("ses"))).await;

    let first = ledger.first_event(&campaign, &one, CampaignCounter::BouncedHard).await.unwrap();
    let repeat = ledger.first_event(&campaign, &one, CampaignCounter::BouncedHard).await.unwrap();
    let another_kind = ledger.first_event(&campaign, &one, CampaignCounter::Complained).await.unwrap();
    let another_message = ledger.first_event(&campaign, &other, CampaignCounter::BouncedHard).await.unwrap();

    assert!(first && !repeat && another_kind && another_message);
    assert!(matches!(ledger.state(&campaign, &one).await.unwrap(), Some(LedgerState::Sent { .. })), "state unchanged");
}

/// Claims and settles `contact` in `campaign` as `state`.
async fn settled(ledger: &dyn SendLedger, campaign: &CampaignId, contact: &ContactId, state: LedgerState) {
    ledger.claim(campaign, contact, T0, LEASE).await.unwrap();
    ledger.settle(campaign, contact, 1, &state).await.unwrap();
}

pub async fn failed_rows_are_listed_in_id_order_and_reopened_for_a_new_claim(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let mut failed: Vec<ContactId> = (0..3).map(|_| ContactId::new_random()).collect();
    failed.sort_by_key(|c| c.to_string());
    for contact in &failed {
        settled(ledger, &campaign, contact, LedgerState::Failed { reason: "provider_rejected".into() }).await;
    }
    let delivered = ContactId::new_random();
    settled(ledger, &campaign, &delivered, sent(&unique("ses"))).await;
    let elsewhere = CampaignId::new_random();
    settled(ledger, &elsewhere, &failed[0], LedgerState::Failed { reason: "render_failed".into() }).await;

    let all = ledger.reopenable(&campaign, Reopenable::Failed, None, 10).await.unwrap();
    let first_page = ledger.reopenable(&campaign, Reopenable::Failed, None, 2).await.unwrap();
    let second_page = ledger.reopenable(&campaign, Reopenable::Failed, Some(&first_page[1]), 2).await.unwrap();
    let reopened = ledger.reopen(&campaign, &failed[1], Reopenable::Failed).await.unwrap();
    let reopened_twice = ledger.reopen(&campaign, &failed[1], Reopenable::Failed).await.unwrap();
    let sent_reopened = ledger.reopen(&campaign, &delivered, Reopenable::Failed).await.unwrap();

    assert_eq!(all, failed);
    assert_eq!((first_page.as_slice(), second_page.as_slice()), (&failed[..2], &failed[2..]));
    assert!(reopened && !reopened_twice && !sent_reopened);
    assert_eq!(ledger.state(&campaign, &failed[1]).await.unwrap(), None, "claimable again");
    assert!(matches!(ledger.state(&campaign, &delivered).await.unwrap(), Some(LedgerState::Sent { .. })));
    let claim = ledger.claim(&campaign, &failed[1], T0, LEASE).await.unwrap();
    assert_eq!(claim, ClaimOutcome::Claimed { attempt: 2 });
    assert_eq!(ledger.reopenable(&campaign, Reopenable::Failed, None, 10).await.unwrap(), vec![failed[0], failed[2]]);
    assert_eq!(ledger.reopenable(&elsewhere, Reopenable::Failed, None, 10).await.unwrap(), vec![failed[0]]);
}

pub async fn held_rows_are_told_apart_from_other_skips(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let (held, withdrawn) = (ContactId::new_random(), ContactId::new_random());
    settled(ledger, &campaign, &held, LedgerState::Skipped { reason: HELD_REASON.into() }).await;
    settled(ledger, &campaign, &withdrawn, LedgerState::Skipped { reason: "consent_withdrawn".into() }).await;

    let listed = ledger.reopenable(&campaign, Reopenable::Held, None, 10).await.unwrap();
    let failed_listed = ledger.reopenable(&campaign, Reopenable::Failed, None, 10).await.unwrap();
    let withdrawn_reopened = ledger.reopen(&campaign, &withdrawn, Reopenable::Held).await.unwrap();
    let held_as_failed = ledger.reopen(&campaign, &held, Reopenable::Failed).await.unwrap();
    let held_reopened = ledger.reopen(&campaign, &held, Reopenable::Held).await.unwrap();

    assert_eq!(listed, vec![held]);
    assert!(failed_listed.is_empty());
    assert!(!withdrawn_reopened && !held_as_failed && held_reopened);
    assert_eq!(ledger.state(&campaign, &held).await.unwrap(), None);
    assert_eq!(
        ledger.state(&campaign, &withdrawn).await.unwrap(),
        Some(LedgerState::Skipped { reason: "consent_withdrawn".into() })
    );
}

pub async fn the_first_claim_is_attempt_one(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();

    let outcome = ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();

    assert_eq!(outcome, ClaimOutcome::Claimed { attempt: 1 });
    match ledger.state(&campaign, &contact).await.unwrap() {
        Some(LedgerState::Claimed { attempt: 1, lease_until }) => {
            assert!(lease_until >= T0 + LEASE, "lease ends at {lease_until}, before {}", T0 + LEASE)
        }
        other => panic!("expected a claim by attempt 1, got {other:?}"),
    }
}

pub async fn a_second_claim_while_the_lease_is_held_is_busy(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();

    let early = ledger.claim(&campaign, &contact, T0 + Duration::from_secs(1), LEASE).await.unwrap();
    let late = ledger.claim(&campaign, &contact, T0 + LEASE - Duration::from_secs(1), LEASE).await.unwrap();

    assert_eq!(early, ClaimOutcome::Busy);
    assert_eq!(late, ClaimOutcome::Busy);
    assert!(
        matches!(ledger.state(&campaign, &contact).await.unwrap(), Some(LedgerState::Claimed { attempt: 1, .. })),
        "a busy claim must not change the holder"
    );
}

pub async fn a_claim_after_the_lease_lapsed_takes_over_as_the_next_attempt(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();

    let second = ledger.claim(&campaign, &contact, T0 + LEASE + Duration::from_secs(1), LEASE).await.unwrap();
    let third = ledger.claim(&campaign, &contact, T0 + 3 * LEASE, LEASE).await.unwrap();

    assert_eq!(second, ClaimOutcome::Claimed { attempt: 2 });
    assert_eq!(third, ClaimOutcome::Claimed { attempt: 3 });
}

pub async fn settling_with_a_stale_attempt_is_a_conflict(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
    // The first holder stalls past its lease and another sender takes over.
    ledger.claim(&campaign, &contact, T0 + 2 * LEASE, LEASE).await.unwrap();

    let stale = ledger.settle(&campaign, &contact, 1, &sent("from-the-stalled-sender")).await;

    assert_conflict(stale);
    assert!(
        matches!(ledger.state(&campaign, &contact).await.unwrap(), Some(LedgerState::Claimed { attempt: 2, .. })),
        "a refused settle must not change the row"
    );
    ledger.settle(&campaign, &contact, 2, &sent("from-the-current-holder")).await.unwrap();
    assert_eq!(ledger.state(&campaign, &contact).await.unwrap(), Some(sent("from-the-current-holder")));
}

pub async fn a_claim_after_a_send_was_settled_is_done(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    let ClaimOutcome::Claimed { attempt } = ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap() else {
        panic!("first claim must succeed");
    };
    let provider_id = unique("ses");
    ledger.settle(&campaign, &contact, attempt, &sent(&provider_id)).await.unwrap();

    // Even long after, with any lease: a sent message stays sent.
    let again = ledger.claim(&campaign, &contact, T0 + 10 * LEASE, LEASE).await.unwrap();

    assert_eq!(again, ClaimOutcome::Done(sent(&provider_id)));
    assert_conflict(ledger.settle(&campaign, &contact, attempt, &sent("twice")).await);
}

pub async fn skipped_and_failed_are_terminal_too(ledger: &dyn SendLedger) {
    let skipped = LedgerState::Skipped { reason: "consent withdrawn".into() };
    let failed = LedgerState::Failed { reason: "address rejected".into() };
    for terminal in [skipped, failed] {
        let (campaign, contact) = pair();
        ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
        ledger.settle(&campaign, &contact, 1, &terminal).await.unwrap();

        let again = ledger.claim(&campaign, &contact, T0 + 2 * LEASE, LEASE).await.unwrap();

        assert_eq!(again, ClaimOutcome::Done(terminal.clone()));
        assert_eq!(ledger.state(&campaign, &contact).await.unwrap(), Some(terminal));
    }
}

pub async fn a_released_claim_can_be_claimed_again_at_once_with_a_higher_attempt(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();

    ledger.release(&campaign, &contact, 1).await.unwrap();
    // Well inside the released lease.
    let again = ledger.claim(&campaign, &contact, T0 + Duration::from_secs(1), LEASE).await.unwrap();

    assert_eq!(again, ClaimOutcome::Claimed { attempt: 2 });
    assert_conflict(ledger.settle(&campaign, &contact, 1, &sent("released-attempt")).await);
    ledger.settle(&campaign, &contact, 2, &sent("second-attempt")).await.unwrap();
}

pub async fn releasing_with_a_stale_attempt_is_a_conflict(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
    ledger.claim(&campaign, &contact, T0 + 2 * LEASE, LEASE).await.unwrap();

    let stale = ledger.release(&campaign, &contact, 1).await;

    assert_conflict(stale);
    assert_eq!(
        ledger.claim(&campaign, &contact, T0 + 2 * LEASE + Duration::from_secs(1), LEASE).await.unwrap(),
        ClaimOutcome::Busy,
        "attempt 2 still holds its claim"
    );
}

pub async fn a_settled_send_is_found_by_its_provider_message_id(ledger: &dyn SendLedger) {
    let (campaign, contact) = pair();
    let (other_campaign, other_contact) = pair();
    let provider_id = unique("ses");
    for (campaign, contact, id) in
        [(campaign, contact, provider_id.clone()), (other_campaign, other_contact, unique("ses"))]
    {
        ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
        ledger.settle(&campaign, &contact, 1, &sent(&id)).await.unwrap();
    }

    let found = ledger.find_by_provider_id(&ProviderMessageId::new(provider_id)).await.unwrap();
    let unknown = ledger.find_by_provider_id(&ProviderMessageId::new(unique("ses"))).await.unwrap();

    assert_eq!(found, Some((campaign, contact)));
    assert_eq!(unknown, None);
}

pub async fn counts_group_one_campaigns_rows_by_state(ledger: &dyn SendLedger) {
    let campaign = CampaignId::new_random();
    let outcomes = [
        None,
        Some(sent(&unique("ses"))),
        Some(sent(&unique("ses"))),
        Some(LedgerState::Skipped { reason: "suppressed".into() }),
        Some(LedgerState::Failed { reason: "rejected".into() }),
    ];
    for outcome in &outcomes {
        let contact = ContactId::new_random();
        ledger.claim(&campaign, &contact, T0, LEASE).await.unwrap();
        if let Some(state) = outcome {
            ledger.settle(&campaign, &contact, 1, state).await.unwrap();
        }
    }
    let (other_campaign, other_contact) = pair();
    ledger.claim(&other_campaign, &other_contact, T0, LEASE).await.unwrap();
    ledger.settle(&other_campaign, &other_contact, 1, &sent(&unique("ses"))).await.unwrap();

    let counts = ledger.counts(&campaign).await.unwrap();

    assert_eq!(counts, LedgerCounts { claimed: 1, sent: 2, skipped: 1, failed: 1 });
    assert_eq!(ledger.counts(&CampaignId::new_random()).await.unwrap(), LedgerCounts::default());
}

/// The lease lasts its full length even when `now` or the lease is not a
/// whole number of seconds; a claim a moment before its end is still busy.
pub async fn a_lease_is_held_to_its_exact_end(ledger: &dyn SendLedger) {
    let half = Duration::from_millis(500);
    let (campaign, contact) = pair();
    ledger.claim(&campaign, &contact, T0 + half, LEASE).await.unwrap();
    let (campaign2, contact2) = pair();
    ledger.claim(&campaign2, &contact2, T0, Duration::from_millis(1_500)).await.unwrap();

    let near_end = ledger.claim(&campaign, &contact, T0 + LEASE + Duration::from_millis(200), LEASE).await.unwrap();
    let near_end2 = ledger.claim(&campaign2, &contact2, T0 + Duration::from_millis(1_200), LEASE).await.unwrap();

    assert_eq!(near_end, ClaimOutcome::Busy, "claimed at T0+0.5s for 30s, asked again at T0+30.2s");
    assert_eq!(near_end2, ClaimOutcome::Busy, "claimed at T0 for 1.5s, asked again at T0+1.2s");
}

mod embedded {
    use carepost::adapters::embedded::SqliteSendLedger;

    use super::super::support::{Scratch, scratch};

    fn ledger() -> (Scratch, SqliteSendLedger) {
        let s = scratch();
        let ledger = SqliteSendLedger::new(s.db.clone());
        (s, ledger)
    }

    #[tokio::test]
    async fn the_first_claim_is_attempt_one() {
        let (_s, ledger) = ledger();
        super::the_first_claim_is_attempt_one(&ledger).await;
    }

    #[tokio::test]
    async fn a_second_claim_while_the_lease_is_held_is_busy() {
        let (_s, ledger) = ledger();
        super::a_second_claim_while_the_lease_is_held_is_busy(&ledger).await;
    }

    #[tokio::test]
    async fn a_claim_after_the_lease_lapsed_takes_over_as_the_next_attempt() {
        let (_s, ledger) = ledger();
        super::a_claim_after_the_lease_lapsed_takes_over_as_the_next_attempt(&ledger).await;
    }

    #[tokio::test]
    async fn settling_with_a_stale_attempt_is_a_conflict() {
        let (_s, ledger) = ledger();
        super::settling_with_a_stale_attempt_is_a_conflict(&ledger).await;
    }

    #[tokio::test]
    async fn a_claim_after_a_send_was_settled_is_done() {
        let (_s, ledger) = ledger();
        super::a_claim_after_a_send_was_settled_is_done(&ledger).await;
    }

    #[tokio::test]
    async fn skipped_and_failed_are_terminal_too() {
        let (_s, ledger) = ledger();
        super::skipped_and_failed_are_terminal_too(&ledger).await;
    }

    #[tokio::test]
    async fn a_released_claim_can_be_claimed_again_at_once_with_a_higher_attempt() {
        let (_s, ledger) = ledger();
        super::a_released_claim_can_be_claimed_again_at_once_with_a_higher_attempt(&ledger).await;
    }

    #[tokio::test]
    async fn releasing_with_a_stale_attempt_is_a_conflict() {
        let (_s, ledger) = ledger();
        super::releasing_with_a_stale_attempt_is_a_conflict(&ledger).await;
    }

    #[tokio::test]
    async fn a_settled_send_is_found_by_its_provider_message_id() {
        let (_s, ledger) = ledger();
        super::a_settled_send_is_found_by_its_provider_message_id(&ledger).await;
    }

    #[tokio::test]
    async fn counts_group_one_campaigns_rows_by_state() {
        let (_s, ledger) = ledger();
        super::counts_group_one_campaigns_rows_by_state(&ledger).await;
    }

    #[tokio::test]
    async fn a_lease_is_held_to_its_exact_end() {
        let (_s, ledger) = ledger();
        super::a_lease_is_held_to_its_exact_end(&ledger).await;
    }

    #[tokio::test]
    async fn failed_rows_are_listed_in_id_order_and_reopened_for_a_new_claim() {
        let (_s, ledger) = ledger();
        super::failed_rows_are_listed_in_id_order_and_reopened_for_a_new_claim(&ledger).await;
    }

    #[tokio::test]
    async fn held_rows_are_told_apart_from_other_skips() {
        let (_s, ledger) = ledger();
        super::held_rows_are_told_apart_from_other_skips(&ledger).await;
    }

    #[tokio::test]
    async fn each_provider_event_is_first_only_once_per_message() {
        let (_s, ledger) = ledger();
        super::each_provider_event_is_first_only_once_per_message(&ledger).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_ledger() {
        let (_s, ledger) = ledger();
        super::ledger_contract(&ledger).await;
    }
}

mod embedded_provider_reports {
    use carepost::adapters::embedded::SqliteSendLedger;

    use super::super::support::scratch;

    #[tokio::test]
    async fn clicks_are_first_once_per_message_and_link() {
        let s = scratch();
        super::clicks_are_first_once_per_message_and_link(&SqliteSendLedger::new(s.db.clone())).await;
    }

    #[tokio::test]
    async fn a_provider_failure_turns_only_a_sent_row_failed_and_keeps_it_matchable() {
        let s = scratch();
        super::a_provider_failure_turns_only_a_sent_row_failed_and_keeps_it_matchable(&SqliteSendLedger::new(
            s.db.clone(),
        ))
        .await;
    }

    #[tokio::test]
    async fn a_delivery_and_its_mark_are_kept_together_and_first_only_once() {
        let s = scratch();
        super::a_delivery_and_its_mark_are_kept_together_and_first_only_once(&SqliteSendLedger::new(s.db.clone()))
            .await;
    }

    #[tokio::test]
    async fn the_delivery_state_ranks_and_the_subtype_and_delay_type_are_kept() {
        let s = scratch();
        super::the_delivery_state_ranks_and_the_subtype_and_delay_type_are_kept(&SqliteSendLedger::new(s.db.clone()))
            .await;
    }
}
