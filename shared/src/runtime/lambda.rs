//! Lambda glue: SQS batch handlers that report only the failed messages
//! (`ReportBatchItemFailures`), back-off through the visibility timeout,
//! and the HTTP adapter that hands API Gateway's source IP to the routers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument;

pub use {aws_lambda_events, lambda_http, lambda_runtime};

use super::workers::backoff;
use crate::app::App;
use crate::app::send::SendError;
use crate::domain::{FanoutMessage, MailEvent, SendJob};
use crate::error::Classify;
use crate::http::extract::ClientIp;
use crate::ports::{Metric, Queue};

/// JSON logs (the template sets the Lambda JSON log format); IDs and counts
/// only. Each line carries its spans (`spans`: the handler's and the
/// message's, with their ID fields).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// When a fan-out invocation should hand its shard on: three quarters of the
/// time Lambda gave it, leaving room to save the checkpoint and re-enqueue.
pub fn fanout_deadline(lambda_deadline: std::time::SystemTime) -> Instant {
    let remaining = lambda_deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    Instant::now() + remaining * 3 / 4
}

/// The item failures Lambda should redeliver.
#[derive(Debug, Default)]
pub struct BatchFailures(Vec<String>);

impl BatchFailures {
    fn fail(&mut self, message: &SqsMessage) {
        if let Some(id) = &message.message_id {
            self.0.push(id.clone());
        }
    }

    pub fn ids(&self) -> &[String] {
        &self.0
    }

    pub fn into_response(self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .0
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }
}

fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Reports the message failed and delays its next delivery with jitter.
async fn retry_later(queue: &dyn Queue, failures: &mut BatchFailures, message: &SqsMessage, base: Duration) {
    failures.fail(message);
    if let Some(receipt) = &message.receipt_handle
        && let Err(e) = queue.change_visibility(receipt, backoff(receive_count(message), base)).await
    {
        tracing::warn!(error = %e, "could not set back-off");
    }
}

fn poison(message: &SqsMessage, error: &dyn std::fmt::Display) {
    tracing::error!(error = %error, message_id = message.message_id.as_deref().unwrap_or(""),
        receive_count = receive_count(message), "message cannot be processed; it will reach the dead-letter queue");
}

/// A span per SQS message: its ID and receive count, never its body.
fn message_span(handler: &'static str, message: &SqsMessage) -> tracing::Span {
    tracing::info_span!(
        "message",
        handler,
        message_id = message.message_id.as_deref().unwrap_or(""),
        receive_count = receive_count(message)
    )
}

/// `fanout`: one shard per message; continues itself before `deadline`.
#[tracing::instrument(skip_all, fields(handler = "fanout", messages = event.records.len()))]
pub async fn handle_fanout(app: &App, queue: &dyn Queue, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut failures = BatchFailures::default();
    for message in &event.records {
        fanout_message(app, queue, message, deadline, &mut failures).instrument(message_span("fanout", message)).await;
    }
    failures.into_response()
}

async fn fanout_message(
    app: &App,
    queue: &dyn Queue,
    message: &SqsMessage,
    deadline: Instant,
    failures: &mut BatchFailures,
) {
    let job = match FanoutMessage::parse(message.body.as_deref().unwrap_or("")) {
        Ok(job) => job,
        Err(e) => {
            poison(message, &e);
            return failures.fail(message);
        }
    };
    match app.fanout.process_message(&job, Some(deadline)).await {
        Ok(outcome) => tracing::info!(campaign_id = %job.campaign_id(), ?outcome, "fan-out message"),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, campaign_id = %job.campaign_id(), "fan-out message will retry");
            retry_later(queue, failures, message, Duration::from_secs(1)).await;
        }
        Err(e) => {
            poison(message, &e);
            failures.fail(message);
        }
    }
}

