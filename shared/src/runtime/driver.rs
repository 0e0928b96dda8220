//! The one message driver. Each queue's job kind is a [`JobHandler`]: it
//! parses a body and runs the use case. The driver runs a batch through
//! it, turns each result into a [`Decision`] with the one [`RetryPolicy`],
//! and logs every failure by IDs only. The runtimes only map decisions onto
//! their queue: the embedded workers delete or change visibility, the
//! Lambda handlers report batch item failures (and change visibility).

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use rand::Rng;
use tracing::Instrument;

use crate::app::send::SendError;
use crate::app::{App, BatchCounts};
use crate::domain::retry::{THROTTLED_BASE, TRANSIENT_BASE};
use crate::domain::{CampaignId, Decision, FanoutMessage, JobResult, MailEvent, RetryPolicy, SendQueueJob};
use crate::error::Classify;
use crate::ports::Metric;

/// One delivery of a message, as either runtime receives it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub message_id: &'a str,
    pub body: &'a str,
    pub receive_count: u32,
}

/// A job's result and, for a failure, its error text (IDs and fixed words
/// only: port errors never carry their source's text in `Display`).
pub struct Handled {
    pub result: JobResult,
    pub error: Option<String>,
}

impl Handled {
    pub fn done() -> Self {
        Self { result: JobResult::Done, error: None }
    }

    pub fn failed(result: JobResult, error: &dyn std::fmt::Display) -> Self {
        Self { result, error: Some(error.to_string()) }
    }

    /// An application error: transient ones back off, the rest are permanent.
    fn from_error(e: &(impl Classify + std::fmt::Display)) -> Self {
        let result =
            if e.is_transient() { JobResult::Transient { base: TRANSIENT_BASE } } else { JobResult::Permanent };
        Self::failed(result, e)
    }
}

/// One queue's kind of job. A handler lives for one batch, so it can gather
/// what the batch needs afterwards (`finish`).
#[async_trait]
pub trait JobHandler: Send {
    type Job: Send + Sync;
    /// The queue's name in logs.
    const QUEUE: &'static str;
    fn app(&self) -> &App;
    /// The job, or the parse error's text (never the body: the events queue
    /// carries recipients and subjects).
    fn parse(&self, body: &str) -> Result<Self::Job, String>;
    fn campaign(job: &Self::Job) -> Option<CampaignId>;
    async fn handle(&mut self, job: &Self::Job) -> Handled;
    /// After the batch.
    async fn finish(self)
    where
        Self: Sized,
    {
    }
}

/// Runs `deliveries` through `handler` in order, stopping early (without a
/// decision for the rest, which reappear after the visibility timeout) when
/// `stop` says so. Returns each handled delivery's index and decision.
pub async fn drive_batch<'a, H: JobHandler>(
    mut handler: H,
    deliveries: impl IntoIterator<Item = Delivery<'a>>,
    stop: impl Fn() -> bool,
) -> Vec<(usize, Decision)> {
    let policy = RetryPolicy::new(handler.app().settings.throughput.max_receive_count);
    let mut decisions = Vec::new();
    for (index, delivery) in deliveries.into_iter().enumerate() {
        if stop() {
            break;
        }
        let span = tracing::info_span!(
            "message",
            queue = H::QUEUE,
            message_id = delivery.message_id,
            receive_count = delivery.receive_count
        );
        let decision = drive_one(&policy, &mut handler, delivery).instrument(span).await;
        decisions.push((index, decision));
    }
    handler.finish().await;
    decisions
}

async fn drive_one<H: JobHandler>(policy: &RetryPolicy, handler: &mut H, delivery: Delivery<'_>) -> Decision {
    let (campaign, handled) = match handler.parse(delivery.body) {
        Ok(job) => (H::campaign(&job), handler.handle(&job).await),
        Err(e) => (None, Handled { result: JobResult::Permanent, error: Some(e) }),
    };
    let decision = policy.decide(handled.result, delivery.receive_count, rand::rng().random_range(0.0..=1.0));
    let error = handled.error.as_deref().unwrap_or("");
    let campaign_id = campaign.map(|c| c.to_string()).unwrap_or_default();
    let last = policy.exhausted(delivery.receive_count);
    match decision {
        Decision::Ack => return decision,
        Decision::Retry { after } if !last => tracing::warn!(
            queue = H::QUEUE,
            message_id = delivery.message_id,
            receive_count = delivery.receive_count,
            campaign_id,
            error,
            retry_after_ms = after.as_millis() as u64,
            result = ?handled.result,
            "job failed; it will be retried"
        ),
        _ => tracing::error!(
            queue = H::QUEUE,
            message_id = delivery.message_id,
            receive_count = delivery.receive_count,
            campaign_id,
            error,
            result = ?handled.result,
            "job failed; it will move to the dead-letter queue"
        ),
    }
    // The queue dead-letters a message whose last receive this was.
    if last {
        handler.app().ports.metrics.count(campaign.as_ref(), Metric::DeadLettered, 1);
    }
    decision
}

/// When a fan-out job must hand its shard on.
pub enum FanoutDeadline {
    /// Lambda: a share of the invocation's time.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    At(Instant),
    /// Embedded: before the message becomes visible to another worker.
    WithinVisibility,
}

/// `fanout`: one shard (or a scheduled launch's wake-up) per message.
pub struct FanoutJobs<'a> {
    pub app: &'a App,
    pub deadline: FanoutDeadline,
}

