//! `carepost bench decrypt`: sealed contacts opened per second per core on
//! the embedded path, every attribute (the email and the ten profile
//! attributes) decrypted, with a cold data-key cache as a fresh process has.
//!
//! Two figures: opening alone, blobs already in memory, on one thread (the
//! per-core cost of the envelope); and reading from the SQLite file in pages
//! with opening, divided by the process CPU time it used (the database
//! thread included), so it is per core too.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use carepost::adapters::embedded::{Db, KeyFileProvider, SqliteContactStore};
use carepost::crypto::{CacheLimits, Envelope};
use carepost::ports::{ContactStore, ShardSpec};
use clap::Args;

use crate::proc_stats::{cpu_seconds, memory_mib};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug, Clone)]
pub struct DecryptBenchArgs {
    /// Contacts to seal, store and read back.
    #[arg(long, default_value_t = 100_000)]
    pub contacts: usize,
    /// Contacts per page read from the store.
    #[arg(long, default_value_t = 1_000)]
    pub page: usize,
}

pub async fn run(args: DecryptBenchArgs) -> anyhow::Result<()> {
    ensure!(args.contacts > 0 && args.page > 0, "--contacts and --page must be positive");
    let dir = tempfile::tempdir()?;
    let key_path = dir.path().join("master.key");
    let db = Db::open(&dir.path().join("bench.sqlite3"))?;
    let store = SqliteContactStore::new(db.clone());

    let writer = Envelope::new(Arc::new(KeyFileProvider::open_or_create(&key_path)?), CacheLimits::default());
    let bar = ProgressBar::new(args.contacts as u64).with_style(ProgressStyle::with_template(
        "sealing and storing {pos}/{len} contacts {bar:30} {per_sec} eta {eta}",
    )?);
    let seeded = Instant::now();
    let mut fields = 0usize;
    for chunk in carepost::synthetic::generate(args.contacts, 2026).chunks(1_000) {
        for patient in chunk {
            let record = carepost::synthetic::sealed_record(&writer, patient).await?;
            fields += carepost::crypto::envelope::attribute_spans(&record.sealed).len();
            store.put(&record).await?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    println!(
        "sealed and stored {} contacts ({:.1} encrypted attributes each, email included) in {:.1} s",
        args.contacts,
        fields as f64 / args.contacts as f64,
        seeded.elapsed().as_secs_f64()
    );

    // A fresh process: its own key provider handle and an empty data-key cache.
    let reader_keys = Arc::new(KeyFileProvider::open_or_create(&key_path)?);
    let reader = Envelope::new(reader_keys.clone(), CacheLimits::default());
    let (cpu_before, wall) = (cpu_seconds()?, Instant::now());
    let mut read = Vec::with_capacity(args.contacts);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan_shard(ShardSpec { index: 0, total: 1 }, cursor.as_deref(), args.page).await?;
        for record in &page.records {
            reader.open(&record.id, &record.sealed, None).await?;
        }
        read.extend(page.records.into_iter().map(|r| (r.id, r.sealed)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let (scan_cpu, scan_wall) = (cpu_seconds()? - cpu_before, wall.elapsed().as_secs_f64());
    ensure!(read.len() == args.contacts, "read {} of {} contacts", read.len(), args.contacts);
    let key_calls = reader_keys.calls();

    // Opening alone, on this one thread.
    let (cpu_before, wall) = (cpu_seconds()?, Instant::now());
    for (id, sealed) in &read {
        let (_, profile) = reader.open(id, sealed, None).await?;
        std::hint::black_box(profile);
    }
    let (open_cpu, open_wall) = (cpu_seconds()? - cpu_before, wall.elapsed().as_secs_f64());

    let n = args.contacts as f64;
    println!("contacts opened, every attribute, cold data-key cache (release build: `make bench-decrypt`):");
    println!(
        "  open only, one thread : {:>9.0} contacts/s/core ({:.2} s wall, {:.2} s CPU)",
        n / open_wall.max(1e-9),
        open_wall,
        open_cpu
    );
    println!(
        "  SQLite scan + open    : {:>9.0} contacts/s per CPU-second ({:.0}/s wall; {:.2} s wall, {:.2} s CPU)",
        n / scan_cpu.max(0.01),
        n / scan_wall.max(1e-9),
        scan_wall,
        scan_cpu
    );
    println!(
        "  key-file unwraps for the {} contacts read: {key_calls} (goal for KMS: at most 10 per 100,000)",
        args.contacts
    );
    if let Some(peak) = memory_mib("VmHWM:") {
        println!("  peak resident memory: {peak:.0} MiB (the read-back blobs are kept for the second pass)");
    }
    println!("  goal: at least 100,000 contacts/s/core");
    Ok(())
}
