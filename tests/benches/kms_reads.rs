//! KMS calls for reading 100,000 sealed contacts with a cold data-key cache.
//!
//! `make bench-kms` runs it on moto (`BENCH_CONTACTS` sets the population,
//! default 100,000). The contacts are sealed by one writer, as an import or
//! a re-seal after `carepost keys rotate` leaves them, and stored in SQLite
//! (moto's DynamoDB copies every table on each write, which makes seeding
//! 100,000 items there take hours; the number of KMS calls does not depend
//! on the table). A new `Envelope` over a new KMS client then opens every
//! attribute of every contact, as a fan-out environment would; the KMS
//! adapter's own counter is printed. Goal: at most 10 calls.

use std::sync::Arc;
use std::time::Instant;

use carepost::adapters::aws::kms::KmsKeyProvider;
use carepost::adapters::embedded::{Db, SqliteContactStore};
use carepost::crypto::{CacheLimits, Envelope};
use carepost::ports::{ContactStore, ShardSpec};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    anyhow::ensure!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "start moto first: make bench-kms does");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms.create_key().description("carepost read bench key").send().await?;
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    let dir = tempfile::tempdir()?;
    let store = SqliteContactStore::new(Db::open(&dir.path().join("bench.sqlite3"))?);

    let writer_kms = Arc::new(KmsKeyProvider::new(kms.clone(), key_id.clone()));
    let writer = Envelope::new(writer_kms.clone(), CacheLimits::default());
    let started = Instant::now();
    for patient in carepost::synthetic::generate(contacts, 7) {
        store.put(&carepost::synthetic::sealed_record(&writer, &patient).await?).await?;
    }
    eprintln!(
        "sealed {contacts} contacts with {} KMS calls in {:.1} s",
        writer_kms.calls(),
        started.elapsed().as_secs_f64()
    );

    let reader_kms = Arc::new(KmsKeyProvider::new(kms, key_id));
    let reader = Envelope::new(reader_kms.clone(), CacheLimits::default());
    let started = Instant::now();
    let (mut read, mut cursor) = (0usize, None::<String>);
    loop {
        let page = store.scan_shard(ShardSpec { index: 0, total: 1 }, cursor.as_deref(), 1_000).await?;
        for record in &page.records {
            reader.open(&record.id, &record.sealed, None).await?;
            read += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    anyhow::ensure!(read == contacts, "read {read} of {contacts}");
    println!(
        "KMS calls to read {read} contacts (every attribute, cold cache, KMS on moto): {} in {:.1} s (goal: at most 10)",
        reader_kms.calls(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
