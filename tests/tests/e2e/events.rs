//! Provider events on the embedded stack, through the events worker's use
//! case: bounces and complaints act on the address, repeats count once.

use carepost::app::App;
use carepost::app::events::EventOutcome;
use carepost::domain::{CampaignId, ConsentStatus, ContactId, MailEvent, ProviderMessageId};
use carepost::ports::{ClaimOutcome, LedgerState, SuppressionReason};
use serde_json::json;

use super::helpers::{everyone, spawn_app};

/// A message of a new campaign to `contact`, settled as sent; its provider ID.
async fn sent_message(app: &App, client: &super::helpers::Client, contact: &ContactId) -> (CampaignId, String) {
    let campaign = CampaignId::parse(&client.create_campaign("wellness-tips", everyone()).await).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ClaimOutcome::Claimed { attempt } =
        app.ports.ledger.claim(&campaign, contact, now, std::time::Duration::from_secs(60)).await.unwrap()
    else {
        panic!("fresh claim")
    };
    let id = format!("ses-{}", uuid::Uuid::new_v4());
    let sent = LedgerState::Sent { provider_message_id: ProviderMessageId::new(id.clone()) };
    app.ports.ledger.settle(&campaign, contact, attempt, &sent).await.unwrap();
    (campaign, id)
}

fn bounce(message_id: &str, kind: &str) -> MailEvent {
    let body = json!({"eventType": "Bounce", "bounce": {"bounceType": kind}, "mail": {"messageId": message_id}});
    MailEvent::parse(&json!({"Type": "Notification", "Message": body.to_string()}).to_string()).unwrap()
}

async fn suppression_of(app: &App, contact: &ContactId) -> Option<SuppressionReason> {
    let record = app.ports.contacts.get(contact).await.unwrap().unwrap();
    app.ports.suppression.reason(&record.email_index).await.unwrap()
}

#[tokio::test]
async fn a_third_soft_bounce_within_a_week_suppresses_the_address() {
    let test = spawn_app().await;
    let app = &test.stack.app;
    let contact =
        carepost::synthetic::sign_up_directly(app, "soft.bouncer@example.org", "wellness-tips", true).await.unwrap();
    let mut after = Vec::new();

    for _ in 0..3 {
        let (_, message) = sent_message(app, &test.client, &contact).await;
        app.events.process(&bounce(&message, "Transient")).await.unwrap();
        after.push(suppression_of(app, &contact).await);
    }

    assert_eq!(after, vec![None, None, Some(SuppressionReason::RepeatedSoftBounce)]);
}

/// SES's bounce after it gave up on a server that could not do TLS.
fn tls_expiry(message_id: &str) -> MailEvent {
    let body = json!({"eventType": "Bounce", "mail": {"messageId": message_id}, "bounce": {
        "bounceType": "Transient", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "no.tls@example.org", "status": "4.4.7", "diagnosticCode":
            "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Failed to establish connection>"}]}});
    MailEvent::parse(&json!({"Type": "Notification", "Message": body.to_string()}).to_string()).unwrap()
}

#[tokio::test]
async fn tls_accounting_expiries_for_lack_of_tls_never_suppress_nor_count_toward_the_soft_bounce_rule() {
    let test = spawn_app().await;
    let app = &test.stack.app;
    let contact =
        carepost::synthetic::sign_up_directly(app, "no.tls@example.org", "wellness-tips", true).await.unwrap();
    let mut campaigns = Vec::new();

    for _ in 0..3 {
        let (campaign, message) = sent_message(app, &test.client, &contact).await;
        app.events.process(&tls_expiry(&message)).await.unwrap();
        campaigns.push(campaign);
    }
    for _ in 0..2 {
        let (_, message) = sent_message(app, &test.client, &contact).await;
        app.events.process(&bounce(&message, "Transient")).await.unwrap();
    }

    assert_eq!(suppression_of(app, &contact).await, None, "3 TLS expiries and 2 soft bounces: under the limit of 3");
    let report = app.reports.campaign_report(&campaigns[0]).await.unwrap();
    assert_eq!((report.tls_unavailable, report.bounced_soft), (1, 0));
    let published = test.client.report(&campaigns[0].to_string()).await;
    assert_eq!(published["tls_unavailable"], 1, "{published}");
}

#[tokio::test]
async fn tls_memory_after_an_expiry_for_lack_of_tls_later_campaigns_do_not_try_that_domain_but_reach_others() {
    let test = spawn_app().await;
    let app = &test.stack.app;
    let no_tls = carepost::synthetic::sign_up_directly(app, "no.tls@example.org", "wellness-tips", true).await.unwrap();
    let fine =
        carepost::synthetic::sign_up_directly(app, "fine@elsewhere.example", "wellness-tips", true).await.unwrap();
    let (_, message) = sent_message(app, &test.client, &no_tls).await;
    app.events.process(&tls_expiry(&message)).await.unwrap();

    // Signed up without attributes: a segment that asks for none.
    let (second, report) = test.client.run_campaign("wellness-tips", json!({"never_opened": {}})).await;

    let second = CampaignId::parse(&second).unwrap();
    let dropped = app.ports.ledger.state(&second, &no_tls).await.unwrap();
    assert_eq!(dropped, Some(LedgerState::Failed { reason: "tls_unavailable".into() }), "not handed over");
    assert!(matches!(app.ports.ledger.state(&second, &fine).await.unwrap(), Some(LedgerState::Sent { .. })));
    assert_eq!((report["sent"].as_u64(), report["tls_unavailable"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(suppression_of(app, &no_tls).await, None, "the patient is not suppressed");
}

#[tokio::test]
async fn a_second_bounce_for_the_same_message_is_counted_once() {
    let test = spawn_app().await;
    let app = &test.stack.app;
    let contact =
        carepost::synthetic::sign_up_directly(app, "hard.bouncer@example.org", "wellness-tips", true).await.unwrap();
    let (campaign, message) = sent_message(app, &test.client, &contact).await;

    let first = app.events.process(&bounce(&message, "Permanent")).await.unwrap();
    let second = app.events.process(&bounce(&message, "Permanent")).await.unwrap();

    assert_eq!((first, second), (EventOutcome::Applied, EventOutcome::Duplicate));
    let report = app.reports.campaign_report(&campaign).await.unwrap();
    assert_eq!((report.bounced_hard, report.duplicate_events), (1, 1));
    assert_eq!(suppression_of(app, &contact).await, Some(SuppressionReason::HardBounce));
}

#[tokio::test]
async fn a_complaint_suppresses_the_address_and_withdraws_every_category() {
    let test = spawn_app().await;
    let app = &test.stack.app;
    let contact =
        carepost::synthetic::sign_up_directly(app, "complainer@example.org", "wellness-tips", true).await.unwrap();
    carepost::synthetic::sign_up_directly(app, "complainer@example.org", "appointment-reminders", true).await.unwrap();
    let (campaign, message) = sent_message(app, &test.client, &contact).await;
    let complaint = json!({"eventType": "Complaint", "complaint": {}, "mail": {"messageId": message}});

    app.events.process(&MailEvent::parse(&complaint.to_string()).unwrap()).await.unwrap();

    assert_eq!(suppression_of(app, &contact).await, Some(SuppressionReason::Complaint));
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g.status == ConsentStatus::Withdrawn), "{grants:?}");
    assert_eq!(app.reports.campaign_report(&campaign).await.unwrap().complained, 1);
}
