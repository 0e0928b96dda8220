//! KMS calls for processing contacts through fan-out and send.
//!
//! `make bench-kms` (`scripts/with-moto.sh cargo bench --profile dev -p
//! carepost-tests --bench kms_calls`); `BENCH_CONTACTS` sets the population
//! (default 10,000). Goal: at most 20 KMS calls for 10,000 contacts.
//!
//! The key provider is the real KMS adapter talking to moto over the AWS wire
//! protocol; its own counter is what is printed. Tables, queues and the
//! transport are the embedded ones (one SQLite file, the outbox): the number
//! of KMS calls depends only on the envelope's data-key cache, and moto's
//! DynamoDB copies every table on each transaction, which makes seeding
//! 10,000 contacts there take hours. Each Lambda execution environment has
//! its own cache, so fan-out runs in `FanoutShards` cold environments and
//! sending in `SenderMaxConcurrency` cold ones, work spread over them in turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::adapters::aws::kms::KmsKeyProvider;
use carepost::adapters::embedded::{
    Db, OutboxTransport, QueueSettings, SqliteAuditLog, SqliteCampaignStore, SqliteConsentStore, SqliteContactStore,
    SqliteQueue, SqliteSecretStore, SqliteSendLedger, SqliteSuppressionList,
};
use carepost::app::{App, Ports};
use carepost::config::{RateShare, Settings, Throughput};
use carepost::crypto::{CacheLimits, Envelope, Keyring};
use carepost::domain::{FanoutShardJob, PublicBaseUrl, SendJob};
use carepost::ports::{KeyProvider, Queue};
use serde_json::json;

/// One execution environment: its own KMS client counter and data-key cache,
/// over the shared tables and queues.
struct Environment {
    app: App,
    kms: Arc<KmsKeyProvider>,
}

struct Shared {
    db: Db,
    fanout: Arc<SqliteQueue>,
    send: Arc<SqliteQueue>,
    outbox: Arc<OutboxTransport>,
    kms: aws_sdk_kms::Client,
    key_id: String,
    throughput: Throughput,
}

async fn environment(shared: &Shared) -> anyhow::Result<Environment> {
    let kms = Arc::new(KmsKeyProvider::new(shared.kms.clone(), shared.key_id.clone()));
    let provider: Arc<dyn KeyProvider> = kms.clone();
    let db = shared.db.clone();
    let keyring = Keyring::load_or_create(provider.as_ref(), &SqliteSecretStore::new(db.clone())).await?;
    let ports = Ports {
        contacts: Arc::new(SqliteContactStore::new(db.clone())),
        consent: Arc::new(SqliteConsentStore::new(db.clone())),
        suppression: Arc::new(SqliteSuppressionList::new(db.clone())),
        audit: Arc::new(SqliteAuditLog::new(db.clone())),
        activity: Arc::new(carepost::adapters::embedded::SqliteActivityStore::new(db.clone())),
        intake: Arc::new(carepost::adapters::embedded::SqliteIntakeStore::new(db.clone())),
        metrics: Arc::new(carepost::adapters::emf::EmfMetrics::new(Box::new(std::io::sink()))),
        campaigns: Arc::new(SqliteCampaignStore::new(db.clone())),
        secure_messages: Arc::new(carepost::adapters::embedded::SqliteSecureMessageStore::new(db.clone())),
        journeys: Arc::new(carepost::adapters::embedded::SqliteJourneyStore::new(db.clone())),
        ledger: Arc::new(SqliteSendLedger::new(db)),
        fanout_queue: shared.fanout.clone(),
        send_queue: shared.send.clone(),
        transport: shared.outbox.clone(),
        clock: Arc::new(carepost::ports::SystemClock),
    };
    let settings = Settings::local(PublicBaseUrl::parse("https://mail.clinic.example")?, shared.throughput);
    let envelope = Arc::new(Envelope::new(provider, CacheLimits::default()));
    let app = App::new(ports, envelope, Arc::new(keyring), Arc::new(settings), RateShare::whole(&shared.throughput));
    Ok(Environment { app, kms })
}

fn kms_calls(envs: &[Environment]) -> u64 {
    envs.iter().map(|e| e.kms.calls()).sum()
}

