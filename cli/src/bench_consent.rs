//! `carepost bench consent`: `POST /v1/consent` on the embedded stack, as
//! browsers post it, with the durable intake and its worker running.
//!
//! Two measurements: throughput and latency at each level of concurrent
//! clients (every request a new address, the most work a request can
//! cause), and the latency of known against unknown addresses, one request
//! at a time, which must be alike so timing cannot tell who is a patient.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use carepost::config::Knobs;
use carepost::domain::{ExternalId, ProfileInput};
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct ConsentBenchArgs {
    /// Levels of concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64, 256])]
    pub clients: Vec<usize>,
    /// How long each level runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Requests for known and for unknown addresses in the timing comparison.
    #[arg(long, default_value_t = 500)]
    pub timing_samples: usize,
}

/// One level's figures.
struct Level {
    clients: usize,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn body(email: &str) -> serde_json::Value {
    json!({
        "form_id": "web-signup", "email": email, "categories": ["wellness-tips"],
        "first_name": "Bench", "date_of_birth": "1980-04-02", "zip": "02139"
    })
}

/// One request as a browser on the example form sends it; its latency, or
/// `None` for anything but 202.
async fn post(http: &reqwest::Client, url: &str, origin: &str, email: &str) -> Option<Duration> {
    let started = Instant::now();
    let answer = http.post(url).header("origin", origin).json(&body(email)).send().await.ok()?;
    (answer.status() == reqwest::StatusCode::ACCEPTED).then(|| started.elapsed())
}

async fn level(stack: &EmbeddedStack, clients: usize, seconds: u64, run: usize) -> Level {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client builds");
    let url = format!("{}/v1/consent", stack.base_url());
    let origin = stack.app.settings.own_origin();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (http, url, origin, counter, errors) =
            (http.clone(), url.clone(), origin.clone(), counter.clone(), errors.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match post(&http, &url, &origin, &format!("bench.{run}.{client}.{n}@example.org")).await {
                    Some(latency) => latencies.push(latency),
                    None => _ = errors.fetch_add(1, Ordering::Relaxed),
                }
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Level { clients, requests: latencies.len() as u64, errors: errors.load(Ordering::Relaxed), elapsed, latencies }
}

/// Median latencies of known and unknown addresses, interleaved one request
/// at a time so both see the same machine.
async fn known_against_unknown(stack: &EmbeddedStack, samples: usize, bar: &ProgressBar) -> (Duration, Duration) {
    let http = reqwest::Client::new();
    let url = format!("{}/v1/consent", stack.base_url());
    let origin = stack.app.settings.own_origin();
    let profile = ProfileInput { first_name: Some("Bench".into()), ..ProfileInput::default() };
    let (mut known, mut unknown) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..samples {
        let address = format!("known.{i}@example.org");
        let external = ExternalId::parse(&format!("bench-known-{i}")).expect("external ID");
        stack.app.contacts.upsert("bench", external, &address, &profile).await.expect("known contact stored");
        if let Some(latency) = post(&http, &url, &origin, &address).await {
            known.push(latency);
        }
        if let Some(latency) = post(&http, &url, &origin, &format!("unknown.{i}@example.org")).await {
            unknown.push(latency);
        }
        bar.inc(1);
    }
    known.sort_unstable();
    unknown.sort_unstable();
    (quantile(&known, 0.5), quantile(&unknown, 0.5))
}

pub async fn run(args: ConsentBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients.iter().all(|c| *c > 0), "--clients levels must be at least 1");
    let dir = tempfile::tempdir()?;
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse()?;
    // Every client is 127.0.0.1: the per-IP limit would stop the bench at
    // once, so it is lifted; each request is a new address, so the
    // per-address limit never applies.
    config.knobs = Knobs { consent_limit_per_ip_per_hour: u32::MAX, ..Knobs::default() };
    config.server.max_connections = config.server.max_connections.max(args.clients.iter().sum::<usize>() + 64);
    let stack = EmbeddedStack::start(config).await?;

    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {msg}")?.progress_chars("=> ");
    let mut levels = Vec::new();
    for (run, clients) in args.clients.iter().copied().enumerate() {
        let bar = ProgressBar::new(args.seconds).with_style(style.clone()).with_prefix(format!("{clients} clients"));
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    bar.inc(1);
                }
            })
        };
        levels.push(level(&stack, clients, args.seconds, run).await);
        ticker.abort();
        bar.finish_and_clear();
    }
    let bar = ProgressBar::new(args.timing_samples as u64).with_style(style).with_prefix("timing");
    let (known, unknown) = known_against_unknown(&stack, args.timing_samples, &bar).await;
    bar.finish_and_clear();

    println!("POST /v1/consent, embedded stack, durable intake (worker running), a new address per request");
    println!(
        "{:>8} {:>10} {:>12} {:>9} {:>9} {:>7}",
        "clients", "requests", "requests/s", "p50 ms", "p99 ms", "errors"
    );
    for l in &levels {
        println!(
            "{:>8} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>7}",
            l.clients,
            l.requests,
            l.requests as f64 / l.elapsed.as_secs_f64(),
            ms(quantile(&l.latencies, 0.5)),
            ms(quantile(&l.latencies, 0.99)),
            l.errors
        );
    }
    let gap = (ms(known) - ms(unknown)).abs() / ms(known).min(ms(unknown)).max(f64::EPSILON) * 100.0;
    println!(
        "median latency, one request at a time ({} each): known address {:.3} ms, unknown {:.3} ms ({gap:.0} % apart)",
        args.timing_samples,
        ms(known),
        ms(unknown)
    );
    stack.shutdown().await;
    Ok(())
}
