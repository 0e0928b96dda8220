//! An SES outage longer than the receives allow, on the AWS runtime (moto):
//! every SES send is refused (429, the account's sending quota used up)
//! while a campaign sends, so each job goes through its `MaxReceiveCount`
//! receives and SQS's redrive policy moves it to the send DLQ. The
//! campaign's report (the campaigns function's API) shows it `stalled` with
//! the count. SES recovers; the reconciliation tick the runtime armed on the
//! fan-out queue (an SQS delayed message, handled by the fan-out function)
//! moves the campaign's jobs back from the DLQ (receive and resend: moto,
//! like SQS's message move tasks, cannot move one campaign's jobs only) and
//! re-queues its stranded ledger rows. No operator action: every eligible
//! patient gets exactly one email, the ledger shows each sent once, the
//! campaign completes, and the next tick ends the ticking.
//!
//! Time: SQS's delays and visibility are moto's wall clock, so the test
//! waits for them (about 40 s in all). The stranded test needs rows quiet for
//! a reconciliation interval; the application's clock is moved on by that
//! much instead of waiting (SES stays down meanwhile).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use carepost::app::App;
use carepost::domain::{CampaignId, CampaignStatus, ReconcileJob};
use carepost::ports::LedgerState;
use carepost::runtime::aws::{AwsClients, build_with_clock};
use carepost::runtime::lambda::{self, aws_lambda_events::event::sqs::SqsEvent};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::fault_injection::{accepted, patient};
use super::faults::{FaultPlan, FaultyClient};
use super::harness::{ShiftedClock, acknowledge, drain, moto_stack_with, queue_depth, receive_event, sdk, throughput};

