//! A throttling storm: for 30 s half of all SES calls answer 429
//! (`TooManyRequestsException`, "Maximum sending rate exceeded"). The sender
//! reports the throttled items as batch item failures and backs them off
//! through their visibility timeout; when the storm has passed every
//! eligible patient has exactly one email and nothing is dead-lettered.
//!
//! Throttled receives back off with a 2 s base and equal jitter, so k of
//! them in a row span at least 2^k − 1 seconds: with `MaxReceiveCount` = 6
//! five throttled receives outlast a 30 s storm (docs/architecture.md).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use carepost::config::Throughput;
use carepost::runtime::aws::AwsClients;
use carepost::runtime::lambda;
use serde_json::json;

use super::fault_injection::{accepted, patient};
use super::faults::{FaultPlan, FaultyClient};
use super::harness::{drain, moto_stack_with, sdk, throughput};

#[tokio::test]
async fn a_throttling_storm_ends_with_every_email_sent_exactly_once() {
    let plan = Arc::new(FaultPlan::default());
    let faulty_sdk = sdk().await.into_builder().http_client(FaultyClient::new(plan.clone())).build();
    let t = Throughput { max_receive_count: 6, ..throughput() };
    let stack = moto_stack_with(t, |_| AwsClients::from_sdk(&faulty_sdk)).await;
    let app = stack.app().clone();
    let mut eligible = HashSet::new();
    for i in 0..30 {
        eligible.insert(patient(&app, &format!("storm.patient.{i}@example.org"), true).await.to_string());
    }
    let input = serde_json::from_value(json!({
        "name": "Storm", "category": "wellness-tips", "segment": {"not": {"exists": {"attr": "conditions"}}},
        "template": {"subject": "Your wellness update", "html": "<p>Hello</p>", "text": "Hello"}
    }))
    .unwrap();
    let campaign = app.campaigns.create(input).await.unwrap();
    app.lifecycle.launch(&campaign).await.unwrap();
    let sqs = stack.clients.sqs.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    drain(&sqs, &stack.queues.fanout.0, 1, Duration::from_secs(60), |event| {
        let (app, queue) = (app.clone(), stack.built.fanout_queue.clone());
        async move { lambda::handle_fanout(&app, queue.as_ref(), event, deadline).await }
    })
    .await;

    plan.arm();
    plan.start_storm(Duration::from_secs(30));
    let failures = AtomicUsize::new(0);
    drain(&sqs, &stack.queues.send.0, 10, Duration::from_secs(150), |event| {
        let (app, queue, failures) = (app.clone(), stack.built.send_queue.clone(), &failures);
        async move {
            let response = lambda::handle_send(&app, queue.as_ref(), event).await;
            failures.fetch_add(response.batch_item_failures.len(), Ordering::SeqCst);
            response
        }
    })
    .await;
    plan.disarm();

    let mut per_contact: HashMap<String, usize> = HashMap::new();
    for (_, contact) in accepted(&campaign).await {
        *per_contact.entry(contact).or_default() += 1;
    }
    let expected: HashMap<String, usize> = eligible.iter().map(|c| (c.clone(), 1)).collect();
    assert_eq!(per_contact, expected, "every eligible patient exactly one email");
    let throttled = FaultPlan::count(&plan.injected_throttles);
    assert!(throttled >= 15, "the storm throttled half of the calls ({throttled})");
    assert_eq!(failures.load(Ordering::SeqCst), throttled, "each throttled item came back as a batch item failure");
    let dlq = sqs.receive_message().queue_url(&stack.queues.send.1).max_number_of_messages(10).send().await.unwrap();
    assert!(dlq.messages().is_empty(), "nothing was dead-lettered");
    assert_eq!(
        app.lifecycle.advance(&campaign).await.unwrap(),
        carepost::domain::CampaignStatus::Completed,
        "the campaign completed"
    );
}
