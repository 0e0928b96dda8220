//! A random split with a holdout on the AWS runtime (moto), over 2,000
//! patients entered by a segment: the `fanout` function's timer input alone
//! enters them (the daily entry pass) and walks them past the split. The
//! arms' shares hold within tolerance, the holdout leaves unmailed.
//!
//! 2,000, not the embedded test's 10,000: on moto the timer enters and walks
//! about 10 patients a second (9,500 of 10,000 in 911 s, 26 ticks, measured
//! on 2026-12-08), too slow for `make test`; the arm is a hash of journey,
//! step and contact computed the same way on both runtimes.
//!
//! The contacts and their consent are seeded with `BatchWriteItem` in the
//! adapters' item layout (`carepost_tests::seed`): upserting 10,000 through
//! the API would copy moto's tables on every transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::runtime::aws::build_with_clock;
use carepost::runtime::lambda;
use serde_json::{Value, json};

use carepost_tests::seed::{active_consent_item, batch_write, contact_item};

use super::harness::{ShiftedClock, moto_stack};

const PATIENTS: usize = 2_000;

fn split_journey() -> String {
    let wait = |id: &str| json!({"type": "wait", "id": id, "days": 30});
    json!({"name": "Split on AWS", "category": "wellness-tips",
        "entry": {"segment": {"exists": {"attr": "last_visit"}}},
        "steps": [{"type": "split", "id": "split", "arms": [{"percent": 45, "next": "arm-a"},
                    {"percent": 45, "next": "arm-b"}, {"percent": 10, "holdout": true}]},
                  wait("arm-a"), wait("arm-b")]})
    .to_string()
}

/// How many went each way of the split, in the report.
fn ways(report: &Value) -> Vec<u64> {
    let split = report["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == "split").cloned());
    let next = split.map(|s| s["next"].clone()).unwrap_or(Value::Null);
    next.as_array().map(|n| n.iter().map(|l| l["contacts"].as_u64().unwrap_or(0)).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_random_split_with_a_holdout_keeps_its_shares_over_two_thousand_patients_on_aws() {
    let stack = moto_stack().await;
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await.unwrap();
    let (app, queue) = (running.app.clone(), running.fanout_queue.clone());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (mut contacts, mut consent) = (Vec::new(), Vec::new());
    for patient in &carepost::synthetic::generate(PATIENTS, 2112) {
        let record = carepost::synthetic::sealed_record(&app.envelope, patient).await.unwrap();
        contacts.push(contact_item(&record, now));
        consent.push(active_consent_item(&record, "wellness-tips", now));
    }
    batch_write(&stack.clients.dynamodb, &stack.settings.tables.contacts, contacts).await;
    batch_write(&stack.clients.dynamodb, &stack.settings.tables.consent, consent).await;
    let journey = app.journeys.create(&split_journey()).await.unwrap();
    app.journeys.launch(&journey).await.unwrap();
    let timer = json!({"carepost": "journey-sweep"});

    // The timer, tick after tick on a clock that stands still, until a tick
    // finds nobody to enter and nobody due.
    let started = Instant::now();
    let (mut entered, mut ticks) = (0u64, 0u32);
    loop {
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = lambda::handle_fanout_payload(&app, queue.as_ref(), timer.clone(), deadline).await.unwrap();
        ticks += 1;
        let entered_now = answer["entries"]["entered"].as_u64().unwrap();
        entered += entered_now;
        let idle = entered_now == 0 && answer["due"] == 0 && answer["entries"]["read"] == 0;
        if idle || started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    println!("{PATIENTS} patients entered and split on moto in {ticks} ticks, {:.0?}", started.elapsed());
    let report = serde_json::to_value(app.journeys.report(&journey).await.unwrap()).unwrap();

    assert_eq!(entered, PATIENTS as u64, "each patient entered once: {report}");
    assert_eq!(report["entered"], PATIENTS, "{report}");
    let shares = ways(&report);
    assert_eq!(shares.len(), 3, "{report}");
    assert_eq!(shares.iter().sum::<u64>(), PATIENTS as u64, "every patient took one way: {shares:?}");
    // Within 3.5 standard deviations of a binomial count: 45 % of 2,000 is 900 ± 78, 10 % is 200 ± 47.
    let near = |count: u64, share: f64| {
        let (n, k) = (PATIENTS as f64, count as f64);
        (k - n * share).abs() <= 3.5 * (n * share * (1.0 - share)).sqrt()
    };
    assert!(near(shares[0], 0.45) && near(shares[1], 0.45), "each arm 45 %: {shares:?}");
    assert!(near(shares[2], 0.10), "the holdout 10 %: {shares:?}");
    assert_eq!(report["exited"]["holdout"], shares[2], "the holdout leaves, never mailed: {report}");
    assert_eq!(report["active"], shares[0] + shares[1], "the arms wait their 30 days: {report}");
}
