//! The embedded queue workers: receive a batch, run it through the one
//! message driver (`driver.rs`) and map each decision onto the queue: ack
//! deletes, retry changes the visibility, dead-letter leaves the message
//! in flight so the queue moves it after `MaxReceiveCount` receives.
//! And the journey timer: the due-index sweep, on a fixed tick.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::driver::{self, Delivery, EventJobs, FanoutDeadline, FanoutJobs, JobHandler, SendJobs};
use crate::app::App;
use crate::domain::Decision;
use crate::ports::{Queue, ReceivedMessage};

/// What becomes of one message on the embedded queue.
async fn apply(queue: &dyn Queue, message: &ReceivedMessage, decision: Decision) {
    let result = match decision {
        Decision::Ack => queue.delete(&message.receipt_handle).await,
        Decision::Retry { after } => queue.change_visibility(&message.receipt_handle, after).await,
        Decision::DeadLetter => Ok(()),
    };
    if let Err(e) = result {
        // Ack: the job is settled, a redelivery finds it done. Retry: the
        // message reappears after the visibility timeout instead.
        tracing::warn!(error = %e, message_id = %message.message_id, ?decision, "could not apply the decision");
    }
}

fn delivery(m: &ReceivedMessage) -> Delivery<'_> {
    Delivery { message_id: &m.message_id, body: m.body.expose(), receive_count: m.receive_count }
}

/// Receives batches of up to `batch` messages until `stop`, and drives each
/// through the handler `make` builds for it.
async fn run<H, F>(queue: Arc<dyn Queue>, batch: usize, wait: Duration, mut stop: watch::Receiver<bool>, make: F)
where
    H: JobHandler,
    F: Fn() -> H,
{
    while !*stop.borrow() {
        let messages = tokio::select! {
            r = queue.receive(batch, wait) => r,
            _ = stop.changed() => break,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, queue = H::QUEUE, "queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let deliveries: Vec<Delivery<'_>> = messages.iter().map(delivery).collect();
        // A worker told to stop leaves the messages it has not reached; they
        // reappear after the visibility timeout.
        let decisions = driver::drive_batch(make(), deliveries, || *stop.borrow()).await;
        for (index, decision) in decisions {
            apply(queue.as_ref(), &messages[index], decision).await;
        }
    }
}

pub async fn run_fanout_worker(app: Arc<App>, queue: Arc<dyn Queue>, stop: watch::Receiver<bool>) {
    run(queue, 1, Duration::from_secs(1), stop, || FanoutJobs {
        app: &app,
        deadline: FanoutDeadline::WithinVisibility,
    })
    .await;
}

pub async fn run_send_worker(app: Arc<App>, queue: Arc<dyn Queue>, stop: watch::Receiver<bool>) {
    let batch = app.settings.throughput.sender_batch_size as usize;
    let window = Duration::from_secs(u64::from(app.settings.throughput.sender_batching_window_seconds).max(1));
    run(queue, batch, window, stop, || SendJobs::new(&app)).await;
}

pub async fn run_events_worker(app: Arc<App>, queue: Arc<dyn Queue>, stop: watch::Receiver<bool>) {
    run(queue, 10, Duration::from_secs(1), stop, || EventJobs::new(&app)).await;
}

/// How often the embedded stack sweeps the journeys' due index: the
/// resolution of every journey wait (waits are hours to months; a send
/// step's settle check comes a minute after it is queued).
pub const JOURNEY_TICK: Duration = Duration::from_secs(30);

/// Batches of [`crate::app::journey_runner::SWEEP_BATCH`] one tick runs at most.
const JOURNEY_BATCHES_PER_TICK: u32 = 50;

async fn sweep_journeys(app: &App) {
    match app.journey_runner.drain(JOURNEY_BATCHES_PER_TICK).await {
        Ok(report) if report.due > 0 => report.log("journey timer swept"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "journey timer sweep failed; trying again at the next tick"),
    }
}

/// How long one tick may spend reading contacts for segment and date
/// entries; a pass that needs longer goes on at the next tick.
const JOURNEY_ENTRY_BUDGET: Duration = Duration::from_secs(10);

/// The journey timer: at start, then every `tick` ([`JOURNEY_TICK`]) until `stop`.
/// A failed sweep (the store away) is logged and tried at the next tick;
/// nothing is lost, the enrolments stay due.
pub async fn run_journey_timer(app: Arc<App>, tick: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        sweep_journeys(&app).await;
        let deadline = std::time::Instant::now() + JOURNEY_ENTRY_BUDGET;
        match app.journey_entries.scan_while(|| std::time::Instant::now() < deadline).await {
            Ok(report) if report.journeys > 0 => {
                report.log("journey entry scan");
                // Whoever entered due now takes its first step in this tick.
                if report.entered > 0 {
                    sweep_journeys(&app).await;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "journey entry scan failed; it goes on from its cursor next tick"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}
