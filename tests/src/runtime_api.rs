//! A stand-in for Lambda's Runtime API (`AWS_LAMBDA_RUNTIME_API`): hands a
//! function process the events it is given, one per `invocation/next`, and
//! records when each poll arrived and each answer came back, so a benchmark
//! can tell a function's init (start to first poll), its first invocation
//! and its warm ones apart, and a test can read what it answered.
//!
//! Only what `lambda_runtime` speaks: `GET /2018-06-01/runtime/invocation/next`,
//! `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error` and
//! `POST …/init/error`. Once the events run out a poll waits forever, as
//! Lambda's does between invocations.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

/// One invocation's answer: its event handed over at `delivered`, answered at `answered`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    pub delivered: Instant,
    pub answered: Instant,
    /// `…/error` rather than `…/response`.
    pub failed: bool,
    pub body: Value,
}

impl Answer {
    pub fn took(&self) -> Duration {
        self.answered.duration_since(self.delivered)
    }
}

#[derive(Default)]
struct Record {
    events: VecDeque<Value>,
    first_poll: Option<Instant>,
    delivered: Vec<(String, Instant)>,
    answers: Vec<Answer>,
    init_error: Option<Value>,
}

struct Shared {
    record: Mutex<Record>,
    changed: Notify,
}

/// The stub, listening on a loopback port until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Listens on a free loopback port with `events` to hand out in order.
    pub async fn start(events: Vec<Value>) -> RuntimeApi {
        let shared = Arc::new(Shared {
            record: Mutex::new(Record { events: events.into(), ..Record::default() }),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { address, shared, server }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// When the process first asked for an event (its init ended), if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.lock().first_poll
    }

    /// What the process reported through `init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.lock().init_error.clone()
    }

    /// Waits until `count` invocations are answered, or `timeout`; returns those answered.
    pub async fn answers(&self, count: usize, timeout: Duration) -> Vec<Answer> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            {
                let record = self.lock();
                if record.answers.len() >= count || tokio::time::Instant::now() >= until {
                    return record.answers.clone();
                }
            }
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    /// Waits for the first poll, or `timeout`.
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(at) = self.first_poll() {
                return Some(at);
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return self.first_poll();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.shared.record.lock().expect("the stub's record")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    let handed = {
        let mut record = shared.record.lock().expect("record");
        record.first_poll.get_or_insert(now);
        let event = record.events.pop_front();
        event.map(|event| {
            let id = format!("req-{}", record.delivered.len() + 1);
            record.delivered.push((id.clone(), Instant::now()));
            (id, event)
        })
    };
    shared.changed.notify_waiters();
    let Some((id, event)) = handed else {
        // No more events: the process waits here, as it would between invocations.
        return std::future::pending().await;
    };
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).expect("a header value");
    headers.insert("lambda-runtime-aws-request-id", header(&id));
    headers.insert("lambda-runtime-deadline-ms", header(&deadline_ms.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:carepost-bench"),
    );
    headers.insert("lambda-runtime-trace-id", header("Root=1-00000000-000000000000000000000000;Sampled=0"));
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn answered(shared: &Shared, id: String, body: Bytes, failed: bool) -> StatusCode {
    let answered = Instant::now();
    let body = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    {
        let mut record = shared.record.lock().expect("record");
        let delivered = record.delivered.iter().find(|(d, _)| *d == id).map(|(_, at)| *at).unwrap_or(answered);
        record.answers.push(Answer { request_id: id, delivered, answered, failed, body });
    }
    shared.changed.notify_waiters();
    StatusCode::ACCEPTED
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&shared, id, body, false)
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&shared, id, body, true)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.record.lock().expect("record").init_error = Some(body);
    shared.changed.notify_waiters();
    StatusCode::ACCEPTED
}

