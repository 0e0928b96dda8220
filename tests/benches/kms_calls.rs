//! KMS calls for processing contacts through fan-out and send on moto.
//!
//! `make bench-kms` (or `scripts/with-moto.sh cargo bench -p carepost-tests
//! --bench kms_calls`). `BENCH_CONTACTS` sets the population (default 10,000).
//! Each Lambda execution environment has its own data-key cache, so fan-out
//! runs in `FanoutShards` cold environments and sending in
//! `SenderMaxConcurrency` cold ones, invocations spread over them in turn.
//! Goal: at most 20 KMS calls for 10,000 contacts.

#[path = "../tests/e2e/aws/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use carepost::app::App;
use carepost::app::consent::{ConsentSubmission, RequestProof};
use carepost::config::Throughput;
use carepost::crypto::TokenPurpose;
use carepost::domain::EmailAddress;
use carepost::runtime::aws::{AwsApp, AwsSettings, build};
use carepost::runtime::lambda;
use serde_json::json;
use time::OffsetDateTime;

async fn confirmed_patient(app: Arc<App>, i: usize) -> anyhow::Result<()> {
    let email = format!("bench.patient.{i}@example.org");
    let submission = ConsentSubmission {
        form_id: "web-signup".into(),
        email: email.clone(),
        categories: vec!["wellness-tips".into()],
        ..Default::default()
    };
    app.submit_consent(submission, RequestProof::default()).await?;
    let index = app.keyring.blind_index.index(&EmailAddress::parse(&email)?);
    let id = app.ports.contacts.find_by_email_index(&index).await?.expect("contact").id;
    let request = app.ports.consent.history(&id).await?[0].evidence.request_id.expect("request id");
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let token = app.keyring.tokens.sign(TokenPurpose::ConfirmConsent, &id, request.as_bytes(), expires);
    app.confirm_consent(&token, RequestProof::default()).await?;
    Ok(())
}

async fn environments(stack: &harness::MotoStack, settings: &AwsSettings, n: u32) -> anyhow::Result<Vec<AwsApp>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(build(stack.clients.clone(), settings.clone()).await?);
    }
    Ok(out)
}

fn kms_calls(envs: &[AwsApp]) -> u64 {
    envs.iter().map(|e| e.key_provider.calls()).sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let stack = harness::moto_stack().await;
    let throughput = Throughput {
        send_rate_per_second: 2_000,
        sender_max_concurrency: 2,
        fanout_shards: 4,
        visibility_timeout_seconds: 30,
        ..harness::throughput()
    };
    let settings = AwsSettings { throughput, ..stack.settings.clone() };

    let started = Instant::now();
    let setup = stack.app().clone();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let (app, done) = (setup.clone(), done.clone());
        tasks.spawn(async move {
            for i in (w..contacts).step_by(workers) {
                confirmed_patient(app.clone(), i).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 1000 == 0 {
                    eprintln!("  {n} patients signed up and confirmed");
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    eprintln!("setup: {contacts} confirmed patients in {:.1} s", started.elapsed().as_secs_f64());

    let input = serde_json::from_value(json!({
        "name": "KMS bench", "category": "wellness-tips", "segment": {"not": {"exists": {"attr": "conditions"}}},
        "template": {"subject": "Your wellness update", "html": "<p>Hello {{ first_name | default('there') }}</p>",
                     "text": "Hello {{ first_name | default('there') }}"}
    }))?;
    let campaign = setup.create_campaign(input).await?;
    setup.launch_campaign(&campaign).await?;

    let fanout_envs = environments(&stack, &settings, u32::from(throughput.fanout_shards)).await?;
    let sender_envs = environments(&stack, &settings, throughput.sender_max_concurrency).await?;
    let at_start = kms_calls(&fanout_envs) + kms_calls(&sender_envs);
    let sqs = stack.clients.sqs.clone();
    let turn = AtomicUsize::new(0);

    let fanout_started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    harness::drain(&sqs, &stack.queues.fanout.0, 1, Duration::from_secs(600), |event| {
        let env = &fanout_envs[turn.fetch_add(1, Ordering::Relaxed) % fanout_envs.len()];
        async move { lambda::handle_fanout(&env.app, env.fanout_queue.as_ref(), event, deadline).await }
    })
    .await;
    let fanout_time = fanout_started.elapsed();
    let fanout_kms = kms_calls(&fanout_envs);

    let send_started = Instant::now();
    harness::drain(&sqs, &stack.queues.send.0, 10, Duration::from_secs(1800), |event| {
        let env = &sender_envs[turn.fetch_add(1, Ordering::Relaxed) % sender_envs.len()];
        async move { lambda::handle_send(&env.app, env.send_queue.as_ref(), event).await }
    })
    .await;
    let send_time = send_started.elapsed();
    let send_kms = kms_calls(&sender_envs);

    let report = setup.campaign_report(&campaign).await?;
    let total = fanout_kms + send_kms;
    println!("KMS calls for {contacts} contacts through fan-out and send (moto)");
    println!(
        "  fan-out : {:>4} KMS calls in {} cold environments, {:.1} s",
        fanout_kms,
        fanout_envs.len(),
        fanout_time.as_secs_f64()
    );
    println!(
        "  send    : {:>4} KMS calls in {} cold environments, {:.1} s",
        send_kms,
        sender_envs.len(),
        send_time.as_secs_f64()
    );
    println!("  (of which {at_start} loading each environment's keyring)");
    println!(
        "  total   : {total} KMS calls (goal: at most 20 for 10,000); audience {}, sent {}",
        report.audience, report.sent
    );
    anyhow::ensure!(report.sent as usize == contacts, "every contact was sent to");
    Ok(())
}
