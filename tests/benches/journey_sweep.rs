//! What the journey timer costs in AWS, from counted requests: contacts
//! enrolled and waiting, some of them due, swept by the `fanout` function's
//! timer input as the stack's schedule gives it every minute.
//!
//! `make bench-journeys` (moto started by `scripts/with-moto.sh`);
//! `BENCH_WAITING` (default 2,000) contacts wait thirty days out,
//! `BENCH_DUE` (default 300) are due now (moto's queries slow down with the
//! table's size: more waiting contacts make the run slower, not the counts
//! different). Every client carries the SDK interceptor of the cost bench
//! (`carepost_tests::aws_calls`). The shipped
//! welcome series is walked in three sweeps, each a kind of step: the
//! first queues the welcome email, the second (after the sender mailed it,
//! not counted: that is a campaign send, `make bench-cost`) sees it settled
//! and starts the three-day wait, the third (three days on, on the
//! application's clock) takes the branch and queues the next email.
//! Printed per due contact and sweep: requests by operation and the read
//! and write units DynamoDB would bill (the due index's writes, which the
//! wire does not show, added by rule), the wall time per 100,000 due
//! contacts (against moto on loopback), the process's peak memory, and the
//! cost per 1,000,000 steps at the prices in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::app::App;
use carepost::app::journey_runner::SETTLE_RECHECK;
use carepost::config::RateShare;
use carepost::domain::ContactId;
use carepost::domain::journey::StepId;
use carepost::ports::Enrolment;
use carepost::runtime::aws::{AwsClients, build_with_clock};
use carepost::runtime::lambda;
use carepost_tests::aws_calls::{AwsCalls, Operation, Tally, attach};
use carepost_tests::prices::{Bill, Usage};
use carepost_tests::seed::{active_consent_item, batch_write, contact_item};
use serde_json::Value;

#[allow(dead_code)]
#[path = "../tests/e2e/aws/harness.rs"]
mod harness;

/// Lambda's memory in the template (`Globals.Function.MemorySize`).
const LAMBDA_GB: f64 = 256.0 / 1024.0;
/// Lambda's `platform.start` and `platform.report` records per invocation.
const PLATFORM_LOG_BYTES_PER_INVOCATION: f64 = 600.0;

fn welcome_series() -> anyhow::Result<String> {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/journeys.example.json"))?;
    let mut definition: Value = serde_json::from_str(&example)?;
    // The bench runs at any hour of any day.
    if let Some(fields) = definition.as_object_mut() {
        fields.retain(|k, _| k != "quiet_hours" && k != "closed_days");
    }
    Ok(definition.to_string())
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The process's peak resident memory in MiB (`VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().split(' ').next()?.parse().ok());
    kib.unwrap_or(0.0) / 1024.0
}

struct Sweep {
    name: &'static str,
    calls: BTreeMap<Operation, Tally>,
    invocations: u64,
    seconds: f64,
    moved: u64,
}

impl Sweep {
    fn usage(&self) -> Usage {
        let mut u = Usage::default();
        u.add_calls(&self.calls);
        u.lambda_invocations = self.invocations as f64;
        u.lambda_gb_seconds = self.seconds * LAMBDA_GB;
        u.log_bytes = self.invocations as f64 * PLATFORM_LOG_BYTES_PER_INVOCATION;
        u
    }

