//! The function binaries started as Lambda starts them, against a stand-in
//! for the Runtime API: init ends before the stores are reached, an
//! invocation waits for the application, and when the stores cannot be
//! reached (or a variable is missing) the operator is told why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use carepost_tests::runtime_api::{RuntimeApi, empty_sqs_event, function_binary, spawn_function, stack_environment};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::harness::moto_stack;

fn binary(function: &str) -> PathBuf {
    function_binary(env!("CARGO_BIN_EXE_hello_lambda"), function)
}

fn sample_event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("sample event")).expect("sample JSON")
}

/// Everything the process wrote, once it has been stopped (or has exited).
async fn output(mut child: tokio::process::Child) -> String {
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text).await;
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text).await;
    }
    text
}

fn with(vars: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    let mut vars: Vec<_> = vars.into_iter().filter(|(k, _)| k != name).collect();
    vars.push((name.to_owned(), value.to_owned()));
    vars
}

#[tokio::test]
async fn the_consent_function_takes_the_sample_submission_and_the_sender_an_empty_batch_as_processes() {
    let stack = moto_stack().await;
    let vars = stack_environment(&stack.settings);
    let consent_api = RuntimeApi::start(vec![sample_event("consent/post-json.json")]).await;
    let sender_api = RuntimeApi::start(vec![empty_sqs_event()]).await;

    let consent = spawn_function(&binary("consent"), &consent_api, &vars);
    let sender = spawn_function(&binary("sender"), &sender_api, &vars);
    let consent_answers = consent_api.answers(1, Duration::from_secs(30)).await;
    let sender_answers = sender_api.answers(1, Duration::from_secs(30)).await;
    let logs = output(consent).await + &output(sender).await;

    assert_eq!(consent_answers.len(), 1, "the consent function answered: {logs}");
    assert_eq!(consent_answers[0].body["statusCode"], 202, "accepted: {}", consent_answers[0].body);
    assert_eq!(sender_answers.len(), 1, "the sender answered: {logs}");
    assert_eq!(sender_answers[0].body, serde_json::json!({"batchItemFailures": []}));
    assert!(!logs.contains("ada.lovelace"), "no address in the logs");
}

#[tokio::test]
async fn unreachable_stores_leave_init_short_and_each_request_answered_503_with_the_reason_logged() {
    let stack = moto_stack().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let vars = stack_environment(&stack.settings);
    let vars = with(with(vars, "AWS_ENDPOINT_URL", &format!("http://{closed}")), "AWS_MAX_ATTEMPTS", "1");
    let api =
        RuntimeApi::start(vec![sample_event("consent/post-json.json"), sample_event("consent/post-json.json")]).await;

    let consent = spawn_function(&binary("consent"), &api, &vars);
    let polled = api.wait_first_poll(Duration::from_secs(30)).await;
    let answers = api.answers(2, Duration::from_secs(30)).await;
    let logs = output(consent).await;

    assert!(polled.is_some(), "init finished without the stores: {logs}");
    assert_eq!(answers.len(), 2, "both requests were answered: {logs}");
    for answer in &answers {
        assert_eq!(answer.body["statusCode"], 503, "{}", answer.body);
        let body: Value = serde_json::from_str(answer.body["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        assert_eq!(body["error"], "unavailable", "the one error shape, no detail: {body}");
    }
    assert_eq!(
        logs.matches("could not load the root secret").count(),
        2,
        "each request tried again and logged why: {logs}"
    );
    assert!(!logs.contains("ada.lovelace"), "no address in the logs");
}

#[tokio::test]
async fn a_missing_variable_ends_init_and_is_named() {
    let stack = moto_stack().await;
    let vars: Vec<_> = stack_environment(&stack.settings).into_iter().filter(|(k, _)| k != "KMS_KEY_ID").collect();
    let api = RuntimeApi::start(vec![empty_sqs_event()]).await;

    let mut sender = spawn_function(&binary("sender"), &api, &vars);
    let status = tokio::time::timeout(Duration::from_secs(30), sender.wait()).await.expect("the process ends");
    let logs = output(sender).await;

    assert_eq!(status.unwrap().code(), Some(1), "{logs}");
    assert!(logs.contains("environment variable KMS_KEY_ID is required"), "{logs}");
    assert!(api.first_poll().is_none(), "it never asked for an event");
}
