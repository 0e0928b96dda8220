//! Each function's cold start beside a `lambda_http` hello-world's, in the
//! same run.
//!
//! `make bench-init` (moto started by `scripts/with-moto.sh`; the
//! functions and `hello_lambda` built with one profile, release by
//! default). A stack is created on moto as the e2e harness does (which
//! also creates the root secret, so each function loads it as a deployed
//! one does); then each binary is started as Lambda starts it, against a
//! stand-in for the Runtime API (`carepost_tests::runtime_api`) holding a
//! request already waiting, as on a cold start: **init** is process start
//! to the first `invocation/next`, **first** the first invocation (event
//! handed over to answer), **warm** the median of the next ones.
//! `BENCH_RUNS` cold starts per function (default 10), interleaved so the
//! machine's noise spreads over all of them; medians printed.
//! `BENCH_FUNCTIONS_DIR` measures function binaries from elsewhere (an
//! older commit's build) against this build's hello-world.

use std::time::{Duration, Instant};

use carepost_tests::runtime_api::{
    RuntimeApi, empty_sqs_event, function_binary, http_api_event, spawn_function, stack_environment,
};
use serde_json::Value;

#[allow(dead_code)]
#[path = "../tests/e2e/aws/harness.rs"]
mod harness;

const WARM_INVOCATIONS: usize = 20;
/// The bar: a function's init within this of the hello-world's.
const WITHIN_MS: f64 = 5.0;

struct Function {
    name: &'static str,
    event: Value,
    /// What a correct answer holds (the HTTP status, or the SQS batch response).
    expect: fn(&Value) -> bool,
}

fn status_is(answer: &Value, status: u64) -> bool {
    answer.get("statusCode").and_then(Value::as_u64) == Some(status)
}

fn no_batch_failures(answer: &Value) -> bool {
    answer.get("batchItemFailures").and_then(Value::as_array).is_some_and(|f| f.is_empty())
}

fn functions() -> Vec<Function> {
    vec![
        Function { name: "hello_lambda", event: http_api_event("GET", "/"), expect: |a| status_is(a, 200) },
        Function { name: "consent", event: http_api_event("GET", "/forms/web-signup"), expect: |a| status_is(a, 200) },
        Function { name: "contacts", event: http_api_event("GET", "/v1/schema"), expect: |a| status_is(a, 200) },
        Function { name: "campaigns", event: http_api_event("GET", "/v1/campaigns"), expect: |a| status_is(a, 200) },
        Function { name: "webhooks", event: http_api_event("GET", "/u/not-a-token"), expect: |a| status_is(a, 404) },
        Function { name: "fanout", event: empty_sqs_event(), expect: no_batch_failures },
        Function { name: "sender", event: empty_sqs_event(), expect: no_batch_failures },
        Function { name: "ses-events", event: empty_sqs_event(), expect: no_batch_failures },
    ]
}

struct ColdStart {
    init: Duration,
    first: Duration,
    warm: Duration,
}

async fn cold_start(binary: &std::path::Path, vars: &[(String, String)], f: &Function) -> ColdStart {
    let api = RuntimeApi::start(vec![f.event.clone(); 1 + WARM_INVOCATIONS]).await;
    let started = Instant::now();
    let mut child = spawn_function(binary, &api, vars);
    let polled = api.wait_first_poll(Duration::from_secs(30)).await.unwrap_or_else(|| panic!("{} polls", f.name));
    let answers = api.answers(1 + WARM_INVOCATIONS, Duration::from_secs(120)).await;
    let _ = child.kill().await;
    assert_eq!(answers.len(), 1 + WARM_INVOCATIONS, "{} answers every invocation", f.name);
    for answer in &answers {
        assert!(!answer.failed && (f.expect)(&answer.body), "{} answered {}", f.name, answer.body);
    }
    let mut warm: Vec<Duration> = answers[1..].iter().map(|a| a.took()).collect();
    ColdStart { init: polled.duration_since(started), first: answers[0].took(), warm: median(&mut warm) }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let hello = env!("CARGO_BIN_EXE_hello_lambda");
    let stack = harness::moto_stack().await;
    let vars = stack_environment(&stack.settings);
    let functions = functions();
    // `BENCH_FUNCTIONS_DIR`: measure the functions built elsewhere (an older commit) against this hello-world.
    let elsewhere = std::env::var("BENCH_FUNCTIONS_DIR").ok();
    let binaries: Vec<_> = functions
        .iter()
        .map(|f| match &elsewhere {
            Some(dir) if f.name != "hello_lambda" => std::path::Path::new(dir).join(f.name),
            _ => function_binary(hello, f.name),
        })
        .collect();
    let mut samples: Vec<Vec<ColdStart>> = functions.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (i, f) in functions.iter().enumerate() {
            samples[i].push(cold_start(&binaries[i], &vars, f).await);
        }
        eprint!("\rcold starts: {}/{runs} rounds", run + 1);
    }
    eprintln!();

    let profile = binaries[0].parent().and_then(|p| p.file_name()).map(|p| p.to_string_lossy().into_owned());
    println!(
        "cold starts against a Runtime API stub, moto on this machine; {} profile; {runs} runs each, medians (ms){}",
        profile.unwrap_or_default(),
        elsewhere.map(|d| format!("; functions from {d}")).unwrap_or_default()
    );
    println!(
        "{:<13} {:>8} {:>10} {:>8} {:>12} {:>8}  init within {WITHIN_MS} ms of hello",
        "function", "init", "vs hello", "first", "init+first", "warm"
    );
    let median_of = |s: &[ColdStart], pick: fn(&ColdStart) -> Duration| {
        let mut v: Vec<Duration> = s.iter().map(pick).collect();
        median(&mut v)
    };
    let hello_init = ms(median_of(&samples[0], |c| c.init));
    for (f, s) in functions.iter().zip(&samples) {
        let (init, first, warm) =
            (ms(median_of(s, |c| c.init)), ms(median_of(s, |c| c.first)), ms(median_of(s, |c| c.warm)));
        let cold = ms(median_of(s, |c| c.init + c.first));
        let over = init - hello_init;
        let verdict = if over <= WITHIN_MS { "yes" } else { "NO" };
        println!("{:<13} {init:>8.1} {over:>+10.1} {first:>8.1} {cold:>12.1} {warm:>8.2}  {verdict}", f.name);
    }
}