    fn print(&self) {
        let per = self.moved.max(1) as f64;
        println!(
            "\n{}: {} due contacts moved in {} invocations, {:.2} s ({:.0} s per 100,000 due against moto)",
            self.name,
            self.moved,
            self.invocations,
            self.seconds,
            self.seconds / per * 100_000.0
        );
        println!("  {:<9} {:<28} {:>12} {:>10} {:>10}", "service", "operation", "req/contact", "WRU", "RRU");
        for ((service, operation), t) in &self.calls {
            println!(
                "  {:<9} {:<28} {:>12.3} {:>10.3} {:>10.3}",
                service,
                operation,
                t.requests as f64 / per,
                t.write_units / per,
                t.read_units / per
            );
        }
        let bill = Bill::of(&self.usage()).per_million(per);
        println!(
            "  per 1,000,000 such steps: ${:.2} (DynamoDB ${:.2}, SQS ${:.2}, KMS ${:.2}, Lambda ${:.2}, logs ${:.2})",
            bill.beyond_ses(),
            bill.dynamodb,
            bill.sqs,
            bill.kms,
            bill.lambda,
            bill.logs
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let waiting = env_count("BENCH_WAITING", 2_000);
    let due = env_count("BENCH_DUE", 300);
    anyhow::ensure!(due > 0, "BENCH_DUE must be positive");
    anyhow::ensure!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "start moto first: make bench-journeys does");

    let calls = AwsCalls::default();
    let stack = harness::moto_stack_with(harness::throughput(), |clients| attach(clients, &calls)).await;
    let clock = Arc::new(harness::ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await?;
    // The application's metric lines (EMF on stdout in Lambda) are not the bench's output.
    let mut ports = running.app.ports.clone();
    ports.metrics = Arc::new(carepost::adapters::emf::EmfMetrics::new(Box::new(std::io::sink())));
    let base = &running.app;
    let rate = RateShare::whole(&harness::throughput());
    let app = Arc::new(App::new(ports, base.envelope.clone(), base.keyring.clone(), base.settings.clone(), rate));
    let journey = app.journeys.create(&welcome_series()?).await?;
    app.journeys.launch(&journey).await?;

    // Seeding is not counted: the due contacts' records and consent by
    // BatchWriteItem, every enrolment through the store's own write.
    let started = Instant::now();
    let plain = AwsClients::from_sdk(&harness::sdk().await);
    let now = app.journey_runner.now();
    let (mut records, mut consent, mut due_ids) = (Vec::new(), Vec::new(), Vec::new());
    for patient in carepost::synthetic::generate(due, 2026) {
        let record = carepost::synthetic::sealed_record(&app.envelope, &patient).await?;
        records.push(contact_item(&record, now.unix_timestamp()));
        consent.push(active_consent_item(&record, "wellness-tips", now.unix_timestamp()));
        due_ids.push(record.id);
    }
    batch_write(&plain.dynamodb, &stack.settings.tables.contacts, records).await;
    batch_write(&plain.dynamodb, &stack.settings.tables.consent, consent).await;
    let enrolment = |contact: ContactId, step: &str, due_at: time::OffsetDateTime| {
        Enrolment::at_step(journey, 1, contact, StepId::parse(step).expect("a step of the example"), now, due_at)
    };
    let later = now + time::Duration::days(30);
    for _ in 0..waiting {
        app.ports.journeys.enrol(&enrolment(ContactId::new_random(), "wait-3-days", later), None).await?;
    }
    for contact in &due_ids {
        app.ports.journeys.enrol(&enrolment(*contact, "welcome", now), None).await?;
    }
    eprintln!("seeded {waiting} waiting and {due} due enrolments in {:.1} s", started.elapsed().as_secs_f64());

    let timer = serde_json::from_str::<Value>(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/fanout/journey-sweep.json"
    ))?)?;
    let mut sweeps = Vec::new();
    // One sweep: timer ticks until one finds nothing due. That idle tick
    // is what every minute costs with nobody due; it is kept apart.
    let sweep = async |name: &'static str, calls: &AwsCalls| -> anyhow::Result<(Sweep, BTreeMap<Operation, Tally>)> {
        calls.reset();
        let (mut invocations, mut seconds, mut moved, mut kept) = (0, 0.0, 0, BTreeMap::new());
        loop {
            let began = Instant::now();
            let deadline = Instant::now() + Duration::from_secs(600);
            let report = lambda::handle_fanout_payload(&app, running.fanout_queue.as_ref(), timer.clone(), deadline)
                .await
                .map_err(|e| anyhow::anyhow!("the timer input failed: {e}"))?;
            let due = report["due"].as_u64().unwrap_or(0);
            eprintln!("{name}: tick {}: {report}", invocations + 1);
            if due == 0 {
                // Not on the wire: a write that moves an enrolment's due
                // key writes the due index twice (the old entry deleted,
                // the new put; an exit deletes only), at least a unit each.
                let moves = kept.get(&("DynamoDB".to_owned(), "UpdateItem journeys".to_owned()));
                let moves = moves.map_or(0, |t: &Tally| t.requests);
                let index = Tally { requests: 0, write_units: 2.0 * moves as f64, read_units: 0.0 };
                kept.insert(("DynamoDB".to_owned(), "due index (by rule)".to_owned()), index);
                calls.reset();
                let _ =
                    lambda::handle_fanout_payload(&app, running.fanout_queue.as_ref(), timer.clone(), deadline).await;
                return Ok((Sweep { name, calls: kept, invocations, seconds, moved }, calls.snapshot()));
            }
            seconds += began.elapsed().as_secs_f64();
            invocations += 1;
            moved += due;
            kept = calls.snapshot();
        }
    };

    let peak_before = peak_mib();
    let (first, idle) = sweep("queue the welcome email (send step)", &calls).await?;
    sweeps.push(first);
    let sender = harness::drain(&plain.sqs, &stack.queues.send.0, 10, Duration::from_secs(600), |event| {
        let (app, queue) = (app.clone(), running.send_queue.clone());
        async move { lambda::handle_send(&app, queue.as_ref(), event).await }
    })
    .await;
    eprintln!("the sender took {} jobs (not counted)", sender.len());
    clock.pass(SETTLE_RECHECK + Duration::from_secs(1));
    sweeps.push(sweep("see it settled, start the 3-day wait (wait step)", &calls).await?.0);
    clock.pass(Duration::from_secs(4 * 24 * 3600));
    sweeps.push(sweep("wait over: branch on opened, queue the next email", &calls).await?.0);
    let peak = peak_mib();

    println!("Journey timer on the AWS adapters (moto): {waiting} enrolled and waiting 30 days out, {due} due.");
    for s in &sweeps {
        s.print();
    }
    let (mut usage, mut steps) = (Usage::default(), 0);
    for s in &sweeps {
        usage.add(&s.usage());
        steps += s.moved;
    }
    let bill = Bill::of(&usage).per_million(steps.max(1) as f64);
    println!("\nAll three sweeps: {steps} steps; per 1,000,000 steps ${:.2} beyond SES", bill.beyond_ses());
    let idle_requests: u64 = idle.values().map(|t| t.requests).sum();
    let idle_units: f64 = idle.values().map(|t| t.read_units).sum();
    println!(
        "A tick with nobody due: {idle_requests} requests, {idle_units:.1} RRU; every minute for 30 days: ${:.3}",
        Bill::of(&Usage {
            dynamodb_read_units: idle_units * 43_200.0,
            lambda_invocations: 43_200.0,
            ..Usage::default()
        })
        .beyond_ses()
    );
    println!("Peak resident memory: {peak_before:.0} MiB before the sweeps, {peak:.0} MiB after");
    Ok(())
}
