//! The sender's branches, on in-memory stores with a scripted transport and
//! a manual clock: no sleeping, no network.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{SendError, SendOutcome};
use crate::app::test_support::Harness;
use crate::domain::{CampaignId, CampaignStatus, ConsentMethod, ContactId, ProviderMessageId, SendJob, SkipReason};
use crate::ports::{
    ClaimOutcome, Clock, DeliveryRecord, DeliveryReport, EventMark, LedgerCounts, LedgerState, Metric, Queue,
    Reopenable, SendLedger, StoreError, SuppressionReason, TransportErrorKind,
};

async fn one_job(h: &Harness) -> SendJob {
    let contact = h.patient("jane.probe@example.org", &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    SendJob { campaign_id: campaign, contact_id: contact }
}

#[tokio::test]
async fn a_batch_of_sends_is_counted_in_the_timeline_with_one_write() {
    let h = Harness::new();
    let campaign = h.sending_campaign("wellness-tips").await;
    let mut jobs = Vec::new();
    for email in ["ann.probe@example.org", "bob.probe@example.org", "cy.probe@example.org"] {
        let contact = h.patient(email, &["wellness-tips"]).await;
        jobs.push(SendJob { campaign_id: campaign, contact_id: contact }.to_body());
    }
    h.send_queue.send_batch(&jobs).await.unwrap();

    assert_eq!(h.work_send_queue().await, 3);

    assert_eq!(h.transport.accepted().len(), 3);
    let sent = Metric::Counter(crate::domain::CampaignCounter::Sent);
    assert_eq!(h.metrics.counts(sent), vec![3], "one count of three, not three counts of one");
    let buckets = h.app.ports.campaigns.window_buckets(&campaign).await.unwrap();
    let timeline: u64 =
        buckets.iter().filter(|(_, c, _)| *c == crate::domain::CampaignCounter::Sent).map(|(_, _, n)| n).sum();
    assert_eq!(timeline, 3);
}

#[tokio::test]
async fn a_job_is_sent_once_and_its_redelivery_sends_nothing() {
    let h = Harness::new();
    let job = one_job(&h).await;

    let first = h.app.sender.process(&job).await.unwrap();
    let again = h.app.sender.process(&job).await.unwrap();

    assert_eq!(first, SendOutcome::Sent);
    assert_eq!(again, SendOutcome::AlreadyDone);
    assert_eq!(h.transport.accepted().len(), 1);
    assert!(matches!(
        h.ledger().state(&job.campaign_id, &job.contact_id).await.unwrap(),
        Some(LedgerState::Sent { .. })
    ));
}

#[tokio::test]
async fn a_claim_held_by_another_sender_is_busy_until_its_lease_lapses_then_taken_over() {
    let h = Harness::new();
    let job = one_job(&h).await;
    let lease = Duration::from_secs(90);
    let other = h.ledger().claim(&job.campaign_id, &job.contact_id, h.clock.now(), lease).await.unwrap();
    assert_eq!(other, ClaimOutcome::Claimed { attempt: 1 });

    let busy = h.app.sender.process(&job).await.unwrap_err();
    h.clock.advance(lease + Duration::from_secs(1));
    let after_lapse = h.app.sender.process(&job).await.unwrap();

    match busy {
        SendError::Busy { retry_after } => assert_eq!(retry_after, lease + Duration::from_secs(1)),
        other => panic!("expected busy, got {other:?}"),
    }
    assert_eq!(after_lapse, SendOutcome::Sent);
    assert_eq!(h.transport.accepted().len(), 1, "only the take-over sent");
}

#[tokio::test]
async fn a_throttled_provider_releases_the_claim_so_the_retry_sends_at_once() {
    let h = Harness::new();
    let job = one_job(&h).await;
    h.transport.fail_next(&[TransportErrorKind::Throttled]);

    let throttled = h.app.sender.process(&job).await.unwrap_err();
    let retried = h.app.sender.process(&job).await.unwrap();

    assert!(matches!(throttled, SendError::Throttled));
    assert_eq!(h.metrics.total(Metric::Throttled), 1);
    assert_eq!(retried, SendOutcome::Sent, "no lease to wait for: the claim was given up");
    assert_eq!(h.transport.attempts(), 2);
}

#[tokio::test]
async fn a_lost_provider_answer_keeps_the_claim_so_nobody_sends_it_again_within_the_lease() {
    let h = Harness::new();
    let job = one_job(&h).await;
    h.transport.fail_next(&[TransportErrorKind::Ambiguous]);

    let lost = h.app.sender.process(&job).await.unwrap_err();
    let retry = h.app.sender.process(&job).await.unwrap_err();

    assert!(matches!(lost, SendError::Unsettled(_)));
    assert!(matches!(retry, SendError::Busy { .. }), "the claim is kept: {retry:?}");
    assert_eq!(h.transport.attempts(), 1);
    assert!(matches!(
        h.ledger().state(&job.campaign_id, &job.contact_id).await.unwrap(),
        Some(LedgerState::Claimed { .. })
    ));
}

/// A ledger whose every attempt to record a send fails, as during a
/// database outage right after the provider accepted the message.
struct LedgerThatCannotRecordSends(Arc<dyn SendLedger>);

#[async_trait]
impl SendLedger for LedgerThatCannotRecordSends {
    async fn claim(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        now: time::OffsetDateTime,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        self.0.claim(campaign, contact, now, lease).await
    }
    async fn settle_with(
        &self,
        c: &CampaignId,
        k: &ContactId,
        attempt: u32,
        state: &LedgerState,
        domain: Option<&crate::domain::RecipientDomain>,
    ) -> Result<(), StoreError> {
        match state {
            LedgerState::Sent { .. } => Err(StoreError::unavailable_msg("injected outage")),
            other => self.0.settle_with(c, k, attempt, other, domain).await,
        }
    }
    async fn reach_by_domain(&self, c: &CampaignId) -> Result<Vec<crate::ports::DomainReach>, StoreError> {
        self.0.reach_by_domain(c).await
    }
    async fn release(&self, c: &CampaignId, k: &ContactId, attempt: u32) -> Result<(), StoreError> {
        self.0.release(c, k, attempt).await
    }
    async fn state(&self, c: &CampaignId, k: &ContactId) -> Result<Option<LedgerState>, StoreError> {
        self.0.state(c, k).await
    }
    async fn row(&self, c: &CampaignId, k: &ContactId) -> Result<Option<crate::ports::LedgerRow>, StoreError> {
        self.0.row(c, k).await
    }
    async fn find_by_provider_id(&self, id: &ProviderMessageId) -> Result<Option<(CampaignId, ContactId)>, StoreError> {
        self.0.find_by_provider_id(id).await
    }
    async fn counts(&self, c: &CampaignId) -> Result<LedgerCounts, StoreError> {
        self.0.counts(c).await
    }
    async fn first_mark(&self, c: &CampaignId, k: &ContactId, e: &EventMark) -> Result<bool, StoreError> {
        self.0.first_mark(c, k, e).await
    }
    async fn fail_sent(&self, c: &CampaignId, k: &ContactId, reason: &str) -> Result<bool, StoreError> {
        self.0.fail_sent(c, k, reason).await
    }
    async fn record_delivery(
        &self,
        c: &CampaignId,
        k: &ContactId,
        report: &DeliveryReport,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.0.record_delivery(c, k, report, now).await
    }
    async fn delivery(&self, c: &CampaignId, k: &ContactId) -> Result<DeliveryRecord, StoreError> {
        self.0.delivery(c, k).await
    }
    async fn reopenable(
        &self,
        c: &CampaignId,
        which: Reopenable,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        self.0.reopenable(c, which, after, limit).await
    }
    async fn stranded(
        &self,
        c: &CampaignId,
        lapsed_before: time::OffsetDateTime,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        self.0.stranded(c, lapsed_before, after, limit).await
    }
    async fn reopen(&self, c: &CampaignId, k: &ContactId, which: Reopenable) -> Result<bool, StoreError> {
        self.0.reopen(c, k, which).await
    }
}

#[tokio::test]
async fn a_send_the_ledger_cannot_record_is_unsettled_and_not_handed_over_twice() {
    let h = Harness::with(
        |_| {},
        |mut ports| {
            ports.ledger = Arc::new(LedgerThatCannotRecordSends(ports.ledger.clone()));
            ports
        },
    );
    let job = one_job(&h).await;

    let unsettled = h.app.sender.process(&job).await.unwrap_err();
    let retry = h.app.sender.process(&job).await.unwrap_err();

    assert!(matches!(unsettled, SendError::Unsettled(_)), "{unsettled:?}");
    assert!(matches!(retry, SendError::Busy { .. }), "{retry:?}");
    assert_eq!(h.transport.accepted().len(), 1);
}

#[tokio::test]
async fn consent_withdrawn_after_fan_out_is_checked_again_at_send_time() {
    let h = Harness::new();
    let job = one_job(&h).await;
    let topic = [crate::app::test_support::category("wellness-tips")];
    h.app
        .consent_ledger
        .withdraw(&job.contact_id, &topic, ConsentMethod::Unsubscribe, Default::default())
        .await
        .unwrap();

    let outcome = h.app.sender.process(&job).await.unwrap();

    assert_eq!(outcome, SendOutcome::Skipped(SkipReason::ConsentWithdrawn));
    assert!(h.transport.accepted().is_empty());
}

#[tokio::test]
async fn a_suppressed_address_is_skipped_whatever_its_consent() {
    let h = Harness::new();
    let job = one_job(&h).await;
    let record = h.app.ports.contacts.get(&job.contact_id).await.unwrap().unwrap();
    h.app.ports.suppression.suppress(&record.email_index, SuppressionReason::Complaint).await.unwrap();

    let outcome = h.app.sender.process(&job).await.unwrap();

    assert_eq!(outcome, SendOutcome::Skipped(SkipReason::Suppressed(SuppressionReason::Complaint)));
    assert!(h.transport.accepted().is_empty());
}

#[tokio::test]
async fn a_paused_campaign_holds_the_job_and_a_permanent_refusal_is_recorded_as_failed() {
    let h = Harness::new();
    let job = one_job(&h).await;
    let second = SendJob {
        campaign_id: job.campaign_id,
        contact_id: h.patient("sam.probe@example.org", &["wellness-tips"]).await,
    };

    h.transport.fail_next(&[TransportErrorKind::Permanent]);
    let refused = h.app.sender.process(&second).await.unwrap();
    assert!(h.app.ports.campaigns.pause(&job.campaign_id, "test").await.unwrap());
    let held = h.app.sender.process(&job).await.unwrap();

    assert_eq!(refused, SendOutcome::Failed("provider_rejected".into()));
    assert_eq!(held, SendOutcome::Skipped(SkipReason::CampaignPaused));
    let record = h.app.ports.campaigns.get(&job.campaign_id).await.unwrap().unwrap();
    assert_eq!(record.status, CampaignStatus::Paused);
}

#[tokio::test]
async fn tls_accounting_a_relay_without_tls_fails_the_job_once_counts_it_and_never_suppresses() {
    let h = Harness::new();
    let job = one_job(&h).await;

    h.transport.fail_next(&[TransportErrorKind::TlsUnavailable]);
    let outcome = h.app.sender.process(&job).await.unwrap();
    let again = h.app.sender.process(&job).await.unwrap();

    assert_eq!(outcome, SendOutcome::Failed("tls_unavailable".into()));
    assert_eq!(again, SendOutcome::AlreadyDone, "settled: never retried into a second attempt");
    assert_eq!(h.transport.attempts(), 1);
    let record = h.app.ports.contacts.get(&job.contact_id).await.unwrap().unwrap();
    assert_eq!(h.app.ports.suppression.reason(&record.email_index).await.unwrap(), None);
    let report = h.app.reports.campaign_report(&job.campaign_id).await.unwrap();
    assert_eq!((report.tls_unavailable, report.failed, report.sent), (1, 1, 0));
}

#[tokio::test]
async fn tls_memory_a_domain_remembered_lacking_tls_is_not_tried_and_other_domains_are() {
    let h = Harness::new();
    let job = one_job(&h).await;
    let elsewhere = h.patient("sam.probe@elsewhere.example", &["wellness-tips"]).await;
    let domain = crate::domain::RecipientDomain::parse("example.org").unwrap();
    let now = h.clock.now();
    h.app.ports.activity.remember_tls_gap(&domain, now, now + crate::domain::TLS_GAP_MEMORY).await.unwrap();

    let dropped = h.app.sender.process(&job).await.unwrap();
    let sent = h.app.sender.process(&SendJob { campaign_id: job.campaign_id, contact_id: elsewhere }).await.unwrap();

    assert_eq!(dropped, SendOutcome::Failed("tls_unavailable".into()));
    assert_eq!(sent, SendOutcome::Sent);
    assert_eq!(h.transport.attempts(), 1, "only the other domain's message was handed over");
    let record = h.app.ports.contacts.get(&job.contact_id).await.unwrap().unwrap();
    assert_eq!(h.app.ports.suppression.reason(&record.email_index).await.unwrap(), None);
    let report = h.app.reports.campaign_report(&job.campaign_id).await.unwrap();
    assert_eq!((report.tls_unavailable, report.failed, report.sent), (1, 1, 1));
    assert_eq!(h.metrics.total(Metric::Counter(crate::domain::CampaignCounter::TlsUnavailable)), 1);
}

#[tokio::test]
async fn tls_memory_is_read_once_per_domain_every_five_minutes() {
    let h = Harness::new();
    let first = one_job(&h).await;
    let second = h.patient("sam.probe@example.org", &["wellness-tips"]).await;
    let third = h.patient("kim.probe@example.org", &["wellness-tips"]).await;
    let domain = crate::domain::RecipientDomain::parse("example.org").unwrap();

    let before = h.app.sender.process(&first).await.unwrap();
    let now = h.clock.now();
    h.app.ports.activity.remember_tls_gap(&domain, now, now + crate::domain::TLS_GAP_MEMORY).await.unwrap();
    let cached = h.app.sender.process(&SendJob { campaign_id: first.campaign_id, contact_id: second }).await.unwrap();
    h.clock.advance(Duration::from_secs(301));
    let read_again =
        h.app.sender.process(&SendJob { campaign_id: first.campaign_id, contact_id: third }).await.unwrap();

    assert_eq!(
        (before, cached),
        (SendOutcome::Sent, SendOutcome::Sent),
        "the answer read first holds for five minutes"
    );
    assert_eq!(read_again, SendOutcome::Failed("tls_unavailable".into()));
}
