//! Fault injection between the AWS SDK and moto: an HTTP client that wraps
//! the SDK's own and, per plan, answers for the service (SES throttling,
//! DynamoDB and KMS 5xx) without reaching moto, loses SES's answer after
//! moto accepted the message, or hangs after acceptance the way a sender
//! invocation that dies mid-call does. Or, for a set time, throttles half of
//! all SES calls (a storm). Or refuses every SES send until told to stop
//! (an outage: the account's sending quota is used up).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    SesSend,
    DynamoDb,
    Kms,
    Other,
}

fn classify(request: &HttpRequest) -> Call {
    let target = request.headers().get("x-amz-target").unwrap_or_default();
    if target.starts_with("DynamoDB_") {
        Call::DynamoDb
    } else if target.starts_with("TrentService.") {
        Call::Kms
    } else if request.uri().contains("/v2/email/outbound-emails") {
        Call::SesSend
    } else {
        Call::Other
    }
}

/// What to break, counted per service from the moment the plan is armed.
#[derive(Debug, Default)]
pub struct FaultPlan {
    pub(super) armed: AtomicBool,
    /// SES sends answer 429 in bursts: the first `ses_burst` of every `ses_period` calls.
    pub ses_period: usize,
    pub ses_burst: usize,
    /// Only the first this many SES calls are subject to throttling.
    pub ses_throttle_calls: usize,
    /// Every `dynamodb_period`-th DynamoDB call starts a burst of
    /// `dynamodb_burst` consecutive 500s (longer than the SDK's retries).
    pub dynamodb_period: usize,
    pub dynamodb_burst: usize,
    /// The first this many KMS calls answer 500.
    pub kms_failures: usize,
    /// The SES call with this number reaches moto, and its answer is lost.
    pub lose_answer_of_ses_call: Option<usize>,
    /// The SES call with this number reaches moto, and the caller never hears back.
    pub hang_after_ses_call: Option<usize>,

    pub(super) ses_calls: AtomicUsize,
    pub(super) dynamodb_calls: AtomicUsize,
    pub(super) dynamodb_burst_left: AtomicUsize,
    pub(super) kms_calls: AtomicUsize,
    /// Until then, every other SES call answers 429 (a throttling storm).
    pub(super) storm_until: Mutex<Option<Instant>>,
    pub(super) storm_calls: AtomicUsize,
    /// While set, every SES send answers 429 (armed or not).
    pub(super) ses_outage: AtomicBool,
    pub outage_refusals: AtomicUsize,
    pub injected_throttles: AtomicUsize,
    pub injected_dynamodb_errors: AtomicUsize,
    pub injected_kms_errors: AtomicUsize,
    pub lost_answers: AtomicUsize,
    pub hangs: AtomicUsize,
}

enum Action {
    Pass,
    Answer(Box<HttpResponse>),
    PassThenLose,
    PassThenHang,
}

fn json_error(status: u16, headers: &[(&'static str, &str)], body: &str) -> HttpResponse {
    let mut response = HttpResponse::new(status.try_into().expect("status"), SdkBody::from(body.to_owned()));
    for (name, value) in headers {
        response.headers_mut().insert(*name, value.to_string());
    }
    response
}

/// What SES answers once the account's 24-hour sending quota is used up.
fn quota_exceeded() -> HttpResponse {
    json_error(
        429,
        &[("content-type", "application/json"), ("x-amzn-errortype", "LimitExceededException")],
        r#"{"message":"Daily message quota exceeded."}"#,
    )
}

fn throttled() -> HttpResponse {
    json_error(
        429,
        &[("content-type", "application/json"), ("x-amzn-errortype", "TooManyRequestsException")],
        r#"{"message":"Maximum sending rate exceeded."}"#,
    )
}

impl FaultPlan {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Half of all SES calls answer 429 for `length`, from now.
    pub fn start_storm(&self, length: Duration) {
        *self.storm_until.lock().unwrap() = Some(Instant::now() + length);
    }

    /// From now on every SES send is refused, until `end_ses_outage`.
    pub fn start_ses_outage(&self) {
        self.ses_outage.store(true, Ordering::SeqCst);
    }

    pub fn end_ses_outage(&self) {
        self.ses_outage.store(false, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    pub fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn decide(&self, call: Call) -> Action {
        if call == Call::SesSend && self.ses_outage.load(Ordering::SeqCst) {
            self.outage_refusals.fetch_add(1, Ordering::SeqCst);
            return Action::Answer(Box::new(quota_exceeded()));
        }
        if !self.armed.load(Ordering::SeqCst) {
            return Action::Pass;
        }
        match call {
            Call::SesSend => {
                let n = self.ses_calls.fetch_add(1, Ordering::SeqCst);
                let storming = self.storm_until.lock().unwrap().is_some_and(|until| Instant::now() < until);
                if storming && self.storm_calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                    self.injected_throttles.fetch_add(1, Ordering::SeqCst);
                    return Action::Answer(Box::new(throttled()));
                }
                if n < self.ses_throttle_calls && self.ses_period > 0 && n % self.ses_period < self.ses_burst {
                    self.injected_throttles.fetch_add(1, Ordering::SeqCst);
                    return Action::Answer(Box::new(throttled()));
                }
                if Some(n) == self.lose_answer_of_ses_call {
                    self.lost_answers.fetch_add(1, Ordering::SeqCst);
                    return Action::PassThenLose;
                }
                if Some(n) == self.hang_after_ses_call {
                    self.hangs.fetch_add(1, Ordering::SeqCst);
                    return Action::PassThenHang;
                }
                Action::Pass
            }
            Call::DynamoDb => {
                let n = self.dynamodb_calls.fetch_add(1, Ordering::SeqCst);
                let starts = self.dynamodb_period > 0 && n > 0 && n.is_multiple_of(self.dynamodb_period);
                if starts {
                    self.dynamodb_burst_left.store(self.dynamodb_burst, Ordering::SeqCst);
                }
                let in_burst =
                    self.dynamodb_burst_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1));
                if in_burst.is_ok() {
                    self.injected_dynamodb_errors.fetch_add(1, Ordering::SeqCst);
                    return Action::Answer(Box::new(json_error(
                        500,
                        &[("content-type", "application/x-amz-json-1.0")],
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#,
                    )));
                }
                Action::Pass
            }
            Call::Kms => {
                let n = self.kms_calls.fetch_add(1, Ordering::SeqCst);
                if n < self.kms_failures {
                    self.injected_kms_errors.fetch_add(1, Ordering::SeqCst);
                    return Action::Answer(Box::new(json_error(
                        500,
                        &[("content-type", "application/x-amz-json-1.1")],
                        r#"{"__type":"KMSInternalException","message":"injected"}"#,
                    )));
                }
                Action::Pass
            }
            Call::Other => Action::Pass,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FaultyClient {
    inner: SharedHttpClient,
    plan: Arc<FaultPlan>,
}

impl FaultyClient {
    pub fn new(plan: Arc<FaultPlan>) -> Self {
        Self { inner: aws_smithy_http_client::Builder::new().build_http(), plan }
    }
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<FaultPlan>,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.plan.decide(classify(&request)) {
            Action::Pass => self.inner.call(request),
            Action::Answer(response) => HttpConnectorFuture::ready(Ok(*response)),
            Action::PassThenLose => {
                let accepted = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    accepted.await?;
                    Err(ConnectorError::timeout("injected: the answer was lost after acceptance".into()))
                })
            }
            Action::PassThenHang => {
                let accepted = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    accepted.await?;
                    std::future::pending::<Result<HttpResponse, ConnectorError>>().await
                })
            }
        }
    }
}
