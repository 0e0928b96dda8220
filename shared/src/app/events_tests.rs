//! The event consumer's branches on in-memory stores and a manual clock.

use std::time::Duration;

use super::EventOutcome;
use crate::app::test_support::Harness;
use crate::domain::{BounceKind, MailEvent, MailEventKind, ProviderMessageId, SendJob};
use crate::ports::{ClaimOutcome, Clock, LedgerState, Metric};

/// A patient sent one campaign email; the provider's message ID.
async fn sent(h: &Harness, email: &str) -> (SendJob, ProviderMessageId) {
    let contact = h.patient(email, &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    let job = SendJob { campaign_id: campaign, contact_id: contact };
    h.app.sender.process(&job).await.unwrap();
    match h.ledger().state(&campaign, &contact).await.unwrap() {
        Some(LedgerState::Sent { provider_message_id }) => (job, provider_message_id),
        other => panic!("not sent: {other:?}"),
    }
}

fn event(id: &ProviderMessageId, kind: MailEventKind) -> MailEvent {
    MailEvent { provider_message_id: id.clone(), kind, tagged: None, machine: false, detail: Default::default() }
}

async fn suppressed(h: &Harness, job: &SendJob) -> bool {
    let record = h.app.ports.contacts.get(&job.contact_id).await.unwrap().unwrap();
    h.app.ports.suppression.reason(&record.email_index).await.unwrap().is_some()
}

#[tokio::test]
async fn a_repeated_event_is_counted_once_and_as_a_duplicate() {
    let h = Harness::new();
    let (job, id) = sent(&h, "jane.probe@example.org").await;

    let first = h.app.events.process(&event(&id, MailEventKind::Delivery)).await.unwrap();
    let again = h.app.events.process(&event(&id, MailEventKind::Delivery)).await.unwrap();

    assert_eq!((first, again), (EventOutcome::Applied, EventOutcome::Duplicate));
    let report = h.app.reports.campaign_report(&job.campaign_id).await.unwrap();
    assert_eq!((report.delivered, report.duplicate_events), (1, 1));
}

#[tokio::test]
async fn an_event_for_no_known_send_is_unmatched_and_counted_in_the_metrics() {
    let h = Harness::new();

    let outcome = h.app.events.process(&event(&ProviderMessageId::new("nobody"), MailEventKind::Delivery)).await;

    assert_eq!(outcome.unwrap(), EventOutcome::Unmatched);
    assert_eq!(h.metrics.total(Metric::UnmatchedEvent), 1);
}

#[tokio::test]
async fn a_hard_bounce_suppresses_at_once_and_a_soft_one_does_not() {
    let h = Harness::new();
    let (hard, hard_id) = sent(&h, "hard.probe@example.org").await;
    let (soft, soft_id) = sent(&h, "soft.probe@example.org").await;

    h.app.events.process(&event(&hard_id, MailEventKind::Bounce(BounceKind::Permanent))).await.unwrap();
    h.app.events.process(&event(&soft_id, MailEventKind::Bounce(BounceKind::Transient))).await.unwrap();

    assert!(suppressed(&h, &hard).await);
    assert!(!suppressed(&h, &soft).await);
}

#[tokio::test]
async fn soft_bounces_suppress_only_when_enough_fall_within_the_window() {
    let h = Harness::with(|s| s.soft_bounce_limit = 2, |p| p);
    let (job, _) = sent(&h, "soft.probe@example.org").await;
    let soft = crate::domain::CampaignCounter::BouncedSoft;
    let window = h.app.settings.soft_bounce_window;

    // Two soft bounces further apart than the window: not suppressed.
    h.app.events.apply(&job.campaign_id, &job.contact_id, soft, h.clock.now()).await.unwrap();
    h.clock.advance(window + Duration::from_secs(60));
    let other = h.sending_campaign("wellness-tips").await;
    h.app.events.apply(&other, &job.contact_id, soft, h.clock.now()).await.unwrap();
    let after_spread_out = suppressed(&h, &job).await;
    // A third within the window of the second: suppressed.
    h.clock.advance(Duration::from_secs(3600));
    let third = h.sending_campaign("wellness-tips").await;
    h.app.events.apply(&third, &job.contact_id, soft, h.clock.now()).await.unwrap();

    assert!(!after_spread_out, "bounces a window apart do not add up");
    assert!(suppressed(&h, &job).await);
}

#[tokio::test]
async fn the_providers_send_event_settles_a_claim_whose_answer_was_lost() {
    let h = Harness::new();
    let contact = h.patient("lost.probe@example.org", &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    let lease = Duration::from_secs(120);
    assert!(matches!(
        h.ledger().claim(&campaign, &contact, h.clock.now(), lease).await.unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    let provider_id = ProviderMessageId::new("ses-accepted-1");
    let send_event = MailEvent {
        provider_message_id: provider_id.clone(),
        kind: MailEventKind::Send,
        tagged: Some((campaign, contact)),
        machine: false,
        detail: Default::default(),
    };

    let outcome = h.app.events.process(&send_event).await.unwrap();

    assert_eq!(outcome, EventOutcome::Ignored, "a Send event is not counted");
    assert_eq!(
        h.ledger().state(&campaign, &contact).await.unwrap(),
        Some(LedgerState::Sent { provider_message_id: provider_id })
    );
    let job = SendJob { campaign_id: campaign, contact_id: contact };
    assert_eq!(h.app.sender.process(&job).await.unwrap(), crate::app::send::SendOutcome::AlreadyDone);
    assert!(h.transport.accepted().is_empty());
}

fn parsed(json: serde_json::Value) -> MailEvent {
    MailEvent::parse(&json.to_string()).unwrap()
}

fn subscription(id: &ProviderMessageId, all: bool, out: &[&str]) -> MailEvent {
    let topics: Vec<_> =
        out.iter().map(|t| serde_json::json!({"topicName": t, "subscriptionStatus": "OptOut"})).collect();
    parsed(serde_json::json!({"eventType": "Subscription", "mail": {"messageId": id.as_str()},
        "subscription": {"newTopicPreferences": {"unsubscribeAll": all, "topicSubscriptionStatus": topics}}}))
}

async fn statuses(h: &Harness, job: &SendJob) -> Vec<(String, crate::domain::ConsentStatus)> {
    let mut grants: Vec<_> = h
        .app
        .ports
        .consent
        .grants(&job.contact_id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.category.to_string(), g.status))
        .collect();
    grants.sort_by(|a, b| a.0.cmp(&b.0));
    grants
}

#[tokio::test]
async fn an_ses_opt_out_of_one_topic_withdraws_only_that_topic_and_unsubscribe_all_withdraws_all() {
    use crate::domain::ConsentStatus::{Active, Withdrawn};
    let h = Harness::new();
    let (job, id) = sent(&h, "topics.probe@example.org").await;
    h.grant(&job.contact_id, &["condition-updates"]).await;

    let one = h.app.events.process(&subscription(&id, false, &["condition-updates"])).await.unwrap();
    let after_one = statuses(&h, &job).await;
    let repeat = h.app.events.process(&subscription(&id, false, &["condition-updates"])).await.unwrap();
    let suppressed_after_one = suppressed(&h, &job).await;
    h.app.events.process(&subscription(&id, true, &[])).await.unwrap();

    assert_eq!((one, repeat), (EventOutcome::Applied, EventOutcome::Duplicate));
    assert_eq!(after_one, vec![("condition-updates".into(), Withdrawn), ("wellness-tips".into(), Active)]);
    assert!(!suppressed_after_one);
    assert!(statuses(&h, &job).await.iter().all(|(_, s)| *s == Withdrawn));
    assert!(suppressed(&h, &job).await, "unsubscribeAll suppresses the address");
}

#[tokio::test]
async fn a_reject_and_a_rendering_failure_settle_the_row_as_failed_with_the_reason_and_the_template() {
    let h = Harness::new();
    let (rejected, rejected_id) = sent(&h, "reject.probe@example.org").await;
    let (broken, broken_id) = sent(&h, "render.probe@example.org").await;
    let reject = parsed(serde_json::json!({"eventType": "Reject", "mail": {"messageId": rejected_id.as_str()},
        "reject": {"reason": "Bad content"}}));
    let rendering = parsed(serde_json::json!({"eventType": "Rendering Failure",
        "mail": {"messageId": broken_id.as_str()},
        "failure": {"errorMessage": "Attribute 'x' is not present in the rendering data.", "templateName": "flu-2026"}}));

    h.app.events.process(&reject).await.unwrap();
    h.app.events.process(&rendering).await.unwrap();
    let again = h.app.events.process(&rendering).await.unwrap();

    assert_eq!(again, EventOutcome::Duplicate);
    assert_eq!(
        h.ledger().state(&rejected.campaign_id, &rejected.contact_id).await.unwrap(),
        Some(LedgerState::Failed {
            reason: format!("provider_reject: bad_content; template campaign {}", rejected.campaign_id)
        })
    );
    assert_eq!(
        h.ledger().state(&broken.campaign_id, &broken.contact_id).await.unwrap(),
        Some(LedgerState::Failed { reason: "rendering_failure: missing_attribute; template flu-2026".into() })
    );
    let report = h.app.reports.campaign_report(&broken.campaign_id).await.unwrap();
    assert_eq!((report.sent, report.failed, report.rendering_failed), (0, 1, 1));
}

#[tokio::test]
async fn clicks_on_two_links_of_one_message_count_twice_and_a_repeat_once() {
    let h = Harness::new();
    let (job, id) = sent(&h, "clicker.probe@example.org").await;
    let click = |link: &str| {
        parsed(serde_json::json!({"eventType": "Click", "mail": {"messageId": id.as_str()},
            "click": {"link": link, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15"}}))
    };

    let a = h.app.events.process(&click("https://clinic.example/a")).await.unwrap();
    let b = h.app.events.process(&click("https://clinic.example/b")).await.unwrap();
    let a_again = h.app.events.process(&click("https://clinic.example/a")).await.unwrap();

    assert_eq!((a, b, a_again), (EventOutcome::Applied, EventOutcome::Applied, EventOutcome::Duplicate));
    let report = h.app.reports.campaign_report(&job.campaign_id).await.unwrap();
    assert_eq!((report.clicked, report.links_clicked, report.duplicate_events), (1, 2, 1));
}

#[tokio::test]
async fn the_delivery_state_bounce_subtype_and_delay_type_are_kept_on_the_ledger_row() {
    let h = Harness::new();
    let (job, id) = sent(&h, "delivery.probe@example.org").await;
    let delay = parsed(serde_json::json!({"eventType": "DeliveryDelay", "mail": {"messageId": id.as_str()},
        "deliveryDelay": {"delayType": "MailboxFull"}}));
    let bounce = parsed(serde_json::json!({"eventType": "Bounce", "mail": {"messageId": id.as_str()},
        "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}}));

    h.app.events.process(&delay).await.unwrap();
    h.app.events.process(&bounce).await.unwrap();

    let record = h.ledger().delivery(&job.campaign_id, &job.contact_id).await.unwrap();
    assert_eq!(record.state, Some(crate::ports::DeliveryState::Bounced(BounceKind::Transient)));
    assert_eq!(
        (record.bounce_subtype.as_deref(), record.delay_type.as_deref()),
        (Some("MailboxFull"), Some("MailboxFull"))
    );
}

#[tokio::test]
async fn tls_accounting_bounces_for_lack_of_tls_are_counted_apart_and_never_suppress() {
    let h = Harness::with(|s| s.soft_bounce_limit = 2, |p| p);
    let contact = h.patient("notls.probe@example.org", &["wellness-tips"]).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let campaign = h.sending_campaign("wellness-tips").await;
        let job = SendJob { campaign_id: campaign, contact_id: contact };
        h.app.sender.process(&job).await.unwrap();
        jobs.push(job);
    }

    for job in &jobs {
        let id = match h.ledger().state(&job.campaign_id, &contact).await.unwrap() {
            Some(LedgerState::Sent { provider_message_id }) => provider_message_id,
            other => panic!("not sent: {other:?}"),
        };
        h.app.events.process(&event(&id, MailEventKind::Bounce(BounceKind::TlsUnavailable))).await.unwrap();
    }

    assert!(!suppressed(&h, &jobs[0]).await, "three TLS failures over the soft-bounce limit do not suppress");
    let report = h.app.reports.campaign_report(&jobs[2].campaign_id).await.unwrap();
    assert_eq!((report.tls_unavailable, report.bounced_soft, report.bounced_undetermined), (1, 0, 0));
    let record = h.ledger().delivery(&jobs[2].campaign_id, &contact).await.unwrap();
    assert_eq!(record.state, Some(crate::ports::DeliveryState::Bounced(BounceKind::TlsUnavailable)));
    assert_eq!(h.metrics.total(Metric::Counter(crate::domain::CampaignCounter::TlsUnavailable)), 3);
}

#[tokio::test]
async fn tls_memory_a_bounce_for_lack_of_tls_remembers_the_domain_for_thirty_days_and_a_soft_bounce_does_not() {
    let h = Harness::new();
    let contact = h.patient("notls.probe@example.org", &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    h.app.sender.process(&SendJob { campaign_id: campaign, contact_id: contact }).await.unwrap();
    let id = match h.ledger().state(&campaign, &contact).await.unwrap() {
        Some(LedgerState::Sent { provider_message_id }) => provider_message_id,
        other => panic!("not sent: {other:?}"),
    };
    let (gap, other) = (
        crate::domain::RecipientDomain::parse("example.org").unwrap(),
        crate::domain::RecipientDomain::parse("other.example").unwrap(),
    );
    let mut soft = event(&id, MailEventKind::Bounce(BounceKind::Transient));
    soft.detail.tls_gap_domain = None;
    let mut tls = event(&id, MailEventKind::Bounce(BounceKind::TlsUnavailable));
    tls.detail.tls_gap_domain = Some(gap.clone());

    h.app.events.process(&soft).await.unwrap();
    let after_soft = h.app.ports.activity.lacks_tls(&gap, h.clock.now()).await.unwrap();
    h.app.events.process(&tls).await.unwrap();
    let now = h.clock.now();

    assert!(!after_soft, "an ordinary soft bounce says nothing of TLS");
    assert!(h.app.ports.activity.lacks_tls(&gap, now).await.unwrap());
    assert!(!h.app.ports.activity.lacks_tls(&other, now).await.unwrap());
    assert!(h.app.ports.activity.lacks_tls(&gap, now + time::Duration::days(29)).await.unwrap());
    assert!(!h.app.ports.activity.lacks_tls(&gap, now + time::Duration::days(31)).await.unwrap(), "forgotten after");
}

#[tokio::test]
async fn a_batch_of_events_is_counted_with_one_write_per_counter_and_a_hard_bounce_writes_what_came_before() {
    let h = Harness::new();
    let campaign = h.sending_campaign("wellness-tips").await;
    let mut ids = Vec::new();
    for email in ["ann.probe@example.org", "bob.probe@example.org", "cy.probe@example.org", "dee.probe@example.org"] {
        let job = SendJob { campaign_id: campaign, contact_id: h.patient(email, &["wellness-tips"]).await };
        h.app.sender.process(&job).await.unwrap();
        match h.ledger().state(&campaign, &job.contact_id).await.unwrap() {
            Some(LedgerState::Sent { provider_message_id }) => ids.push(provider_message_id),
            other => panic!("not sent: {other:?}"),
        }
    }
    let delivered = Metric::Counter(crate::domain::CampaignCounter::Delivered);
    let mut counts = crate::app::BatchCounts::default();

    for id in &ids[..3] {
        h.app.events.process_counting(&event(id, MailEventKind::Delivery), &mut counts).await.unwrap();
    }
    let while_batch_runs = h.metrics.counts(delivered);
    let bounce = event(&ids[3], MailEventKind::Bounce(BounceKind::Permanent));
    h.app.events.process_counting(&bounce, &mut counts).await.unwrap();
    let after_the_bounce = h.metrics.counts(delivered);
    h.app.events.record_counts(&mut counts).await.unwrap();

    assert_eq!(while_batch_runs, Vec::<u64>::new(), "nothing written while the batch runs");
    assert_eq!(after_the_bounce, vec![3], "one write of three, before the reputation guard judges the window");
    let report = h.app.reports.campaign_report(&campaign).await.unwrap();
    assert_eq!((report.delivered, report.bounced_hard), (3, 1));
}