/// `GET /v1/campaigns/{id}` on the campaigns function's router.
async fn report(app: &Arc<App>, id: &CampaignId) -> Value {
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("/v1/campaigns/{id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = lambda::http_service(carepost::http::campaigns_router(app.clone())).oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Messages SQS holds back for their delay (the next reconciliation tick).
async fn delayed(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_ses_outage_longer_than_the_receives_stalls_the_campaign_and_reconciliation_sends_each_patient_one_email() {
    let plan = Arc::new(FaultPlan::default());
    let faulty_sdk = sdk().await.into_builder().http_client(FaultyClient::new(plan.clone())).build();
    let stack = moto_stack_with(throughput(), |_| AwsClients::from_sdk(&faulty_sdk)).await;
    let (mut eligible, mut ineligible) = (HashSet::new(), HashSet::new());
    for i in 0..12 {
        let confirms = i % 6 != 5;
        let id = patient(stack.app(), &format!("outage.patient.{i}@example.org"), confirms).await;
        if confirms {
            eligible.insert(id);
        } else {
            ineligible.insert(id);
        }
    }
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await.unwrap();
    let app = running.app.clone();
    let input = serde_json::from_value(json!({
        "name": "Outage", "category": "wellness-tips", "segment": {"not": {"exists": {"attr": "conditions"}}},
        "template": {"subject": "Your wellness update", "html": "<p>Hello</p>", "text": "Hello"}
    }))
    .unwrap();
    let campaign = app.campaigns.create(input).await.unwrap();
    let sqs = stack.clients.sqs.clone();
    let (fanout_url, send_url, dlq_url) = (&stack.queues.fanout.0, &stack.queues.send.0, &stack.queues.send.1);
    let deadline = Instant::now() + Duration::from_secs(600);
    let fanout = |event: SqsEvent| {
        let (app, queue) = (app.clone(), running.fanout_queue.clone());
        async move { lambda::handle_fanout(&app, queue.as_ref(), event, deadline).await }
    };

    // SES refuses everything from before the first send job.
    plan.start_ses_outage();
    let outage_began = Instant::now();
    app.lifecycle.launch(&campaign).await.unwrap();
    drain(&sqs, fanout_url, 1, Duration::from_secs(60), fanout).await;
    assert_eq!(delayed(&sqs, fanout_url).await, 1, "fan-out's end armed the first reconciliation tick");
    let mut receives: HashMap<String, usize> = HashMap::new();
    drain(&sqs, send_url, 10, Duration::from_secs(180), |event| {
        for record in &event.records {
            *receives.entry(record.body.clone().unwrap_or_default()).or_default() += 1;
        }
        let (app, queue) = (app.clone(), running.send_queue.clone());
        async move { lambda::handle_send(&app, queue.as_ref(), event).await }
    })
    .await;
    let dead_lettered = queue_depth(&sqs, dlq_url).await;
    let refused = FaultPlan::count(&plan.outage_refusals);
    assert_eq!(dead_lettered, eligible.len() as u64, "every job ran out of receives");
    assert_eq!(receives.len(), eligible.len());
    assert!(receives.values().all(|&n| n == 5), "each job received MaxReceiveCount (5) times: {receives:?}");
    assert_eq!(refused, 5 * eligible.len(), "SES refused the hand-over on every receive");
    assert!(accepted(&campaign).await.is_empty(), "nothing was sent during the outage");

    // The outage goes on for a reconciliation interval: the campaign shows stalled.
    clock.pass(app.lifecycle.reconcile_interval() + Duration::from_secs(10));
    let stalled = report(&app, &campaign).await;
    assert_eq!(stalled["status"], "sending", "{stalled}");
    assert_eq!(stalled["stalled"]["stranded"], eligible.len() as u64, "{stalled}");
    assert!(stalled["stalled"]["reason"].as_str().unwrap().contains("carepost campaign redrive"), "{stalled}");
    assert_eq!((stalled["sent"].as_u64(), stalled["remaining"].as_u64()), (Some(0), Some(eligible.len() as u64)));

    // SES is back. The tick the runtime armed arrives on the fan-out queue.
    plan.end_ses_outage();
    let outage = outage_began.elapsed();
    let tick = loop {
        let event = receive_event(&sqs, fanout_url, 10).await;
        if !event.records.is_empty() {
            break event;
        }
        assert!(outage_began.elapsed() < Duration::from_secs(240), "the reconciliation tick never arrived");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let expected_tick = ReconcileJob { reconcile_campaign_id: campaign }.to_body();
    assert_eq!(tick.records.iter().filter_map(|r| r.body.clone()).collect::<Vec<_>>(), vec![expected_tick.clone()]);
    let response = fanout(tick.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    acknowledge(&sqs, fanout_url, &tick, &response).await;
    assert_eq!(queue_depth(&sqs, dlq_url).await, 0, "the campaign's jobs left the dead-letter queue");
    let requeued = queue_depth(&sqs, send_url).await;

    drain(&sqs, send_url, 10, Duration::from_secs(120), |event| {
        let (app, queue) = (app.clone(), running.send_queue.clone());
        async move { lambda::handle_send(&app, queue.as_ref(), event).await }
    })
    .await;

    let mails = accepted(&campaign).await;
    let mut per_contact: HashMap<String, usize> = HashMap::new();
    for (_, contact) in &mails {
        *per_contact.entry(contact.clone()).or_default() += 1;
    }
    let expected: HashMap<String, usize> = eligible.iter().map(|c| (c.to_string(), 1)).collect();
    assert_eq!(per_contact, expected, "every eligible patient exactly one email, no one else");
    for contact in &eligible {
        let state = app.ports.ledger.state(&campaign, contact).await.unwrap();
        assert!(matches!(state, Some(LedgerState::Sent { .. })), "{contact}: {state:?}");
    }
    for contact in &ineligible {
        assert_eq!(app.ports.ledger.state(&campaign, contact).await.unwrap(), None, "{contact}");
    }
    let counts = app.ports.ledger.counts(&campaign).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (eligible.len() as u64, 0));
    let done = report(&app, &campaign).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done.get("stalled").is_none(), "{done}");
    assert_eq!((done["sent"].as_u64(), done["remaining"].as_u64()), (Some(eligible.len() as u64), Some(0)));

    // The tick armed while the jobs were back on their way finds the campaign
    // completed and arms no other (handed over now rather than in 34 s).
    assert_eq!(delayed(&sqs, fanout_url).await, 1);
    let mut next = tick.clone();
    next.records.truncate(1);
    next.records[0].body = Some(expected_tick);
    next.records[0].message_id = Some("the-next-tick".into());
    assert!(fanout(next).await.batch_item_failures.is_empty());
    assert_eq!(delayed(&sqs, fanout_url).await, 1, "no further tick once completed");
    assert_eq!(app.lifecycle.advance(&campaign).await.unwrap(), CampaignStatus::Completed);

    eprintln!(
        "SES outage {:.1} s (wall clock; +{} s of application time): {dead_lettered} jobs dead-lettered after {refused} \
         refused sends; the tick re-queued {requeued} jobs; {} emails sent after recovery, one each",
        outage.as_secs_f64(),
        (app.lifecycle.reconcile_interval() + Duration::from_secs(10)).as_secs(),
        mails.len()
    );
}
