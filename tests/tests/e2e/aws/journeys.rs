//! A welcome series on the AWS runtime (moto), moved only by the `fanout`
//! function's journey timer input, as the stack's schedule gives it every
//! minute: two patients confirm and enter, the tick queues each welcome, a
//! duplicate tick queues nothing, the sender mails them once; one patient
//! withdraws, three days and a morning pass on the application's clock, and
//! only the other gets the reminder. The report counts what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::app::journey_runner::SETTLE_RECHECK;
use carepost::domain::{ConsentCategory, ConsentMethod};
use carepost::runtime::aws::build_with_clock;
use carepost::runtime::lambda;
use serde_json::{Value, json};

use super::fault_injection::patient;
use super::harness::{ShiftedClock, moto_stack, run_sender, sent_raw_messages};

/// The shipped example without quiet hours and closed days: the test runs
/// at any hour of any day (quiet hours have their own tests).
fn welcome_series() -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/journeys.example.json"))
        .expect("the shipped example");
    let mut definition: Value = serde_json::from_str(&example).unwrap();
    definition.as_object_mut().unwrap().retain(|k, _| k != "quiet_hours" && k != "closed_days");
    definition.to_string()
}

fn timer_input() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/fanout/journey-sweep.json"))
        .expect("the sample timer input");
    serde_json::from_str(&text).unwrap()
}

async fn subjects_to(address: &str) -> Vec<String> {
    sent_raw_messages()
        .await
        .into_iter()
        .filter(|m| m.contains(&format!("To: {address}")))
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned)))
        // The journey's mail only, not the sign-up's confirmation request.
        .filter(|subject| !subject.starts_with("Please confirm"))
        .collect()
}

#[tokio::test]
async fn the_fanout_functions_timer_input_walks_a_welcome_series_once_per_step_and_withdrawal_stops_the_next_send() {
    let stack = moto_stack().await;
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await.unwrap();
    let app = running.app.clone();
    let queue = running.fanout_queue.clone();
    let journey = app.journeys.create(&welcome_series()).await.unwrap();
    app.journeys.launch(&journey).await.unwrap();
    let (stays, leaves) = ("journey.stays@example.org", "journey.leaves@example.org");
    let _ = patient(&app, stays, true).await;
    let leaver = patient(&app, leaves, true).await;
    let tick =
        || lambda::handle_fanout_payload(&app, queue.as_ref(), timer_input(), Instant::now() + Duration::from_secs(30));

    let first = tick().await.unwrap();
    let duplicate = tick().await.unwrap();
    run_sender(&stack).await;
    clock.pass(SETTLE_RECHECK + Duration::from_secs(1));
    let settled = tick().await.unwrap();
    let topic = [ConsentCategory::parse("wellness-tips").unwrap()];
    app.consent_ledger.withdraw(&leaver, &topic, ConsentMethod::Unsubscribe, Default::default()).await.unwrap();
    clock.pass(Duration::from_secs(4 * 24 * 3600));
    let after_the_wait = tick().await.unwrap();
    run_sender(&stack).await;
    clock.pass(SETTLE_RECHECK + Duration::from_secs(1));
    let last = tick().await.unwrap();
    let unknown =
        lambda::handle_fanout_payload(&app, queue.as_ref(), json!({"carepost": "other"}), Instant::now()).await;
    let report = serde_json::to_value(app.journeys.report(&journey).await.unwrap()).unwrap();

    assert_eq!((first["due"].as_u64(), first["queued"].as_u64()), (Some(2), Some(2)), "{first}");
    assert_eq!(duplicate["queued"], 0, "a duplicate tick finds both waiting for their sends to settle: {duplicate}");
    assert_eq!(settled["waiting"], 2, "both moved on to the three-day wait: {settled}");
    assert_eq!(after_the_wait["queued"], 2, "both reminders queued; the sender re-checks consent: {after_the_wait}");
    assert_eq!(last["exited"], 2, "{last}");
    assert_eq!(subjects_to(stays).await, ["Welcome to our wellness tips", "In case you missed it"]);
    assert_eq!(subjects_to(leaves).await, ["Welcome to our wellness tips"], "withdrawn: no reminder");
    assert!(matches!(unknown, Err(lambda::FanoutPayloadError::UnknownShape)));
    assert_eq!(report["entered"], 2);
    assert_eq!(report["exited"]["completed"], 1);
    assert_eq!(report["exited"]["not_sent"], 1, "the withdrawn patient left: {report}");
}