#[async_trait]
impl JobHandler for FanoutJobs<'_> {
    type Job = FanoutMessage;
    const QUEUE: &'static str = "fanout";

    fn app(&self) -> &App {
        self.app
    }

    fn parse(&self, body: &str) -> Result<FanoutMessage, String> {
        FanoutMessage::parse(body).map_err(|e| e.to_string())
    }

    fn campaign(job: &FanoutMessage) -> Option<CampaignId> {
        Some(job.campaign_id())
    }

    async fn handle(&mut self, job: &FanoutMessage) -> Handled {
        let deadline = match self.deadline {
            FanoutDeadline::At(at) => at,
            FanoutDeadline::WithinVisibility => {
                Instant::now() + self.app.settings.throughput.visibility_timeout() * 3 / 4
            }
        };
        match self.app.fanout.process_message(job, Some(deadline)).await {
            Ok(outcome) => {
                tracing::info!(campaign_id = %job.campaign_id(), ?outcome, "fan-out message handled");
                Handled::done()
            }
            Err(e) => Handled::from_error(&e),
        }
    }
}

/// `send`: each job exactly once; after the batch, its audit entry and the
/// campaigns' progress.
pub struct SendJobs<'a> {
    pub app: &'a App,
    /// Contacts opened per campaign in this batch.
    opened: HashMap<CampaignId, usize>,
    /// The batch's timeline counts, written once after it.
    counts: BatchCounts,
}

impl<'a> SendJobs<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app, opened: HashMap::new(), counts: BatchCounts::default() }
    }
}

#[async_trait]
impl JobHandler for SendJobs<'_> {
    type Job = SendQueueJob;
    const QUEUE: &'static str = "send";

    fn app(&self) -> &App {
        self.app
    }

    fn parse(&self, body: &str) -> Result<SendQueueJob, String> {
        SendQueueJob::parse(body).map_err(|e| e.to_string())
    }

    fn campaign(job: &SendQueueJob) -> Option<CampaignId> {
        match job {
            SendQueueJob::Campaign(job) => Some(job.campaign_id),
            SendQueueJob::SecureNotice(job) => Some(job.notice_campaign_id),
            SendQueueJob::Confirmation(_) => None,
        }
    }

    async fn handle(&mut self, job: &SendQueueJob) -> Handled {
        let (campaign_id, result) = match job {
            SendQueueJob::Campaign(job) => {
                (job.campaign_id, self.app.sender.process_counting(job, &mut self.counts).await)
            }
            SendQueueJob::SecureNotice(job) => (job.notice_campaign_id, self.app.sender.secure_notice(job).await),
            SendQueueJob::Confirmation(job) => {
                return match self.app.consent.process_intake(&job.intake_id).await {
                    Ok(outcome) => {
                        tracing::info!(intake_id = %job.intake_id, ?outcome, "consent request handled");
                        Handled::done()
                    }
                    Err(e) => Handled::from_error(&e),
                };
            }
        };
        let opened = self.opened.entry(campaign_id).or_insert(0);
        match result {
            Ok(outcome) => {
                tracing::debug!(campaign_id = %campaign_id, ?outcome, "send job");
                *opened += usize::from(outcome.opened_contact());
                Handled::done()
            }
            Err(e @ SendError::Permanent(_)) => Handled::failed(JobResult::Permanent, &e),
            Err(e @ SendError::Busy { retry_after }) => Handled::failed(JobResult::Busy { retry_after }, &e),
            Err(e @ SendError::Throttled) => Handled::failed(JobResult::Transient { base: THROTTLED_BASE }, &e),
            Err(e) => Handled::failed(JobResult::Transient { base: TRANSIENT_BASE }, &e),
        }
    }

    async fn finish(mut self) {
        self.app.sender.record_counts(&mut self.counts).await;
        for (campaign, opened) in self.opened {
            // After the batch: a failed audit write is logged, the mail is out.
            if let Err(e) = self.app.sender.record_batch(&campaign, opened).await {
                tracing::error!(error = %e, campaign_id = %campaign, "send batch not recorded in the audit log");
            }
            if let Err(e) = self.app.lifecycle.advance_after_batch(&campaign).await {
                tracing::warn!(error = %e, campaign_id = %campaign, "could not advance campaign");
            }
        }
    }
}

/// `ses-events`: provider events, SNS-wrapped or EventBridge-shaped; the
/// batch's counts written once after it.
pub struct EventJobs<'a> {
    pub app: &'a App,
    counts: BatchCounts,
}

impl<'a> EventJobs<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app, counts: BatchCounts::default() }
    }
}

#[async_trait]
impl JobHandler for EventJobs<'_> {
    type Job = MailEvent;
    const QUEUE: &'static str = "ses-events";

    fn app(&self) -> &App {
        self.app
    }

    fn parse(&self, body: &str) -> Result<MailEvent, String> {
        MailEvent::parse(body).map_err(|e| e.to_string())
    }

    fn campaign(job: &MailEvent) -> Option<CampaignId> {
        job.tagged.map(|(campaign, _)| campaign)
    }

    async fn handle(&mut self, event: &MailEvent) -> Handled {
        match self.app.events.process_counting(event, &mut self.counts).await {
            Ok(outcome) => {
                // Debug: one line per event is most of what the events
                // function logs (docs/benchmarks.md); an unmatched event warns.
                tracing::debug!(?outcome, kind = ?event.kind, provider_message_id = event.provider_message_id.as_str(),
                    "mail event");
                Handled::done()
            }
            Err(e) => Handled::from_error(&e),
        }
    }

    async fn finish(mut self) {
        // After the batch, as a repeat would: each event is marked counted
        // before it is counted, so a failure here loses counts, never doubles them.
        if let Err(e) = self.app.events.record_counts(&mut self.counts).await {
            tracing::warn!(error = %e, "a batch's event counts were not written");
        }
    }
}
