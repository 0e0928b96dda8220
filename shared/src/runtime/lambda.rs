//! Lambda glue: SQS batch handlers on the one message driver that report
//! only the failed messages (`ReportBatchItemFailures`), back-off through
//! the visibility timeout,
//! and the HTTP adapter that hands API Gateway's source IP to the routers.

use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::Service;

pub use {aws_lambda_events, lambda_http, lambda_runtime};

use super::aws::{AwsSettings, AwsSettingsError};
use super::deferred::Deferred;
use super::driver::{self, Delivery, EventJobs, FanoutDeadline, FanoutJobs, JobHandler, SendJobs};
use crate::app::App;
use crate::domain::Decision;
use crate::http::extract::ClientIp;
use crate::ports::Queue;

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

fn delivery(m: &SqsMessage) -> Delivery<'_> {
    Delivery {
        message_id: m.message_id.as_deref().unwrap_or(""),
        body: m.body.as_deref().unwrap_or(""),
        receive_count: receive_count(m),
    }
}

/// Runs an SQS batch through the one message driver and maps each decision
/// onto Lambda's queue: ack is left out of the failures (Lambda deletes
/// it), retry is a failure whose visibility is changed to the back-off,
/// dead-letter is a failure left as it is.
async fn drive<H: JobHandler>(handler: H, queue: &dyn Queue, event: &SqsEvent) -> SqsBatchResponse {
    let deliveries: Vec<Delivery<'_>> = event.records.iter().map(delivery).collect();
    let decisions = driver::drive_batch(handler, deliveries, || false).await;
    let mut failures = BatchFailures::default();
    for (index, decision) in decisions {
        let message = &event.records[index];
        match decision {
            Decision::Ack => {}
            Decision::DeadLetter => failures.fail(message),
            Decision::Retry { after } => {
                failures.fail(message);
                if let Some(receipt) = &message.receipt_handle
                    && let Err(e) = queue.change_visibility(receipt, after).await
                {
                    // It reappears after the visibility timeout instead.
                    tracing::warn!(error = %e, message_id = message.message_id.as_deref().unwrap_or(""),
                        "could not set back-off");
                }
            }
        }
    }
    failures.into_response()
}

/// `fanout`: one shard per message; continues itself before `deadline`.
#[tracing::instrument(skip_all, fields(handler = "fanout", messages = event.records.len()))]
pub async fn handle_fanout(app: &App, queue: &dyn Queue, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    drive(FanoutJobs { app, deadline: FanoutDeadline::At(deadline) }, queue, &event).await
}

/// The input the stack's schedule gives the `fanout` function every minute
/// (`JourneyTimer` in the template): sweep the journeys' due index.
pub const JOURNEY_SWEEP_INPUT: &str = "journey-sweep";

/// At most this many pages of due enrolments per tick; the deadline usually
/// ends a tick first, and the next tick a minute later takes the rest.
const JOURNEY_SWEEP_BATCHES: u32 = 1_000;

/// Why a `fanout` invocation was not handled (Lambda logs it; a scheduled
/// tick that fails is simply done again by the next one).
#[derive(Debug, thiserror::Error)]
pub enum FanoutPayloadError {
    #[error("the journey sweep failed for now; the next tick sweeps again")]
    Sweep(#[source] crate::app::AppError),
    #[error("the payload is neither SQS records nor the journey timer's input")]
    UnknownShape,
}

/// `fanout` as invoked: SQS records of shard jobs (answered with the batch
/// item failures), or the journey timer's scheduled input
/// (`{"carepost": "journey-sweep"}`), which moves every journey enrolment
/// now due, then moves the segment and date entries' daily passes on, until
/// `deadline`, and answers what it did, in counts (the entry scan's under
/// `entries`).
#[tracing::instrument(skip_all, fields(handler = "fanout"))]
pub async fn handle_fanout_payload(
    app: &App,
    queue: &dyn Queue,
    payload: serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, FanoutPayloadError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload).map_err(|_| FanoutPayloadError::UnknownShape)?;
        let response = handle_fanout(app, queue, event, deadline).await;
        return serde_json::to_value(response).map_err(|_| FanoutPayloadError::UnknownShape);
    }
    if payload.get("carepost").and_then(|v| v.as_str()) != Some(JOURNEY_SWEEP_INPUT) {
        return Err(FanoutPayloadError::UnknownShape);
    }
    let more_time = || Instant::now() < deadline;
    let sweep = || app.journey_runner.drain_while(JOURNEY_SWEEP_BATCHES, more_time);
    let mut report = sweep().await.map_err(FanoutPayloadError::Sweep)?;
    // What time is left reads the contacts of segment and date entries;
    // whoever entered due now takes its first step in this tick.
    let entries = app.journey_entries.scan_while(more_time).await.map_err(FanoutPayloadError::Sweep)?;
    if entries.journeys > 0 {
        entries.log("journey entry scan");
    }
    if entries.entered > 0 && more_time() {
        report.add(&sweep().await.map_err(FanoutPayloadError::Sweep)?);
    }
    report.log("journey sweep");
    let mut answer = serde_json::to_value(&report).map_err(|_| FanoutPayloadError::UnknownShape)?;
    answer["entries"] = serde_json::to_value(&entries).map_err(|_| FanoutPayloadError::UnknownShape)?;
    Ok(answer)
}

