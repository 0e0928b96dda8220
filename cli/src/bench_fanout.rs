//! `carepost bench fanout`: fan-out throughput on the embedded path with a
//! large synthetic population (default 1,000,000 contacts), and its memory.
//!
//! Contacts (every attribute sealed) and their consent are seeded straight
//! into the stack's SQLite file, in batches, without keeping the population
//! in memory. Then one campaign is launched and each shard is fanned out in
//! turn by the real use case (`process_fanout_shard`: suppression and
//! consent reads, decryption of the segment's attributes, the segment, send
//! jobs into the embedded send queue, checkpoints, audit entries). Reported:
//! contacts evaluated per CPU-second of the whole process (the database
//! thread included, so per core), per wall second, and the peak resident
//! memory during fan-out (the high-water mark is reset when it starts).

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use carepost::app::App;
use carepost::config::RateShare;
use carepost::domain::{
    CampaignId, ConsentCategory, ConsentEntry, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus,
    ContactId, FanoutShardJob,
};
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use clap::Args;

use crate::proc_stats::{cpu_seconds, memory_mib, reset_peak};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct FanoutBenchArgs {
    /// Synthetic contacts to seed and fan out over.
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: usize,
    /// FanoutShards: the campaign's shards, fanned out one after another.
    #[arg(long, default_value_t = 4)]
    pub shards: u16,
    /// Contacts per fan-out page (default: the stack's setting).
    #[arg(long)]
    pub page_size: Option<usize>,
}

const BATCH: usize = 1_000;

pub async fn run(args: FanoutBenchArgs) -> anyhow::Result<()> {
    ensure!(args.contacts > 0 && args.shards > 0, "--contacts and --shards must be positive");
    let dir = tempfile::tempdir()?;
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse()?;
    config.run_workers = false;
    config.knobs.throughput.fanout_shards = args.shards;
    let stack = EmbeddedStack::start(config).await?;
    let tuned;
    let app = match args.page_size {
        None => &stack.app,
        Some(page_size) => {
            ensure!(page_size > 0, "--page-size must be positive");
            let mut settings = (*stack.app.settings).clone();
            settings.fanout_page_size = page_size;
            let rate = RateShare::whole(&settings.throughput);
            let base = &stack.app;
            tuned = App::new(base.ports.clone(), base.envelope.clone(), base.keyring.clone(), Arc::new(settings), rate);
            &tuned
        }
    };
    let category = ConsentCategory::parse("wellness-tips")?;

    let bar = ProgressBar::new(args.contacts as u64)
        .with_style(ProgressStyle::with_template("seeding {pos}/{len} contacts {bar:30} {per_sec} eta {eta}")?);
    let seeded = Instant::now();
    for batch in 0..args.contacts.div_ceil(BATCH) {
        let count = BATCH.min(args.contacts - batch * BATCH);
        seed_confirmed(app, batch, count, &category).await?;
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    println!(
        "seeded {} contacts (every attribute sealed) with consent in {:.0} s",
        args.contacts,
        seeded.elapsed().as_secs_f64()
    );

    let input = serde_json::from_value(json!({
        "name": "Fan-out bench", "category": "wellness-tips",
        "segment": {"all": [{"age": {"min": 40}}, {"in": {"attr": "conditions", "values": ["asthma", "copd"]}}]},
        "template": {"subject": "Hello", "html": "<p>Hello</p>", "text": "Hello {{ unsubscribe_url }}"}
    }))?;
    let campaign: CampaignId = app.campaigns.create(input).await?;
    app.lifecycle.launch(&campaign).await?;
    // The launch enqueued the shard jobs; this benchmark runs each shard itself.
    reset_peak()?;
    let rss_before = memory_mib("VmRSS:").unwrap_or(0.0);
    let (cpu_before, wall) = (cpu_seconds()?, Instant::now());
    let bar = ProgressBar::new(u64::from(args.shards))
        .with_style(ProgressStyle::with_template("fanning out shard {pos}/{len} {bar:30} {elapsed}")?);
    for shard in 0..args.shards {
        app.fanout.process_shard(&FanoutShardJob { campaign_id: campaign, shard, shards: args.shards }, None).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let (cpu, wall) = (cpu_seconds()? - cpu_before, wall.elapsed().as_secs_f64());
    let report = app.reports.campaign_report(&campaign).await?;
    ensure!(report.evaluated as usize == args.contacts, "evaluated {} of {}", report.evaluated, args.contacts);

    let n = report.evaluated as f64;
    println!(
        "fan-out of {} contacts in {} shards, pages of {} (release build: `make bench-fanout`):",
        report.evaluated, args.shards, app.settings.fanout_page_size
    );
    println!("  audience              : {} send jobs enqueued", report.audience);
    println!(
        "  per core              : {:>9.0} contacts/s per CPU-second ({cpu:.1} s CPU, all threads)",
        n / cpu.max(0.01)
    );
    println!("  wall                  : {:>9.0} contacts/s ({wall:.1} s)", n / wall.max(1e-9));
    println!(
        "  memory                : {:.0} MiB resident before fan-out, peak {:.0} MiB during it",
        rss_before,
        memory_mib("VmHWM:").unwrap_or(0.0)
    );
    println!("  goal: at least 100,000 contacts/s/core, memory flat in the number of contacts");
    Ok(())
}

/// Seeds batch `batch` of `count` synthetic patients (every attribute
/// sealed, a distinct blind index each) with consent to `category`, straight
/// into the stack's stores; answers their IDs.
pub(crate) async fn seed_confirmed(
    app: &App,
    batch: usize,
    count: usize,
    category: &ConsentCategory,
) -> anyhow::Result<Vec<ContactId>> {
    let mut ids = Vec::with_capacity(count);
    for patient in carepost::synthetic::generate(count, batch as u64) {
        let mut record = carepost::synthetic::sealed_record(&app.envelope, &patient).await?;
        record.email_index = carepost::domain::BlindIndex::from_stored(format!("{batch:032x}{:032x}", patient.index))?;
        app.ports.contacts.put(&record).await?;
        let at = time::OffsetDateTime::now_utc();
        let evidence = ConsentEvidence::without_proof(
            record.id,
            ConsentEntryKind::Granted,
            vec![category.clone()],
            at,
            ConsentMethod::Import,
        );
        app.ports.consent.append(&ConsentEntry::chain(None, evidence), ConsentStatus::Active).await?;
        ids.push(record.id);
    }
    Ok(ids)
}
