//! Queue workers with Lambda's SQS semantics: a message is deleted only after
//! its job succeeded or reached a recorded terminal state; a transient failure
//! is retried after a jittered back-off set through the visibility timeout;
//! a message that keeps failing reaches the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;

use crate::app::App;
use crate::app::send::SendError;
use crate::domain::{FanoutMessage, MailEvent, SendJob};
use crate::error::Classify;
use crate::ports::{Metric, Queue, ReceivedMessage};

/// Exponential back-off with jitter: between half and all of 2^(n-1) × base,
/// capped at 5 minutes, so retries of one burst spread out.
pub fn backoff(receive_count: u32, base: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << receive_count.saturating_sub(1).min(16)).min(Duration::from_secs(300));
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

async fn retry_later(queue: &dyn Queue, message: &ReceivedMessage, base: Duration) {
    if let Err(e) = queue.change_visibility(&message.receipt_handle, backoff(message.receive_count, base)).await {
        tracing::warn!(error = %e, message_id = %message.message_id, "could not set back-off");
    }
}

async fn done(queue: &dyn Queue, message: &ReceivedMessage) {
    if let Err(e) = queue.delete(&message.receipt_handle).await {
        // The job is settled; a redelivery finds it done and is deleted then.
        tracing::warn!(error = %e, message_id = %message.message_id, "could not delete message");
    }
}

/// Poison input: left in flight so it reaches the dead-letter queue.
fn poison(message: &ReceivedMessage, error: &dyn std::fmt::Display) {
    tracing::error!(error = %error, message_id = %message.message_id, receive_count = message.receive_count,
        "message cannot be processed; it will move to the dead-letter queue");
}

pub async fn run_fanout_worker(app: Arc<App>, queue: Arc<dyn Queue>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let messages = tokio::select! {
            r = queue.receive(1, Duration::from_secs(1)) => r,
            _ = stop.changed() => break,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "fan-out queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            fanout_message(&app, queue.as_ref(), &message).await;
        }
    }
}

/// One fan-out message, in a span that names it by ID only.
#[tracing::instrument(skip_all, fields(message_id = %message.message_id, receive_count = message.receive_count))]
async fn fanout_message(app: &App, queue: &dyn Queue, message: &ReceivedMessage) {
    let job = match FanoutMessage::parse(message.body.expose()) {
        Ok(job) => job,
        Err(e) => return poison(message, &e),
    };
    // Hand the shard on before its message becomes visible to another worker.
    let deadline = Instant::now() + app.settings.throughput.visibility_timeout() * 3 / 4;
    match app.fanout.process_message(&job, Some(deadline)).await {
        Ok(outcome) => {
            tracing::info!(campaign_id = %job.campaign_id(), ?outcome, "fan-out message handled");
            done(queue, message).await;
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, campaign_id = %job.campaign_id(), "fan-out message will retry");
            retry_later(queue, message, Duration::from_secs(1)).await;
        }
        Err(e) => poison(message, &e),
    }
}

pub async fn run_send_worker(app: Arc<App>, queue: Arc<dyn Queue>, mut stop: watch::Receiver<bool>) {
    let batch = app.settings.throughput.sender_batch_size as usize;
    let window = Duration::from_secs(u64::from(app.settings.throughput.sender_batching_window_seconds).max(1));
    while !*stop.borrow() {
        let messages = tokio::select! {
            r = queue.receive(batch, window) => r,
            _ = stop.changed() => break,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "send queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut campaigns: HashMap<crate::domain::CampaignId, usize> = HashMap::new();
        let (mut sent, mut retried) = (0u32, 0u32);
        for message in &messages {
            if *stop.borrow() {
                break;
            }
            send_message(&app, queue.as_ref(), message, &mut campaigns, &mut sent, &mut retried).await;
        }
        if !messages.is_empty() {
            tracing::debug!(received = messages.len(), settled = sent, retried, "send batch processed");
        }
        for (campaign, opened) in campaigns {
            // After the batch: a failed audit write is logged, the mail is out.
            if let Err(e) = app.sender.record_batch(&campaign, opened).await {
                tracing::error!(error = %e, campaign_id = %campaign, "send batch not recorded in the audit log");
            }
            if let Err(e) = app.lifecycle.advance(&campaign).await {
                tracing::warn!(error = %e, campaign_id = %campaign, "could not advance campaign");
            }
        }
    }
}

/// One send job, in a span that names it by ID only; counts what the batch
/// summary and the audit entry need.
#[tracing::instrument(skip_all, fields(message_id = %message.message_id, receive_count = message.receive_count))]
async fn send_message(
    app: &App,
    queue: &dyn Queue,
    message: &ReceivedMessage,
    campaigns: &mut HashMap<crate::domain::CampaignId, usize>,
    sent: &mut u32,
    retried: &mut u32,
) {
    let job = match SendJob::parse(message.body.expose()) {
        Ok(job) => job,
        Err(e) => return poison(message, &e),
    };
    let opened = campaigns.entry(job.campaign_id).or_insert(0usize);
    let failed = match app.sender.process(&job).await {
        Ok(outcome) => {
            *opened += usize::from(outcome.opened_contact());
            *sent += 1;
            done(queue, message).await;
            false
        }
        Err(SendError::Permanent(e)) => {
            poison(message, &e);
            true
        }
        Err(SendError::Busy { retry_after }) => {
            *retried += 1;
            // Wait out the holder's lease in one step, not with back-off
            // that could use up the receives.
            if let Err(e) = queue.change_visibility(&message.receipt_handle, retry_after).await {
                tracing::warn!(error = %e, "could not delay a busy job");
            }
            true
        }
        Err(e) => {
            *retried += 1;
            let base = if matches!(e, SendError::Throttled) { Duration::from_secs(2) } else { Duration::from_secs(1) };
            retry_later(queue, message, base).await;
            true
        }
    };
    // The queue dead-letters a message whose last receive this was.
    if failed && message.receive_count >= app.settings.throughput.max_receive_count {
        app.ports.metrics.count(Some(&job.campaign_id), Metric::DeadLettered, 1);
    }
}

pub async fn run_events_worker(app: Arc<App>, queue: Arc<dyn Queue>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let messages = tokio::select! {
            r = queue.receive(10, Duration::from_secs(1)) => r,
            _ = stop.changed() => break,
        };
        let Ok(messages) = messages else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        for message in messages {
            events_message(&app, queue.as_ref(), &message).await;
        }
    }
}

/// One provider event, in a span that names it by ID only.
#[tracing::instrument(skip_all, fields(message_id = %message.message_id, receive_count = message.receive_count))]
async fn events_message(app: &App, queue: &dyn Queue, message: &ReceivedMessage) {
    let event = match MailEvent::parse(message.body.expose()) {
        Ok(event) => event,
        Err(e) => return poison(message, &e),
    };
    match app.events.process(&event).await {
        Ok(outcome) => {
            tracing::debug!(?outcome, kind = ?event.kind, "mail event processed");
            done(queue, message).await;
        }
        Err(e) if e.is_transient() => retry_later(queue, message, Duration::from_secs(1)).await,
        Err(e) => poison(message, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(1, base);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let fourth = backoff(4, base);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            assert!(backoff(40, base) <= Duration::from_secs(300));
        }
    }
}
