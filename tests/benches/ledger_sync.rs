//! What SQLite's synchronous mode costs per send on the embedded store.
//!
//! Every send job touches the one database file four times: the queue
//! receive, the ledger claim, the ledger settle and the queue delete, each a
//! commit of its own (the embedded worker's order). This runs that sequence
//! for `BENCH_SENDS` jobs (default 2,000) on a fresh file in each mode and
//! prints the cost per send:
//!
//! * `NORMAL`: WAL with `synchronous = NORMAL` (no fsync at commit; the WAL
//!   is synced at checkpoints);
//! * `FULL`: WAL with `synchronous = FULL` (the WAL is fsynced at every commit);
//! * `NORMAL, settle FULL`: `NORMAL`, with only the ledger settle committed
//!   under `FULL` (its fsync makes every earlier WAL frame durable too).
//!
//! No transport and no rendering: the figures are the store's share of a
//! send. `make bench-ledger` runs it (a few seconds). docs/architecture.md
//! ("Durability of the embedded store") records the figures and the choice.

use std::time::{Duration, Instant};

use carepost::adapters::embedded::{Db, QueueSettings, SqliteQueue, SqliteSendLedger};
use carepost::domain::{CampaignId, ContactId, ProviderMessageId, SendJob};
use carepost::ports::{ClaimOutcome, LedgerState, Queue, SendLedger, StoreError};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    Full,
    SettleFull,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Normal => "NORMAL",
            Mode::Full => "FULL",
            Mode::SettleFull => "NORMAL, settle FULL",
        }
    }
}

async fn pragma(db: &Db, sql: &'static str) -> anyhow::Result<()> {
    db.call(move |c| c.execute_batch(sql).map_err(|e| StoreError::unavailable("pragma", e))).await?;
    Ok(())
}

/// Seconds per send for `sends` jobs through receive, claim, settle, delete.
async fn run(mode: Mode, sends: usize) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let db = Db::open(&dir.path().join("bench.sqlite3"))?;
    pragma(&db, if mode == Mode::Full { "PRAGMA synchronous = FULL;" } else { "PRAGMA synchronous = NORMAL;" }).await?;
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(60), max_receive_count: 5 };
    let queue = SqliteQueue::new(db.clone(), "send", settings);
    let ledger = SqliteSendLedger::new(db.clone());
    let campaign = CampaignId::new_random();
    let bodies: Vec<String> =
        (0..sends).map(|_| SendJob { campaign_id: campaign, contact_id: ContactId::new_random() }.to_body()).collect();
    queue.send_batch(&bodies).await?;

    let started = Instant::now();
    let mut done = 0;
    while done < sends {
        let batch = queue.receive(10, Duration::ZERO).await?;
        anyhow::ensure!(!batch.is_empty(), "the queue ran dry after {done} of {sends}");
        for message in batch {
            let job = SendJob::parse(message.body.expose())?;
            let now = time::OffsetDateTime::now_utc();
            let ClaimOutcome::Claimed { attempt } =
                ledger.claim(&job.campaign_id, &job.contact_id, now, Duration::from_secs(60)).await?
            else {
                anyhow::bail!("a fresh row was not claimed");
            };
            let sent = LedgerState::Sent { provider_message_id: ProviderMessageId::new(format!("bench-{done}")) };
            if mode == Mode::SettleFull {
                pragma(&db, "PRAGMA synchronous = FULL;").await?;
            }
            ledger.settle(&job.campaign_id, &job.contact_id, attempt, &sent).await?;
            if mode == Mode::SettleFull {
                pragma(&db, "PRAGMA synchronous = NORMAL;").await?;
            }
            queue.delete(&message.receipt_handle).await?;
            done += 1;
        }
    }
    Ok(started.elapsed() / sends as u32)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sends: usize = std::env::var("BENCH_SENDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    println!("store work per send (queue receive, ledger claim, ledger settle, queue delete), {sends} sends, WAL:");
    let mut results = Vec::new();
    // Twice round, so a cold page cache or a neighbour's burst shows as a spread.
    for round in 1..=2 {
        for mode in [Mode::Normal, Mode::Full, Mode::SettleFull] {
            let per = run(mode, sends).await?;
            println!(
                "  round {round}  synchronous = {:<20} {:>8.1} µs per send  ({:>6.0} sends/s on one connection)",
                mode.label(),
                per.as_secs_f64() * 1e6,
                1.0 / per.as_secs_f64()
            );
            results.push((mode, per));
        }
    }
    let best = |m: Mode| results.iter().filter(|(mode, _)| *mode == m).map(|(_, d)| *d).min().unwrap_or_default();
    let normal = best(Mode::Normal).as_secs_f64() * 1e6;
    println!(
        "best of two: NORMAL {normal:.1} µs, FULL {:.1} µs, NORMAL with settle FULL {:.1} µs per send",
        best(Mode::Full).as_secs_f64() * 1e6,
        best(Mode::SettleFull).as_secs_f64() * 1e6
    );
    Ok(())
}