/// The environment Lambda gives every function (besides the template's variables).
pub fn lambda_environment(runtime_api: &str, function_name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/03/[$LATEST]bench"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/carepost-bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The template's variables for a function of the stack `settings` names,
/// with the knobs a function requires (`PUBLIC_BASE_URL`, the sender).
pub fn stack_environment(settings: &carepost::runtime::aws::AwsSettings) -> Vec<(String, String)> {
    let t = &settings.tables;
    let optional = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        ("CONTACTS_TABLE", t.contacts.clone()),
        ("CONSENT_TABLE", t.consent.clone()),
        ("CAMPAIGNS_TABLE", t.campaigns.clone()),
        ("SEND_LEDGER_TABLE", t.send_ledger.clone()),
        ("SUPPRESSION_TABLE", t.suppression.clone()),
        ("AUDIT_LOG_TABLE", t.audit_log.clone()),
        ("ACTIVITY_TABLE", t.activity.clone()),
        ("JOURNEYS_TABLE", t.journeys.clone()),
        ("FANOUT_QUEUE_URL", settings.fanout_queue_url.clone()),
        ("SEND_QUEUE_URL", settings.send_queue_url.clone()),
        ("SEND_DLQ_URL", optional(&settings.send_dlq_url)),
        ("EVENTS_QUEUE_URL", optional(&settings.events_queue_url)),
        ("KMS_KEY_ID", settings.kms_key_id.clone()),
        ("PUBLIC_BASE_URL", "https://mail.clinic.example".to_owned()),
        ("SENDER_NAME", "Clinic".to_owned()),
        ("SENDER_ADDRESS", "news@clinic.example".to_owned()),
        ("ALLOWED_ORIGINS", "https://www.clinic.example".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Where the function binaries are: beside this package's `hello_lambda`
/// (one target directory and profile; `cargo build --workspace` builds them).
pub fn function_binary(hello_lambda: &str, function: &str) -> std::path::PathBuf {
    let binary = std::path::Path::new(hello_lambda).with_file_name(function);
    assert!(
        binary.exists(),
        "{} is not built: `cargo build --workspace` (same profile) builds the functions",
        binary.display()
    );
    binary
}

/// Starts `binary` as Lambda would: a clean environment holding Lambda's
/// variables for `api`, the AWS client variables of this process
/// (credentials, region, `AWS_ENDPOINT_URL`), then `vars`; its output
/// captured.
pub fn spawn_function(binary: &std::path::Path, api: &RuntimeApi, vars: &[(String, String)]) -> tokio::process::Child {
    let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let inherited = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_") || k == "PATH" || k == "HOME");
    tokio::process::Command::new(binary)
        .env_clear()
        .envs(inherited)
        .envs(lambda_environment(&api.address(), &name))
        .envs(vars.iter().cloned())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()))
}

/// An API Gateway HTTP API (payload 2.0) request for `method` `path`, as
/// the stack's HTTP API sends it.
pub fn http_api_event(method: &str, path: &str) -> Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "mail.clinic.example", "accept": "text/html,application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "mail.clinic.example",
            "domainPrefix": "mail",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10", "userAgent": "bench"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1796212800000u64
        },
        "isBase64Encoded": false
    })
}

/// An SQS event with no records: what a queue function's init and runtime
/// cost without any work of its own.
pub fn empty_sqs_event() -> Value {
    serde_json::json!({"Records": []})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_are_handed_out_in_order_and_answers_matched_to_them() {
        let api = RuntimeApi::start(vec![serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]).await;
        let client = reqwest::Client::new();
        let base = format!("http://{}/2018-06-01/runtime", api.address());

        let first = client.get(format!("{base}/invocation/next")).send().await.unwrap();
        let id = first.headers()["lambda-runtime-aws-request-id"].to_str().unwrap().to_owned();
        let event: Value = first.json().await.unwrap();
        client.post(format!("{base}/invocation/{id}/response")).body(r#"{"ok":true}"#).send().await.unwrap();
        let second = client.get(format!("{base}/invocation/next")).send().await.unwrap();
        let id2 = second.headers()["lambda-runtime-aws-request-id"].to_str().unwrap().to_owned();
        client.post(format!("{base}/invocation/{id2}/error")).body("{}").send().await.unwrap();
        let answers = api.answers(2, Duration::from_secs(5)).await;

        assert_eq!(event, serde_json::json!({"n": 1}));
        assert!(api.first_poll().is_some());
        assert_eq!(answers.len(), 2);
        assert_eq!((answers[0].request_id.as_str(), answers[0].failed), (id.as_str(), false));
        assert_eq!(answers[0].body, serde_json::json!({"ok": true}));
        assert!(answers[1].failed, "an error answer is told apart");
    }

    #[tokio::test]
    async fn a_poll_after_the_last_event_waits() {
        let api = RuntimeApi::start(vec![]).await;
        let url = format!("http://{}/2018-06-01/runtime/invocation/next", api.address());

        let poll = tokio::time::timeout(Duration::from_millis(300), reqwest::get(url)).await;

        assert!(poll.is_err(), "no event, no answer");
        assert!(api.first_poll().is_some(), "the poll is recorded: init is over");
    }
}
