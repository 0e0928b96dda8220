//! Kill the stack while a campaign is sending and start it again: every
//! eligible patient receives exactly one email, none is missing, nobody
//! ineligible gets one, and in-flight queue rows hold no PHI.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use carepost::synthetic;
use reqwest::StatusCode;

use super::helpers::{client_for, ensure_no_probes, everyone, mails_in, phi_probes, queue_rows, start_dev};

const KNOBS: [&str; 10] = [
    // Every patient signs up from this machine.
    "--consent-limit-per-ip-per-hour",
    "100000",
    "--send-rate-per-second",
    "25",
    "--visibility-timeout-seconds",
    "2",
    "--sender-max-concurrency",
    "3",
    "--fanout-shards",
    "3",
];

#[tokio::test]
async fn a_stack_killed_mid_campaign_delivers_exactly_once_after_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let log = dir.path().join("dev.log");
    let mut first = start_dev(&data, &log, &KNOBS).await?;
    let client = client_for(&first.base, &data);
    let population = synthetic::generate(120, 5);
    for p in &population {
        assert_eq!(client.sign_up(p, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    let eligible: Vec<&str> = population.iter().filter(|p| p.index % 10 != 0).map(|p| p.email.as_str()).collect();
    assert_eq!(client.confirm(&eligible).await, eligible.len());
    let campaign = client.create_campaign("wellness-tips", everyone()).await;
    client.launch(&campaign).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while mails_in(&client.outbox, &campaign).len() < 30 {
        assert!(Instant::now() < deadline, "sending never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().await?; // SIGKILL: no graceful shutdown
    let sent_before_kill = mails_in(&client.outbox, &campaign).len();
    assert!(sent_before_kill < eligible.len(), "the kill landed mid-campaign ({sent_before_kill} sent)");
    let probes = phi_probes(&population, &[]);
    let in_flight = queue_rows(&data.join("carepost.sqlite3"))?;
    assert!(!in_flight.is_empty(), "jobs were still queued at the kill");
    ensure_no_probes("in-flight queue rows", in_flight.join("\n").as_bytes(), &probes)?;

    let second = start_dev(&data, &log, &KNOBS).await?;
    let client = client_for(&second.base, &data);
    let report = client.wait_completed(&campaign, Duration::from_secs(90)).await?;

    let mut received: HashMap<String, usize> = HashMap::new();
    for mail in mails_in(&client.outbox, &campaign) {
        *received.entry(mail.to).or_default() += 1;
    }
    let missing: Vec<_> = eligible.iter().filter(|e| !received.contains_key(**e)).collect();
    let unexpected: Vec<_> = received.keys().filter(|r| !eligible.contains(&r.as_str())).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(unexpected.is_empty(), "mailed without confirmed consent: {unexpected:?}");
    assert!(received.values().all(|n| *n == 1));
    assert_eq!(report["sent"].as_u64(), Some(eligible.len() as u64));
    assert_eq!(report["excluded"]["consent_pending"].as_u64(), Some((population.len() - eligible.len()) as u64));
    let logs = std::fs::read_to_string(&log)?;
    let repeated = logs.matches("repeated hand-over").count();
    assert!(repeated <= 1, "only a send caught between acceptance and settlement may be handed over again: {repeated}");
    ensure_no_probes("the logs", logs.as_bytes(), &probes)?;
    Ok(())
}