/// Hands every message of `queue` to the environments in turn until it stays empty.
async fn drain(
    queue: &SqliteQueue,
    envs: &[Environment],
    batch: usize,
    mut handle: impl AsyncFnMut(&App, &str) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut handled = 0u64;
    for turn in 0.. {
        let messages = queue.receive(batch, Duration::from_millis(200)).await?;
        if messages.is_empty() {
            break;
        }
        let env = &envs[turn % envs.len()];
        for message in messages {
            handle(&env.app, message.body.expose()).await?;
            queue.delete(&message.receipt_handle).await?;
            handled += 1;
        }
    }
    Ok(handled)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    anyhow::ensure!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "start moto first: make bench-kms does");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms.create_key().description("carepost bench key").send().await?;
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();

    let dir = tempfile::tempdir()?;
    let db = Db::open(&dir.path().join("bench.sqlite3"))?;
    let throughput = Throughput { send_rate_per_second: 10_000, ..Throughput::default() };
    let queue_settings =
        QueueSettings { visibility_timeout: Duration::from_secs(300), max_receive_count: throughput.max_receive_count };
    let shared = Shared {
        fanout: Arc::new(SqliteQueue::new(db.clone(), "fanout", queue_settings)),
        send: Arc::new(SqliteQueue::new(db.clone(), "send", queue_settings)),
        outbox: Arc::new(OutboxTransport::new(&dir.path().join("outbox"))?),
        db,
        kms,
        key_id,
        throughput,
    };

    let started = Instant::now();
    let setup = environment(&shared).await?;
    for i in 0..contacts {
        carepost::synthetic::sign_up_directly(
            &setup.app,
            &format!("bench.patient.{i}@example.org"),
            "wellness-tips",
            true,
        )
        .await?;
        if (i + 1) % 2_000 == 0 {
            eprintln!("  {} patients signed up and confirmed", i + 1);
        }
    }
    eprintln!("setup: {contacts} confirmed patients in {:.1} s", started.elapsed().as_secs_f64());
    let input = serde_json::from_value(json!({
        "name": "KMS bench", "category": "wellness-tips", "phi_personalized": true, "purpose": "treatment", "segment": {"not": {"exists": {"attr": "conditions"}}},
        "template": {"subject": "Your wellness update", "html": "<p>Hello {{ first_name | default('there') }}</p>",
                     "text": "Hello {{ first_name | default('there') }}"}
    }))?;
    let campaign = setup.app.campaigns.create(input).await?;
    setup.app.lifecycle.launch(&campaign).await?;

    let mut fanout_envs = Vec::new();
    for _ in 0..throughput.fanout_shards {
        fanout_envs.push(environment(&shared).await?);
    }
    let mut sender_envs = Vec::new();
    for _ in 0..throughput.sender_max_concurrency {
        sender_envs.push(environment(&shared).await?);
    }
    let keyring_loads = kms_calls(&fanout_envs) + kms_calls(&sender_envs);

    let fanout_started = Instant::now();
    drain(&shared.fanout, &fanout_envs, 1, async |app: &App, body: &str| {
        app.fanout.process_shard(&FanoutShardJob::parse(body)?, None).await?;
        Ok(())
    })
    .await?;
    let fanout_time = fanout_started.elapsed();
    let send_started = Instant::now();
    let jobs = drain(&shared.send, &sender_envs, 10, async |app: &App, body: &str| {
        app.sender.process(&SendJob::parse(body)?).await.map_err(|e| anyhow::anyhow!("send: {e}"))?;
        Ok(())
    })
    .await?;
    let send_time = send_started.elapsed();

    let report = setup.app.reports.campaign_report(&campaign).await?;
    let (fanout_kms, send_kms) = (kms_calls(&fanout_envs), kms_calls(&sender_envs));
    println!("KMS calls for {contacts} contacts through fan-out and send (KMS on moto, tables in SQLite)");
    println!(
        "  fan-out : {fanout_kms:>3} KMS calls in {} cold environments, {:.1} s",
        fanout_envs.len(),
        fanout_time.as_secs_f64()
    );
    println!(
        "  send    : {send_kms:>3} KMS calls in {} cold environments, {jobs} jobs, {:.1} s",
        sender_envs.len(),
        send_time.as_secs_f64()
    );
    println!("  of which loading each environment's keyring: {keyring_loads}");
    println!(
        "  total   : {} KMS calls (goal: at most 20 for 10,000); audience {}, sent {}",
        fanout_kms + send_kms,
        report.audience,
        report.sent
    );
    anyhow::ensure!(report.sent as usize == contacts, "every contact was sent to");
    Ok(())
}
