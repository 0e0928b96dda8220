//! Each function's handler fed the sample events in `events/` through the
//! real `lambda_http` / `aws_lambda_events` types, against moto.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use carepost::crypto::TokenPurpose;
use carepost::domain::{CampaignId, ContactId};
use carepost::runtime::lambda::{self, aws_lambda_events::event::sqs::SqsEvent};
use http::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt;

use super::harness::{MotoStack, moto_stack, run_sender, sent_raw_messages};

const SAMPLE_CAMPAIGN: &str = "7c0d3f5e-2a9b-4c1e-9f3a-1b2c3d4e5f60";
const SAMPLE_CONTACT: &str = "3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b";
const SAMPLE_SES_ID: &str = "010001928e8b1f2a-3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f-000000";

fn event_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name)).expect("sample event")
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn invoke(router: Router, event: &str) -> Answer {
    let request = lambda::lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
    let response = lambda::http_service(router).oneshot(request).await.expect("infallible");
    let status = response.status();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer { status, location, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn sqs_event(name: &str, replace: &[(&str, &str)]) -> SqsEvent {
    let mut text = event_file(name);
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("a valid SQS event")
}

/// A confirmed contact for `wellness-tips`, through the consent function itself.
async fn confirmed_contact(stack: &MotoStack, email: &str) -> ContactId {
    let app = stack.app();
    let event = event_file("consent/post-json.json").replace("ada.lovelace@example.org", email);
    assert_eq!(invoke(carepost::http::consent_router(app.clone()), &event).await.status, StatusCode::ACCEPTED);
    run_sender(stack).await;
    let index = app.keyring.blind_index.index(&carepost::domain::EmailAddress::parse(email).unwrap());
    let record = app.ports.contacts.find_by_email_index(&index).await.unwrap().expect("contact stored");
    let history = app.ports.consent.history(&record.id).await.unwrap();
    let request = history[0].evidence.request_id.unwrap();
    let token = app.keyring.tokens.sign(
        TokenPurpose::ConfirmConsent,
        &record.id,
        request.as_bytes(),
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let page = event_file("consent/confirm-page.json").replace("TOKEN", &token);
    let answer = invoke(carepost::http::consent_router(app.clone()), &page).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("method=\"post\""), "the page confirms only by POST");
    let grants = app.ports.consent.grants(&record.id).await.unwrap();
    assert_eq!(grants[0].status, carepost::domain::ConsentStatus::Pending, "a GET confirms nothing");
    app.consent.confirm(&token, Default::default()).await.unwrap();
    record.id
}

async fn simple_campaign(app: &carepost::app::App) -> CampaignId {
    let input: carepost::app::campaigns::CampaignInput = serde_json::from_value(serde_json::json!({
        "name": "Sample", "category": "wellness-tips", "phi_personalized": true, "purpose": "treatment", "segment": {"exists": {"attr": "date_of_birth"}},
        "template": {"subject": "Flu shots", "html": "<p>Hi {{ first_name | default('there') }}</p>", "text": "Hi"}
    }))
    .unwrap();
    app.campaigns.create(input).await.unwrap()
}

#[tokio::test]
async fn the_consent_function_answers_its_sample_events() {
    let stack = moto_stack().await;
    let router = || carepost::http::consent_router(stack.app().clone());
    let confirmations = || async {
        let raw = sent_raw_messages().await;
        ["ada.lovelace@example.org", "grace.hopper@example.org"]
            .map(|to| raw.iter().filter(|m| m.contains(&format!("To: {to}"))).count())
    };
    let before = confirmations().await;

    let json = invoke(router(), &event_file("consent/post-json.json")).await;
    let form = invoke(router(), &event_file("consent/post-form.json")).await;
    let bad = invoke(router(), &event_file("consent/post-bad-email.json")).await;
    let forged = invoke(router(), &event_file("consent/confirm-page.json")).await;
    let queued = run_sender(&stack).await;

    assert_eq!(json.status, StatusCode::ACCEPTED, "{}", json.body);
    assert_eq!(form.status, StatusCode::SEE_OTHER);
    assert_eq!(form.location.as_deref(), Some("/thanks"));
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["field"], "email");
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(queued.len(), 2, "the function queued the two requests it took and sent nothing itself");
    assert_eq!(confirmations().await, before.map(|n| n + 1), "the sender sent one confirmation email each via SES");
}

#[tokio::test]
async fn the_contacts_and_campaigns_functions_answer_their_sample_events() {
    let stack = moto_stack().await;
    let contacts = || carepost::http::contacts_router(stack.app().clone());
    let campaigns = || carepost::http::campaigns_router(stack.app().clone());

    let created = invoke(contacts(), &event_file("contacts/put-contact.json")).await;
    let updated = invoke(contacts(), &event_file("contacts/put-contact.json")).await;
    let campaign = invoke(campaigns(), &event_file("campaigns/create-campaign.json")).await;
    let id = campaign.json()["id"].as_str().expect("campaign id").to_owned();
    let launched =
        invoke(campaigns(), &event_file("campaigns/launch-campaign.json").replace(SAMPLE_CAMPAIGN, &id)).await;
    let read = invoke(campaigns(), &event_file("campaigns/get-campaign.json").replace(SAMPLE_CAMPAIGN, &id)).await;
    let unknown = invoke(campaigns(), &event_file("campaigns/get-campaign.json")).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(created.json()["contact_id"], updated.json()["contact_id"]);
    assert_eq!(campaign.status, StatusCode::CREATED, "{}", campaign.body);
    assert_eq!(launched.status, StatusCode::ACCEPTED);
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["status"], "fanning_out");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_fanout_and_sender_functions_process_their_sample_events_and_report_poison() {
    let stack = moto_stack().await;
    let app = stack.app();
    let contact = confirmed_contact(&stack, "fanout.sample@example.org").await;
    let campaign = simple_campaign(app).await;
    let id = campaign.to_string();
    app.lifecycle.launch(&campaign).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);

    // The sample holds shards 0 and 1 of 4; the same event shape carries 2 and 3.
    let mut failures = Vec::new();
    let mut event = sqs_event("fanout/shard-jobs.json", &[(SAMPLE_CAMPAIGN, &id)]);
    failures.extend(
        lambda::handle_fanout(app, stack.built.fanout_queue.as_ref(), event.clone(), deadline)
            .await
            .batch_item_failures,
    );
    for (record, shard) in event.records.iter_mut().zip([2, 3]) {
        record.body = Some(format!("{{\"campaign_id\":\"{id}\",\"shard\":{shard},\"shards\":4}}"));
    }
    failures.extend(
        lambda::handle_fanout(app, stack.built.fanout_queue.as_ref(), event, deadline).await.batch_item_failures,
    );
    let poison =
        lambda::handle_fanout(app, stack.built.fanout_queue.as_ref(), sqs_event("fanout/poison.json", &[]), deadline)
            .await;
    let to_patient = || async {
        sent_raw_messages()
            .await
            .into_iter()
            .filter(|m| m.contains("To: fanout.sample@example.org"))
            .collect::<Vec<_>>()
    };
    let before = to_patient().await.len();
    let send = sqs_event("sender/send-jobs.json", &[(SAMPLE_CAMPAIGN, &id), (SAMPLE_CONTACT, &contact.to_string())]);
    let sent = lambda::handle_send(app, stack.built.send_queue.as_ref(), send.clone()).await;
    let again = lambda::handle_send(app, stack.built.send_queue.as_ref(), send).await;
    let send_poison =
        lambda::handle_send(app, stack.built.send_queue.as_ref(), sqs_event("sender/poison.json", &[])).await;

    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(app.reports.campaign_report(&campaign).await.unwrap().audience, 1, "fan-out found the contact");
    assert_eq!(poison.batch_item_failures.len(), 1);
    assert!(sent.batch_item_failures.is_empty() && again.batch_item_failures.is_empty());
    let raw = to_patient().await;
    assert_eq!(raw.len(), before + 1, "the redelivered job was not sent twice");
    let message = raw.last().unwrap();
    assert!(message.contains("List-Unsubscribe: <https://mail.clinic.example/u/"));
    assert!(message.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert_eq!(send_poison.batch_item_failures.len(), 1);
    assert_eq!(send_poison.batch_item_failures[0].item_identifier, "059f36b4-87a3-44ab-83d2-665975970000");
}

/// The same SES event as EventBridge delivers it to SQS: the event is the
/// record's `detail`, no SNS envelope.
fn as_eventbridge(sns_wrapped: &SqsEvent) -> SqsEvent {
    let mut event = sns_wrapped.clone();
    for record in &mut event.records {
        let body: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        let detail: Value = serde_json::from_str(body["Message"].as_str().unwrap()).unwrap();
        let bridged = serde_json::json!({
            "version": "0", "detail-type": "SES event", "source": "aws.ses", "account": "123456789012",
            "time": "2026-11-23T10:00:01Z", "region": "us-east-1", "resources": [], "detail": detail,
        });
        record.body = Some(bridged.to_string());
    }
    event
}

const EVERY_EVENT_TYPE: [&str; 12] = [
    "send",
    "delivery",
    "open",
    "click",
    "delivery-delay",
    "reject",
    "rendering-failure",
    "bounce-transient",
    "bounce-undetermined",
    "bounce-permanent",
    "complaint",
    "subscription",
];

#[tokio::test]
async fn the_ses_events_function_counts_every_event_type_once_from_sns_and_from_eventbridge() {
    let stack = moto_stack().await;
    let app = stack.app();
    let contact = confirmed_contact(&stack, "events.sample@example.org").await;
    let campaign = simple_campaign(app).await;
    app.lifecycle.launch(&campaign).await.unwrap();
    let job = carepost::domain::SendJob { campaign_id: campaign, contact_id: contact };
    // Fan-out is not needed to send one job; the ledger is the same.
    app.sender.process(&job).await.expect("sent");
    let Some(carepost::ports::LedgerState::Sent { provider_message_id }) =
        app.ports.ledger.state(&campaign, &contact).await.unwrap()
    else {
        panic!("the job was sent")
    };
    let ses_id = provider_message_id.as_str().to_owned();
    let events = stack.events_queue();

    for name in EVERY_EVENT_TYPE {
        let sns = sqs_event(&format!("ses-events/{name}.json"), &[(SAMPLE_SES_ID, &ses_id)]);
        let bridged = as_eventbridge(&sns);
        for (shape, event) in [("SNS", sns), ("EventBridge", bridged)] {
            let response = lambda::handle_events(app, events.as_ref(), event).await;
            assert!(response.batch_item_failures.is_empty(), "{name} ({shape}): {:?}", response.batch_item_failures);
        }
    }
    let sample_bridge =
        lambda::handle_events(app, events.as_ref(), sqs_event("ses-events/eventbridge-delivery.json", &[])).await;
    let unknown = lambda::handle_events(app, events.as_ref(), sqs_event("ses-events/delivery.json", &[])).await;
    let garbage = lambda::handle_events(app, events.as_ref(), sqs_event("sender/poison.json", &[])).await;

    assert!(unknown.batch_item_failures.is_empty(), "an unknown message ID is counted, not retried");
    assert!(sample_bridge.batch_item_failures.is_empty());
    assert_eq!(garbage.batch_item_failures.len(), 1);
    // A direct EventBridge invocation (no SQS): the same event once more is a duplicate.
    let direct: Value = serde_json::from_str(
        as_eventbridge(&sqs_event("ses-events/delivery.json", &[(SAMPLE_SES_ID, &ses_id)])).records[0]
            .body
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    let direct_answer = lambda::handle_events_payload(app, events.as_ref(), direct).await;
    let not_an_event = lambda::handle_events_payload(app, events.as_ref(), serde_json::json!({"hello": 1})).await;
    assert_eq!(direct_answer.unwrap(), serde_json::json!({}));
    assert!(not_an_event.is_err());
    let r = app.reports.campaign_report(&campaign).await.unwrap();
    // The Reject (and the Rendering Failure) settled the sent row as failed.
    assert_eq!((r.sent, r.failed), (0, 1));
    assert!(matches!(
        app.ports.ledger.state(&campaign, &contact).await.unwrap(),
        Some(carepost::ports::LedgerState::Failed { reason }) if reason.starts_with("provider_reject: bad_content")
    ));
    let delivery = app.ports.ledger.delivery(&campaign, &contact).await.unwrap();
    assert!(delivery.bounce_subtype.is_some(), "{delivery:?}");
    assert_eq!(delivery.delay_type.as_deref(), Some("TransientCommunicationFailure"));
    assert_eq!((r.delivered, r.opened, r.clicked, r.delayed, r.rejected), (1, 1, 1, 1, 1));
    assert_eq!((r.bounced_hard, r.bounced_soft, r.bounced_undetermined), (1, 1, 1));
    assert_eq!((r.complained, r.rendering_failed, r.unsubscribed), (1, 1, 1));
    assert_eq!((r.opened_machine, r.clicked_machine), (0, 0), "the samples' user agent is a desktop browser");
    assert_eq!(r.duplicate_events, 12, "every counted type arrived twice and counted once, the direct delivery too");
    let record = app.ports.contacts.get(&contact).await.unwrap().unwrap();
    assert!(app.ports.suppression.reason(&record.email_index).await.unwrap().is_some());
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert!(grants.iter().all(|g| g.status == carepost::domain::ConsentStatus::Withdrawn), "a complaint withdraws all");
    let activity = app.ports.activity.activity(&contact).await.unwrap().expect("engagement recorded");
    assert!(activity.last_open.is_some() && activity.last_click.is_some());
}

/// The SES event inside an SNS-wrapped sample, changed by `edit`.
fn edited(name: &str, ses_id: &str, edit: impl Fn(&mut Value)) -> SqsEvent {
    let mut event = sqs_event(&format!("ses-events/{name}.json"), &[(SAMPLE_SES_ID, ses_id)]);
    for record in &mut event.records {
        let mut body: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        let mut message: Value = serde_json::from_str(body["Message"].as_str().unwrap()).unwrap();
        edit(&mut message);
        body["Message"] = Value::String(message.to_string());
        record.body = Some(body.to_string());
    }
    event
}

#[tokio::test]
async fn tls_accounting_an_ses_expiry_for_lack_of_tls_through_the_function_never_suppresses_the_patient() {
    let stack = moto_stack().await;
    let app = stack.app();
    let events = stack.events_queue();
    let contact = confirmed_contact(&stack, "no.tls@example.org").await;
    let mut campaigns = Vec::new();

    // More expiries than the soft-bounce limit (3), one message each.
    for _ in 0..4 {
        let campaign = simple_campaign(app).await;
        app.lifecycle.launch(&campaign).await.unwrap();
        app.sender.process(&carepost::domain::SendJob { campaign_id: campaign, contact_id: contact }).await.unwrap();
        let Some(carepost::ports::LedgerState::Sent { provider_message_id }) =
            app.ports.ledger.state(&campaign, &contact).await.unwrap()
        else {
            panic!("the job was sent")
        };
        let expired = edited("bounce-transient", provider_message_id.as_str(), |m| {
            m["bounce"]["bounceSubType"] = "General".into();
            m["bounce"]["bouncedRecipients"][0]["status"] = "4.4.7".into();
            m["bounce"]["bouncedRecipients"][0]["diagnosticCode"] =
                "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Failed to establish connection>"
                    .into();
        });
        deliver(app, events.as_ref(), Shape::SnsInSqs, expired).await;
        campaigns.push(campaign);
    }

    let record = app.ports.contacts.get(&contact).await.unwrap().unwrap();
    assert_eq!(app.ports.suppression.reason(&record.email_index).await.unwrap(), None);
    for campaign in &campaigns {
        let r = app.reports.campaign_report(campaign).await.unwrap();
        assert_eq!((r.tls_unavailable, r.bounced_soft, r.bounced_undetermined), (1, 0, 0));
    }
    let delivery = app.ports.ledger.delivery(&campaigns[0], &contact).await.unwrap();
    assert_eq!(
        delivery.state,
        Some(carepost::ports::DeliveryState::Bounced(carepost::domain::BounceKind::TlsUnavailable))
    );
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    SnsInSqs,
    EventBridgeInSqs,
    DirectEventBridge,
}

/// Delivers one SES event to the ses-events function in `shape`.
async fn deliver(app: &carepost::app::App, queue: &dyn carepost::ports::Queue, shape: Shape, sns: SqsEvent) {
    match shape {
        Shape::SnsInSqs => {
            let answer = lambda::handle_events(app, queue, sns).await;
            assert!(answer.batch_item_failures.is_empty(), "{shape:?}: {:?}", answer.batch_item_failures);
        }
        Shape::EventBridgeInSqs => {
            let answer = lambda::handle_events(app, queue, as_eventbridge(&sns)).await;
            assert!(answer.batch_item_failures.is_empty(), "{shape:?}: {:?}", answer.batch_item_failures);
        }
        Shape::DirectEventBridge => {
            let bridged = as_eventbridge(&sns);
            let payload: Value = serde_json::from_str(bridged.records[0].body.as_deref().unwrap()).unwrap();
            let answer = lambda::handle_events_payload(app, queue, payload).await;
            assert_eq!(answer.expect("the direct invocation succeeds"), serde_json::json!({}), "{shape:?}");
        }
    }
}

#[tokio::test]
async fn a_topic_opt_out_clicks_on_two_links_and_the_delivery_state_read_the_same_in_every_delivery_shape() {
    let stack = moto_stack().await;
    let app = stack.app();
    let events = stack.events_queue();
    for (n, shape) in [Shape::SnsInSqs, Shape::EventBridgeInSqs, Shape::DirectEventBridge].into_iter().enumerate() {
        // Arrange: a patient with two topics, sent one message.
        let contact = confirmed_contact(&stack, &format!("shapes{n}@example.org")).await;
        let reminders = carepost::domain::ConsentCategory::parse("appointment-reminders").unwrap();
        let evidence = carepost::domain::ConsentEvidence::without_proof(
            contact,
            carepost::domain::ConsentEntryKind::Granted,
            vec![reminders.clone()],
            OffsetDateTime::now_utc(),
            carepost::domain::ConsentMethod::Api,
        );
        app.consent_ledger.append(evidence, carepost::domain::ConsentStatus::Active).await.unwrap();
        let campaign = simple_campaign(app).await;
        app.lifecycle.launch(&campaign).await.unwrap();
        app.sender.process(&carepost::domain::SendJob { campaign_id: campaign, contact_id: contact }).await.unwrap();
        let Some(carepost::ports::LedgerState::Sent { provider_message_id }) =
            app.ports.ledger.state(&campaign, &contact).await.unwrap()
        else {
            panic!("the job was sent")
        };
        let ses_id = provider_message_id.as_str().to_owned();
        let click_on = |link: &'static str| move |m: &mut Value| m["click"]["link"] = Value::from(link);
        let opt_out = |m: &mut Value| {
            m["subscription"]["newTopicPreferences"] = serde_json::json!({"unsubscribeAll": false,
                "topicSubscriptionStatus": [{"topicName": "wellness-tips", "subscriptionStatus": "OptOut"}]});
        };

        // Act: every event in this shape, the first click and the opt-out twice.
        for event in [
            edited("click", &ses_id, click_on("https://www.clinic.example/flu")),
            edited("click", &ses_id, click_on("https://www.clinic.example/hours")),
            edited("click", &ses_id, click_on("https://www.clinic.example/flu")),
            edited("delivery-delay", &ses_id, |_| {}),
            edited("delivery", &ses_id, |_| {}),
            edited("subscription", &ses_id, opt_out),
            edited("subscription", &ses_id, opt_out),
        ] {
            deliver(app, events.as_ref(), shape, event).await;
        }

        // Assert
        let r = app.reports.campaign_report(&campaign).await.unwrap();
        assert_eq!((r.clicked, r.links_clicked), (1, 2), "{shape:?}: one clicking message, two distinct links");
        assert_eq!((r.delivered, r.delayed), (1, 1), "{shape:?}");
        assert!(r.duplicate_events >= 1, "{shape:?}: the repeated click is a duplicate");
        let delivery = app.ports.ledger.delivery(&campaign, &contact).await.unwrap();
        assert_eq!(delivery.state, Some(carepost::ports::DeliveryState::Delivered), "{shape:?}: {delivery:?}");
        assert!(delivery.delay_type.is_some(), "{shape:?}: the delay type is kept: {delivery:?}");
        let grants = app.ports.consent.grants(&contact).await.unwrap();
        let status = |c: &str| grants.iter().find(|g| g.category.to_string() == c).map(|g| g.status);
        assert_eq!(status("wellness-tips"), Some(carepost::domain::ConsentStatus::Withdrawn), "{shape:?}");
        assert_eq!(status("appointment-reminders"), Some(carepost::domain::ConsentStatus::Active), "{shape:?}");
        let record = app.ports.contacts.get(&contact).await.unwrap().unwrap();
        assert!(app.ports.suppression.reason(&record.email_index).await.unwrap().is_none(), "{shape:?}: not all");
    }
}

#[tokio::test]
async fn the_webhooks_function_unsubscribes_with_one_click() {
    let stack = moto_stack().await;
    let app = stack.app();
    let contact = confirmed_contact(&stack, "webhooks.sample@example.org").await;
    let campaign = simple_campaign(app).await;
    let token = app.keyring.tokens.sign(
        TokenPurpose::Unsubscribe,
        &contact,
        campaign.as_bytes(),
        OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let router = || carepost::http::webhooks_router(app.clone());

    let page = invoke(router(), &event_file("webhooks/unsubscribe-page.json").replace("TOKEN", &token)).await;
    let click = invoke(router(), &event_file("webhooks/one-click-unsubscribe.json").replace("TOKEN", &token)).await;
    let forged = invoke(router(), &event_file("webhooks/one-click-unsubscribe.json")).await;

    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(click.status, StatusCode::OK);
    assert!(click.location.is_none(), "RFC 8058: no redirect");
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert_eq!(grants[0].status, carepost::domain::ConsentStatus::Withdrawn);
}