/// `sender`: each job exactly once; throttled and transient failures back off.
#[tracing::instrument(skip_all, fields(handler = "sender", messages = event.records.len()))]
pub async fn handle_send(app: &App, queue: &dyn Queue, event: SqsEvent) -> SqsBatchResponse {
    drive(SendJobs::new(app), queue, &event).await
}

/// `ses-events`: provider events, SNS-wrapped or EventBridge-shaped, in SQS
/// records; transient failures back off on `queue` like every other job.
#[tracing::instrument(skip_all, fields(handler = "ses-events", messages = event.records.len()))]
pub async fn handle_events(app: &App, queue: &dyn Queue, event: SqsEvent) -> SqsBatchResponse {
    drive(EventJobs::new(app), queue, &event).await
}

/// Why a directly delivered event was not handled: the invocation fails, so
/// Lambda's asynchronous retries and then the function's failure
/// destination take it (EventBridge invokes asynchronously).
#[derive(Debug, thiserror::Error)]
pub enum DirectEventError {
    /// A transient failure (a store unavailable …): retried by Lambda.
    #[error("provider event {0} failed for now; Lambda retries it")]
    Retry(String),
    /// Not an event we understand, or a permanent failure.
    #[error("provider event {0} cannot be processed")]
    Rejected(String),
    /// Neither SQS records nor an EventBridge event.
    #[error("the payload is neither SQS records nor an EventBridge event")]
    UnknownShape,
}

/// `ses-events` as invoked: SQS records (SNS-wrapped or EventBridge-shaped
/// bodies), answered with the batch item failures, or one EventBridge event
/// delivered straight to the function (`detail-type` / `detail` holding the
/// SES event), run through the same driver and answered with `{}`, or an
/// error for Lambda to retry.
#[tracing::instrument(skip_all, fields(handler = "ses-events"))]
pub async fn handle_events_payload(
    app: &App,
    queue: &dyn Queue,
    payload: serde_json::Value,
) -> Result<serde_json::Value, DirectEventError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload).map_err(|_| DirectEventError::UnknownShape)?;
        let response = handle_events(app, queue, event).await;
        return serde_json::to_value(response).map_err(|_| DirectEventError::UnknownShape);
    }
    if payload.get("detail").is_none() || payload.get("detail-type").is_none() {
        return Err(DirectEventError::UnknownShape);
    }
    let id = payload.get("id").and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let body = payload.to_string();
    let delivery = Delivery { message_id: &id, body: &body, receive_count: 1 };
    let decisions = driver::drive_batch(EventJobs::new(app), [delivery], || false).await;
    match decisions.first().map(|(_, d)| *d) {
        Some(Decision::Ack) => Ok(serde_json::json!({})),
        Some(Decision::Retry { .. }) | None => Err(DirectEventError::Retry(id)),
        Some(Decision::DeadLetter) => Err(DirectEventError::Rejected(id)),
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

/// A function's settings, or the process ends with the reason logged: a
/// missing or invalid variable is named, and Lambda reports the exit as an
/// init failure (the error's `Debug` would otherwise be what is printed).
pub fn settings_or_exit(settings: Result<AwsSettings, AwsSettingsError>) -> AwsSettings {
    settings.unwrap_or_else(|e| {
        tracing::error!(error = %e, "init failed");
        std::process::exit(1)
    })
}

/// What an invocation runs on, once built ([`Deferred`]). When it cannot be
/// built (a store unreachable: the root secret could not be read or
/// decrypted) the reason is logged and the invocation fails; the next one
/// builds again.
pub async fn ready<T>(deferred: &Deferred<T, AwsSettingsError>) -> Result<&T, AwsSettingsError>
where
    T: Send + Sync + 'static,
{
    deferred.get().await.inspect_err(|e| {
        tracing::error!(error = %e, "the application could not start: this invocation is refused and the next one tries again")
    })
}

/// [`http_service`] for a router built in the background from init on:
/// requests wait for it, and are answered 503 (the one error shape, no
/// detail) while it cannot be built.
pub fn deferred_http_service(router: Deferred<Router, AwsSettingsError>) -> Router {
    Router::new().fallback(move |request: Request| {
        let router = router.clone();
        async move {
            match ready(&router).await {
                Ok(router) => router.clone().call(request).await.into_response(),
                Err(_) => crate::http::error::ApiError::unavailable().into_response(),
            }
        }
    })
}
