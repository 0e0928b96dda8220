//! Faults between the SDK and moto while a campaign fans out and sends:
//! SES throttling bursts, DynamoDB and KMS 5xx, an answer lost after SES
//! accepted the message, and a sender invocation that dies after SES
//! accepted one. SES's Send events (which carry our tags) arrive through the
//! ses-events queue as they would through SNS. Every eligible patient gets
//! exactly one email, failures come back as batch item failures, the poison
//! message reaches the dead-letter queue, and nothing is lost.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carepost::app::App;
use carepost::config::Throughput;
use carepost::domain::{CampaignId, CampaignStatus, ContactId};
use carepost::ports::LedgerState;
use carepost::runtime::aws::{AwsClients, build};
use carepost::runtime::lambda::{self, aws_lambda_events::event::sqs::SqsBatchResponse};
use serde_json::json;

use super::faults::{FaultPlan, FaultyClient};
use super::harness::{MotoStack, drain, moto_stack_with, sdk, sent_messages, throughput};

pub(super) async fn patient(app: &App, email: &str, confirms: bool) -> ContactId {
    carepost::synthetic::sign_up_directly(app, email, "wellness-tips", confirms).await.expect("signed up")
}

/// What SES publishes to the event topic for each message it accepted.
fn send_event(ses_message_id: &str, campaign: &CampaignId, contact: &str) -> String {
    let inner = json!({
        "eventType": "Send",
        "mail": {"messageId": ses_message_id, "tags": {"campaign_id": [campaign.to_string()], "contact_id": [contact]}},
        "send": {}
    });
    json!({"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(), "Message": inner.to_string()})
        .to_string()
}

/// (SES message ID, contact ID) of every message moto accepted for `campaign`.
pub(super) async fn accepted(campaign: &CampaignId) -> Vec<(String, String)> {
    let prefix = format!("Message-ID: <{campaign}.");
    sent_messages()
        .await
        .into_iter()
        .filter_map(|(id, raw)| {
            let start = raw.find(&prefix)? + prefix.len();
            let contact = raw[start..].split('@').next()?.to_owned();
            Some((id, contact))
        })
        .collect()
}

/// Publishes a Send event for every newly accepted message, then lets the
/// ses-events function handle them.
async fn deliver_send_events(stack: &MotoStack, app: &Arc<App>, campaign: &CampaignId, seen: &Mutex<HashSet<String>>) {
    let events_url = &stack.queues.events.0;
    for (id, contact) in accepted(campaign).await {
        if seen.lock().unwrap().insert(id.clone()) {
            let body = send_event(&id, campaign, &contact);
            stack.clients.sqs.send_message().queue_url(events_url).message_body(body).send().await.unwrap();
        }
    }
    let queue = stack.events_queue();
    drain(&stack.clients.sqs, events_url, 10, Duration::from_secs(30), |event| {
        let (app, queue) = (app.clone(), queue.clone());
        async move { lambda::handle_events(&app, queue.as_ref(), event).await }
    })
    .await;
}

fn every_item_failed(event: &lambda::aws_lambda_events::event::sqs::SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let mut failure = lambda::aws_lambda_events::event::sqs::BatchItemFailure::default();
        failure.item_identifier = record.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}

#[tokio::test]
async fn faults_between_sdk_and_aws_lose_no_patient_and_send_no_one_twice() {
    let plan = Arc::new(FaultPlan {
        ses_period: 5,
        ses_burst: 2,
        ses_throttle_calls: 30,
        dynamodb_period: 45,
        dynamodb_burst: 3,
        kms_failures: 3,
        lose_answer_of_ses_call: Some(13),
        hang_after_ses_call: Some(22),
        ..FaultPlan::default()
    });
    let faulty_sdk = sdk().await.into_builder().http_client(FaultyClient::new(plan.clone())).build();
    // The template's default receive count: faults of every kind land on
    // the same jobs here, and with the floor of 5 one unlucky job can spend
    // its receives on throttles, a DynamoDB burst and the hung batch alone.
    let patience = Throughput { max_receive_count: 8, ..throughput() };
    let stack = moto_stack_with(patience, |_| AwsClients::from_sdk(&faulty_sdk)).await;
    let setup = stack.app();
    let mut eligible = HashSet::new();
    let mut ineligible = HashSet::new();
    for i in 0..24 {
        let confirms = i % 6 != 5;
        let id = patient(setup, &format!("fault.patient.{i}@example.org"), confirms).await;
        if confirms {
            eligible.insert(id)
        } else {
            ineligible.insert(id)
        };
    }
    let input = serde_json::from_value(json!({
        "name": "Faults", "category": "wellness-tips", "segment": {"not": {"exists": {"attr": "conditions"}}},
        "template": {"subject": "Your wellness update", "html": "<p>Hello</p>", "text": "Hello"}
    }))
    .unwrap();
    let campaign = setup.campaigns.create(input).await.unwrap();
    setup.lifecycle.launch(&campaign).await.unwrap();
    let send_url = stack.queues.send.0.clone();
    let poison = "{\"campaign_id\": \"not-a-uuid\"}";
    stack.clients.sqs.send_message().queue_url(&send_url).message_body(poison).send().await.unwrap();
    // A fresh invocation environment: empty data-key cache, so KMS is called under faults.
    let cold = build(stack.clients.clone(), stack.settings.clone()).await.expect("app builds");
    let app = cold.app.clone();
    plan.arm();

    let failures = AtomicUsize::new(0);
    let deaths = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let sqs = stack.clients.sqs.clone();
    drain(&sqs, &stack.queues.fanout.0, 1, Duration::from_secs(90), |event| {
        let (app, queue, failures) = (app.clone(), cold.fanout_queue.clone(), &failures);
        async move {
            let response = lambda::handle_fanout(&app, queue.as_ref(), event, deadline).await;
            failures.fetch_add(response.batch_item_failures.len(), Ordering::SeqCst);
            response
        }
    })
    .await;
    let seen = Mutex::new(HashSet::new());
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    drain(&sqs, &send_url, 10, Duration::from_secs(150), |event| {
        for record in &event.records {
            *deliveries.entry(record.body.clone().unwrap_or_default()).or_default() += 1;
        }
        let (app, queue, failures, deaths, stack, seen) =
            (app.clone(), cold.send_queue.clone(), &failures, &deaths, &stack, &seen);
        async move {
            // An invocation that never answers is killed at its time limit:
            // nothing in its batch is deleted, all of it comes back. The limit
            // is far above a normal batch even on a loaded machine, so only
            // the injected hang reaches it.
            let copy = event.clone();
            let response =
                match tokio::time::timeout(Duration::from_secs(20), lambda::handle_send(&app, queue.as_ref(), event))
                    .await
                {
                    Ok(response) => response,
                    Err(_) => {
                        deaths.fetch_add(1, Ordering::SeqCst);
                        every_item_failed(&copy)
                    }
                };
            failures.fetch_add(response.batch_item_failures.len(), Ordering::SeqCst);
            deliver_send_events(stack, &app, &campaign, seen).await;
            response
        }
    })
    .await;
    plan.disarm();

    let mails = accepted(&campaign).await;
    let mut per_contact: HashMap<String, usize> = HashMap::new();
    for (_, contact) in &mails {
        *per_contact.entry(contact.clone()).or_default() += 1;
    }
    let expected: HashMap<String, usize> = eligible.iter().map(|c| (c.to_string(), 1)).collect();
    if per_contact != expected {
        let dead = stack.clients.sqs.receive_message().queue_url(&stack.queues.send.1).max_number_of_messages(10);
        let dead = dead.send().await.unwrap().messages().len();
        for contact in eligible.iter().filter(|c| per_contact.get(&c.to_string()) != Some(&1)) {
            let state = app.ports.ledger.state(&campaign, contact).await.unwrap();
            eprintln!("{contact}: ledger {state:?}; dead-lettered messages: {dead}");
        }
    }
    assert_eq!(per_contact, expected, "every eligible patient exactly one email, no one else");
    for contact in &eligible {
        let state = app.ports.ledger.state(&campaign, contact).await.unwrap();
        assert!(matches!(state, Some(LedgerState::Sent { .. })), "{contact}: {state:?}");
    }
    for contact in &ineligible {
        let state = app.ports.ledger.state(&campaign, contact).await.unwrap();
        assert!(!matches!(state, Some(LedgerState::Sent { .. })), "{contact}: {state:?}");
    }
    let report = app.reports.campaign_report(&campaign).await.unwrap();
    assert_eq!((report.audience, report.excluded.consent_pending), (eligible.len() as u64, ineligible.len() as u64));
    assert_eq!(app.lifecycle.advance(&campaign).await.unwrap(), CampaignStatus::Completed);

    assert!(FaultPlan::count(&plan.injected_throttles) >= 6, "SES throttled");
    assert!(FaultPlan::count(&plan.injected_dynamodb_errors) >= 3, "DynamoDB failed");
    assert_eq!(FaultPlan::count(&plan.injected_kms_errors), 3, "KMS failed");
    assert_eq!(FaultPlan::count(&plan.lost_answers), 1);
    assert_eq!(FaultPlan::count(&plan.hangs), 1);
    assert_eq!(deaths.load(Ordering::SeqCst), 1, "one sender invocation died after acceptance");
    assert!(failures.load(Ordering::SeqCst) >= 6, "failed items came back as batch item failures");
    assert!(deliveries.values().any(|&n| n > 1), "failed jobs were redelivered");
    assert!(deliveries[poison] >= 8, "the poison message was tried until its receive count ran out");

    let dlq = stack.clients.sqs.receive_message().queue_url(&stack.queues.send.1).max_number_of_messages(10);
    let in_dlq: Vec<String> =
        dlq.send().await.unwrap().messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect();
    assert_eq!(in_dlq, vec![poison.to_owned()], "only the poison message is dead-lettered");
}
