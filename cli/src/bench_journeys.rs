//! `carepost bench journeys`: one timer sweep on the embedded path with a
//! large enrolled population (default 1,000,000 enrolled, 100,000 of them
//! due), and its memory.
//!
//! The shipped welcome series is launched; the due contacts (sealed, with
//! consent) are enrolled at its first send step, due now, and the rest at
//! its three-day wait, due in thirty days. Then the sweep runs as the timer
//! drives it (`JourneyRunner::sweep`, a page at a time) until nothing is
//! due: each due contact is read, decrypted, walked and its send job queued
//! before it moves on. Reported: wall and CPU time per 100,000 due contacts
//! and the peak resident memory during the sweep (reset when it starts).
//! The waiting contacts are never read: the due index gives only who is
//! due. What each due contact costs in AWS requests is `make bench-journeys`.

use std::time::Instant;

use anyhow::ensure;
use carepost::app::journey_runner::SWEEP_BATCH;
use carepost::domain::journey::StepId;
use carepost::domain::{ConsentCategory, ContactId};
use carepost::ports::Enrolment;
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::bench_fanout::seed_confirmed;
use crate::proc_stats::{cpu_seconds, memory_mib, reset_peak};

#[derive(Args, Debug, Clone)]
pub struct JourneyBenchArgs {
    /// Contacts enrolled in all (due and waiting).
    #[arg(long, default_value_t = 1_000_000)]
    pub enrolled: usize,
    /// Of them, due now.
    #[arg(long, default_value_t = 100_000)]
    pub due: usize,
}

const BATCH: usize = 1_000;

fn welcome_series() -> anyhow::Result<String> {
    let mut definition: serde_json::Value = serde_json::from_str(include_str!("../../docs/journeys.example.json"))?;
    // The bench runs at any hour of any day.
    if let Some(fields) = definition.as_object_mut() {
        fields.retain(|k, _| k != "quiet_hours" && k != "closed_days");
    }
    Ok(definition.to_string())
}

fn bar(len: usize, what: &str) -> anyhow::Result<ProgressBar> {
    let template = format!("{what} {{pos}}/{{len}} {{bar:30}} {{per_sec}} eta {{eta}}");
    Ok(ProgressBar::new(len as u64).with_style(ProgressStyle::with_template(&template)?))
}

pub async fn run(args: JourneyBenchArgs) -> anyhow::Result<()> {
    ensure!(args.due > 0 && args.due <= args.enrolled, "--due must be positive and at most --enrolled");
    let dir = tempfile::tempdir()?;
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse()?;
    config.run_workers = false;
    let stack = EmbeddedStack::start(config).await?;
    let app = &stack.app;
    let journey = app.journeys.create(&welcome_series()?).await?;
    app.journeys.launch(&journey).await?;
    let category = ConsentCategory::parse("wellness-tips")?;
    let now = app.journey_runner.now();
    let enrolment = |contact: ContactId, step: &str, due_at: time::OffsetDateTime| {
        Enrolment::at_step(journey, 1, contact, StepId::parse(step).expect("a step of the example"), now, due_at)
    };

    let seeded = Instant::now();
    let progress = bar(args.due, "seeding due contacts")?;
    for batch in 0..args.due.div_ceil(BATCH) {
        let count = BATCH.min(args.due - batch * BATCH);
        for contact in seed_confirmed(app, batch, count, &category).await? {
            app.ports.journeys.enrol(&enrolment(contact, "welcome", now), None).await?;
        }
        progress.inc(count as u64);
    }
    progress.finish_and_clear();
    let waiting = args.enrolled - args.due;
    let later = now + time::Duration::days(30);
    let progress = bar(waiting, "enrolling waiting contacts")?;
    for i in 0..waiting {
        app.ports.journeys.enrol(&enrolment(ContactId::new_random(), "wait-3-days", later), None).await?;
        if i % BATCH == 0 {
            progress.set_position(i as u64);
        }
    }
    progress.finish_and_clear();
    println!(
        "seeded {} due contacts (sealed, with consent) and {waiting} waiting enrolments in {:.0} s",
        args.due,
        seeded.elapsed().as_secs_f64()
    );

    reset_peak()?;
    let rss_before = memory_mib("VmRSS:").unwrap_or(0.0);
    let (cpu_before, wall) = (cpu_seconds()?, Instant::now());
    let progress = bar(args.due, "sweeping due contacts")?;
    let (mut swept, mut queued) = (0u64, 0u64);
    loop {
        let report = app.journey_runner.sweep(SWEEP_BATCH).await?;
        if report.due == 0 {
            break;
        }
        swept += report.due;
        queued += report.queued;
        progress.inc(report.due);
    }
    progress.finish_and_clear();
    let (cpu, wall) = (cpu_seconds()? - cpu_before, wall.elapsed().as_secs_f64());
    ensure!(swept as usize == args.due, "swept {swept} of {} due", args.due);

    let per_100k = 100_000.0 / swept as f64;
    println!(
        "one timer sweep over {} enrolled, {swept} due, pages of {SWEEP_BATCH} (release build: `make bench-journeys-embedded`):",
        args.enrolled
    );
    println!("  send jobs queued      : {queued}");
    println!("  wall                  : {:>7.1} s per 100,000 due contacts ({wall:.1} s)", wall * per_100k);
    println!("  CPU                   : {:>7.1} s per 100,000 due contacts (all threads)", cpu * per_100k);
    println!(
        "  memory                : {:.0} MiB resident before the sweep, peak {:.0} MiB during it",
        rss_before,
        memory_mib("VmHWM:").unwrap_or(0.0)
    );
    Ok(())
}