/// `sender`: each job exactly once; throttled and transient failures back off.
#[tracing::instrument(skip_all, fields(handler = "sender", messages = event.records.len()))]
pub async fn handle_send(app: &App, queue: &dyn Queue, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = BatchFailures::default();
    let mut campaigns: HashMap<crate::domain::CampaignId, usize> = HashMap::new();
    for message in &event.records {
        send_message(app, queue, message, &mut failures, &mut campaigns)
            .instrument(message_span("sender", message))
            .await;
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
    failures.into_response()
}

async fn send_message(
    app: &App,
    queue: &dyn Queue,
    message: &SqsMessage,
    failures: &mut BatchFailures,
    campaigns: &mut HashMap<crate::domain::CampaignId, usize>,
) {
    let job = match SendJob::parse(message.body.as_deref().unwrap_or("")) {
        Ok(job) => job,
        Err(e) => {
            poison(message, &e);
            return failures.fail(message);
        }
    };
    let opened = campaigns.entry(job.campaign_id).or_insert(0usize);
    let failed = match app.sender.process(&job).await {
        Ok(outcome) => {
            tracing::debug!(campaign_id = %job.campaign_id, contact_id = %job.contact_id, ?outcome, "send job");
            *opened += usize::from(outcome.opened_contact());
            false
        }
        Err(SendError::Permanent(e)) => {
            poison(message, &e);
            failures.fail(message);
            true
        }
        Err(SendError::Busy { retry_after }) => {
            // Wait out the holder's lease in one step: a busy job must not
            // use up its receives and land in the dead-letter queue.
            failures.fail(message);
            if let Some(receipt) = &message.receipt_handle
                && let Err(e) = queue.change_visibility(receipt, retry_after).await
            {
                tracing::warn!(error = %e, "could not delay a busy job");
            }
            true
        }
        Err(e) => {
            let base = if matches!(e, SendError::Throttled) { Duration::from_secs(2) } else { Duration::from_secs(1) };
            tracing::warn!(error = %e, campaign_id = %job.campaign_id, "send job will retry");
            retry_later(queue, failures, message, base).await;
            true
        }
    };
    // SQS moves a message to the dead-letter queue when this receive was its last.
    if failed && receive_count(message) >= app.settings.throughput.max_receive_count {
        app.ports.metrics.count(Some(&job.campaign_id), Metric::DeadLettered, 1);
    }
}

/// `ses-events`: provider events, SNS-wrapped or EventBridge-shaped.
#[tracing::instrument(skip_all, fields(handler = "ses-events", messages = event.records.len()))]
pub async fn handle_events(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = BatchFailures::default();
    for message in &event.records {
        events_message(app, message, &mut failures).instrument(message_span("ses-events", message)).await;
    }
    failures.into_response()
}

async fn events_message(app: &App, message: &SqsMessage, failures: &mut BatchFailures) {
    let parsed = match MailEvent::parse(message.body.as_deref().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err(e) => {
            poison(message, &e);
            return failures.fail(message);
        }
    };
    match app.events.process(&parsed).await {
        Ok(outcome) => tracing::info!(?outcome, kind = ?parsed.kind, "mail event"),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "mail event will retry");
            failures.fail(message);
        }
        Err(e) => {
            poison(message, &e);
            failures.fail(message);
        }
    }
}

/// Puts API Gateway's source IP where the routers look for it.
async fn client_ip_from_context(mut request: Request, next: Next) -> Response {
    let ip = match request.extensions().get::<lambda_http::request::RequestContext>() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
        }
        _ => None,
    };
    request.extensions_mut().insert(ClientIp(ip));
    let principal = match request.extensions().get::<lambda_http::request::RequestContext>() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.iam.as_ref()).and_then(|iam| iam.user_arn.clone())
        }
        _ => None,
    };
    if let Some(arn) = principal {
        request.extensions_mut().insert(crate::http::extract::Actor(arn));
    }
    next.run(request).await
}

/// A router ready for `lambda_http::run`: JSON 404 fallback, client IP from the event.
pub fn http_service(router: Router) -> Router {
    router.fallback(crate::http::not_found).layer(middleware::from_fn(client_ip_from_context))
}
