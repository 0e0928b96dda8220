//! What a campaign costs in AWS beyond SES, from counted requests.
//!
//! `make bench-cost` (moto started by `scripts/with-moto.sh`);
//! `BENCH_CONTACTS` sets the population (default 1,000). A stack is created
//! on moto as the e2e harness does; every client of the application carries
//! an SDK interceptor (`carepost_tests::aws_calls`) that counts each request
//! transmitted by service and operation and derives DynamoDB's request units
//! from the items on the wire. Contacts and their consent are seeded with
//! `BatchWriteItem` (not counted: moto copies every table on each
//! transaction, which makes transactional upserts quadratic), then a
//! campaign is launched, fanned out and sent through the Lambda handlers,
//! and the events SES would publish for it (Send, Delivery, a share of
//! opens, clicks, bounces and complaints) go through the events handler in
//! batches of a hundred (the template's), in the shape the EventBridge
//! rule puts on the queue.
//!
//! What AWS does on the account's behalf is added by rule, not measured:
//! each SQS batch a function takes costs the event source mapping one
//! ReceiveMessage and one DeleteMessageBatch; each SES event is one SQS
//! request (the template's EventBridge rule delivering it to the queue; SES
//! to the default bus, the rule and its delivery cost nothing); the send
//! ledger's provider-ID index takes one write per email sent. Lambda's
//! duration is the handlers' wall time here against moto (slower than
//! DynamoDB in a region), at the template's 256 MB, arm64; log bytes are
//! what the handlers wrote in the Lambda format plus Lambda's own two
//! platform records per invocation.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use carepost::app::App;
use carepost::config::{RateShare, Throughput};
use carepost::runtime::aws::AwsClients;
use carepost::runtime::lambda::{self, aws_lambda_events::event::sqs::SqsMessage};
use carepost_tests::aws_calls::{AwsCalls, Operation, Tally, attach, json_body};
use carepost_tests::prices::{Bill, Usage};
use carepost_tests::seed::{active_consent_item, batch_write, contact_item};
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../tests/e2e/aws/harness.rs"]
mod harness;

/// Lambda's memory in the template (`Globals.Function.MemorySize`).
const LAMBDA_GB: f64 = 256.0 / 1024.0;
/// Lambda's `platform.start` and `platform.report` records (JSON log format).
const PLATFORM_LOG_BYTES_PER_INVOCATION: u64 = 600;
/// The events SES publishes per 1,000 emails sent, beside one Send each.
const DELIVERIES: u64 = 980;
const BOUNCES: u64 = 20;
// Every email sent is delivered or bounced.
const _: () = assert!(DELIVERIES + BOUNCES == 1000);
const OPENS: u64 = 300;
const CLICKS: u64 = 50;
const COMPLAINTS: u64 = 1;
/// The events function's batch (`BatchSize` of its SQS event source in the template).
const EVENTS_BATCH: usize = 100;

/// Bytes written through it, discarded.
#[derive(Clone, Default)]
struct CountingSink(Arc<AtomicU64>);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The SES message ID and tags of every email sent, as SES's events carry them.
#[derive(Debug, Clone, Default)]
struct SesSends(Arc<Mutex<Vec<(String, Value)>>>);

#[derive(Debug, Clone)]
struct SentTags(Value);

impl Storable for SentTags {
    type Storer = StoreReplace<Self>;
}

impl Intercept for SesSends {
    fn name(&self) -> &'static str {
        "SesSends"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body: Value = json_body(context.request().body().bytes());
        let mut tags = serde_json::Map::new();
        for tag in body["EmailTags"].as_array().into_iter().flatten() {
            if let (Some(name), Some(value)) = (tag["Name"].as_str(), tag["Value"].as_str()) {
                tags.insert(name.to_owned(), json!([value]));
            }
        }
        cfg.interceptor_state().store_put(SentTags(Value::Object(tags)));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body: Value = json_body(context.response().body().bytes());
        if let (Some(id), Some(tags)) = (body["MessageId"].as_str(), cfg.load::<SentTags>()) {
            self.0.lock().expect("lock").push((id.to_owned(), tags.0.clone()));
        }
        Ok(())
    }
}

/// One function's share of the run: invocations and their wall time.
#[derive(Debug, Default, Clone, Copy)]
struct Invocations {
    count: u64,
    seconds: f64,
}

struct Phase {
    name: &'static str,
    calls: BTreeMap<Operation, Tally>,
    invocations: Invocations,
    log_bytes: u64,
}

/// Confirmed patients in the adapters' item layout, sealed as the stack seals them.
async fn seed(stack: &harness::MotoStack, plain: &AwsClients, contacts: usize) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (mut records, mut consent) = (Vec::new(), Vec::new());
    for patient in carepost::synthetic::generate(contacts, 2026) {
        let record = carepost::synthetic::sealed_record(&stack.app().envelope, &patient).await?;
        records.push(contact_item(&record, now));
        consent.push(active_consent_item(&record, "wellness-tips", now));
    }
    batch_write(&plain.dynamodb, &stack.settings.tables.contacts, records).await;
    batch_write(&plain.dynamodb, &stack.settings.tables.consent, consent).await;
    Ok(())
}

/// Runs `handle` over `url` until the queue stays empty, receiving with the
/// uncounted client and counting what the event source mapping would.
async fn run_function<F, Fut>(plain: &AwsClients, calls: &AwsCalls, url: &str, batch: i32, mut handle: F) -> Invocations
where
    F: FnMut(lambda::aws_lambda_events::event::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = lambda::aws_lambda_events::event::sqs::SqsBatchResponse>,
{
    let mut done = Invocations::default();
    let mut idle = 0;
    while idle < 3 {
        let event = harness::receive_event(&plain.sqs, url, batch).await;
        if event.records.is_empty() {
            if harness::queue_depth(&plain.sqs, url).await == 0 {
                idle += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle = 0;
        let copy = event.clone();
        let started = Instant::now();
        let response = handle(event).await;
        done.seconds += started.elapsed().as_secs_f64();
        done.count += 1;
        calls.record("SQS", "ReceiveMessage (event source mapping)", Tally { requests: 1, ..Tally::default() });
        calls.record("SQS", "DeleteMessageBatch (event source mapping)", Tally { requests: 1, ..Tally::default() });
        harness::acknowledge(&plain.sqs, url, &copy, &response).await;
    }
    done
}

/// The SES event of `kind` (a file in events/ses-events) for one sent email.
fn ses_event(templates: &HashMap<&str, Value>, kind: &str, message_id: &str, tags: &Value) -> SqsMessage {
    let mut event = templates[kind].clone();
    event["mail"]["messageId"] = json!(message_id);
    event["mail"]["commonHeaders"]["messageId"] = json!(message_id);
    let mut all_tags = event["mail"]["tags"].clone();
    for (name, value) in tags.as_object().into_iter().flatten() {
        all_tags[name] = value.clone();
    }
    event["mail"]["tags"] = all_tags;
    // As the stack's EventBridge rule puts it on the queue.
    let detail_type = match kind {
        "send" => "Email Sent",
        "delivery" => "Email Delivered",
        "bounce-permanent" => "Email Bounced",
        "open" => "Email Opened",
        "click" => "Email Clicked",
        _ => "Email Complaint Received",
    };
    let bridged = json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": detail_type,
        "source": "aws.ses", "account": "123456789012", "time": "2026-12-03T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:ses:us-east-1:123456789012:configuration-set/carepost"], "detail": event
    });
    let mut record = SqsMessage::default();
    record.message_id = Some(uuid::Uuid::new_v4().to_string());
    record.body = Some(bridged.to_string());
    record.attributes = HashMap::from([("ApproximateReceiveCount".to_owned(), "1".to_owned())]);
    record
}

fn event_templates() -> anyhow::Result<HashMap<&'static str, Value>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/ses-events");
    let mut out = HashMap::new();
    for kind in ["send", "delivery", "bounce-permanent", "open", "click", "complaint"] {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{kind}.json")))?)?;
        let body: Value = serde_json::from_str(file["Records"][0]["body"].as_str().unwrap_or_default())?;
        out.insert(kind, serde_json::from_str(body["Message"].as_str().unwrap_or_default())?);
    }
    Ok(out)
}

/// Every event SES would publish for `sent`, in the order it would.
fn events_for(sent: &[(String, Value)]) -> anyhow::Result<Vec<SqsMessage>> {
    let templates = event_templates()?;
    let share = |i: usize, per_thousand: u64| (i as u64 * 7919) % 1000 < per_thousand;
    let mut out = Vec::new();
    for (i, (id, tags)) in sent.iter().enumerate() {
        out.push(ses_event(&templates, "send", id, tags));
        if share(i, BOUNCES) {
            out.push(ses_event(&templates, "bounce-permanent", id, tags));
            continue;
        }
        out.push(ses_event(&templates, "delivery", id, tags));
        if share(i + 500, OPENS) {
            out.push(ses_event(&templates, "open", id, tags));
        }
        if share(i + 250, CLICKS) {
            out.push(ses_event(&templates, "click", id, tags));
        }
        if share(i + 750, COMPLAINTS) {
            out.push(ses_event(&templates, "complaint", id, tags));
        }
    }
    Ok(out)
}

fn print_phase(phase: &Phase, emails: f64) {
    println!(
        "\n{} ({} invocations, {:.1} s of handler time, {:.0} log bytes per email):",
        phase.name,
        phase.invocations.count,
        phase.invocations.seconds,
        phase.log_bytes as f64 / emails
    );
    println!("  {:<9} {:<48} {:>10} {:>10} {:>10}", "service", "operation", "req/email", "WRU/email", "RRU/email");
    for ((service, operation), t) in &phase.calls {
        println!(
            "  {:<9} {:<48} {:>10.3} {:>10.3} {:>10.3}",
            service,
            operation,
            t.requests as f64 / emails,
            t.write_units / emails,
            t.read_units / emails
        );
    }
}

fn usage_of(phases: &[Phase], sns_publishes: u64, emails: u64) -> Usage {
    let mut u = Usage { sns_publishes: sns_publishes as f64, ses_emails: emails as f64, ..Usage::default() };
    for phase in phases {
        u.add_calls(&phase.calls);
        u.lambda_invocations += phase.invocations.count as f64;
        u.lambda_gb_seconds += phase.invocations.seconds * LAMBDA_GB;
        u.log_bytes += (phase.log_bytes + phase.invocations.count * PLATFORM_LOG_BYTES_PER_INVOCATION) as f64;
    }
    u
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts: usize = std::env::var("BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    anyhow::ensure!(std::env::var("AWS_ENDPOINT_URL").is_ok(), "start moto first: make bench-cost does");
    let log_bytes = CountingSink::default();
    let sink = log_bytes.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .with_writer(move || sink.clone())
        .init();

    let calls = AwsCalls::default();
    let sends = SesSends::default();
    // No rate limit to wait for: the limiter's waiting is billed duration in
    // Lambda, priced apart below from the template's defaults.
    let t = Throughput {
        send_rate_per_second: 10_000,
        sender_max_concurrency: 2,
        fanout_shards: 4,
        visibility_timeout_seconds: 30,
        max_receive_count: 5,
        ..Throughput::default()
    };
    let stack = harness::moto_stack_with(t, |clients| {
        let mut counted = attach(clients, &calls);
        let ses = counted.sesv2.config().to_builder().interceptor(sends.clone()).build();
        counted.sesv2 = aws_sdk_sesv2::Client::from_conf(ses);
        counted
    })
    .await;
    let plain = AwsClients::from_sdk(&harness::sdk().await);
    let started = Instant::now();
    seed(&stack, &plain, contacts).await?;
    eprintln!("seeded {contacts} confirmed contacts in {:.1} s", started.elapsed().as_secs_f64());

    let metrics = CountingSink::default();
    let base = stack.app();
    let mut ports = base.ports.clone();
    ports.metrics = Arc::new(carepost::adapters::emf::EmfMetrics::new(Box::new(metrics.clone())));
    let app = Arc::new(App::new(
        ports,
        base.envelope.clone(),
        base.keyring.clone(),
        base.settings.clone(),
        RateShare::whole(&t),
    ));

    // What building the stack and seeding did is not counted.
    calls.reset();
    log_bytes.0.store(0, Ordering::Relaxed);
    let mut phases = Vec::new();
    let mut phase_done = |name: &'static str, invocations: Invocations| {
        let logged = log_bytes.0.swap(0, Ordering::Relaxed) + metrics.0.swap(0, Ordering::Relaxed);
        phases.push(Phase { name, calls: calls.snapshot(), invocations, log_bytes: logged });
        calls.reset();
    };

    let input = serde_json::from_value(json!({
        "name": "Cost bench", "category": "wellness-tips", "phi_personalized": true, "purpose": "treatment",
        "segment": {"exists": {"attr": "date_of_birth"}}, "tracking": {"opens": true, "clicks": true},
        "template": {"subject": "Your wellness update",
                     "html": "<p>Hello {{ first_name | default('there') }}</p><p><a href=\"https://www.clinic.example/flu\">Book</a></p>",
                     "text": "Hello {{ first_name | default('there') }}\nBook: https://www.clinic.example/flu\nUnsubscribe: {{ unsubscribe_url }}"}
    }))?;
    let campaign = app.campaigns.create(input).await?;
    app.lifecycle.launch(&campaign).await?;
    phase_done("launch (API)", Invocations { count: 2, seconds: 0.0 });

    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let fanout = run_function(&plain, &calls, &stack.queues.fanout.0, 1, |event| {
        let (app, queue) = (app.clone(), stack.built.fanout_queue.clone());
        async move { lambda::handle_fanout(&app, queue.as_ref(), event, deadline).await }
    })
    .await;
    phase_done("fanout", fanout);
    let sender = run_function(&plain, &calls, &stack.queues.send.0, 10, |event| {
        let (app, queue) = (app.clone(), stack.built.send_queue.clone());
        async move { lambda::handle_send(&app, queue.as_ref(), event).await }
    })
    .await;
    // Not on the wire: the send ledger's `by_provider_message_id` index
    // (keys only) takes one write when a row gets SES's message ID.
    let accepted = sends.0.lock().expect("lock").len() as f64;
    let index = Tally { requests: 0, write_units: accepted, read_units: 0.0 };
    calls.record("DynamoDB", "IndexWrite send-ledger by_provider_message_id (by rule)", index);
    phase_done("sender", sender);
    let sent = sends.0.lock().expect("lock").clone();
    let emails = sent.len() as u64;
    if emails == 0 {
        let report = app.reports.campaign_report(&campaign).await?;
        anyhow::bail!("the campaign sent nothing (fan-out {fanout:?}, sender {sender:?}): {report:?}");
    }
    eprintln!("fanned out and sent {emails} emails in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let events = events_for(&sent)?;
    let mut invocations = Invocations::default();
    for batch in events.chunks(EVENTS_BATCH) {
        let mut event = lambda::aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = batch.to_vec();
        let began = Instant::now();
        let response = lambda::handle_events(&app, stack.events_queue().as_ref(), event).await;
        invocations.seconds += began.elapsed().as_secs_f64();
        invocations.count += 1;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "an event failed");
        calls.record("SQS", "ReceiveMessage (event source mapping)", Tally { requests: 1, ..Tally::default() });
        calls.record("SQS", "DeleteMessageBatch (event source mapping)", Tally { requests: 1, ..Tally::default() });
    }
    // SES to the default bus and the rule's delivery cost nothing; the queue counts a request.
    let sns_publishes = 0;
    let delivered = Tally { requests: events.len() as u64, ..Tally::default() };
    calls.record("SQS", "SendMessage (EventBridge rule, per event)", delivered);
    phase_done("ses-events", invocations);
    eprintln!("handled {} SES events in {:.1} s", events.len(), started.elapsed().as_secs_f64());

    let report = app.reports.campaign_report(&campaign).await?;
    let per = emails as f64;
    println!("Cost of one campaign on the AWS adapters (moto): {contacts} contacts, {emails} emails sent,");
    println!(
        "{} SES events ({DELIVERIES} deliveries, {BOUNCES} bounces, {OPENS} opens, {CLICKS} clicks, \
         {COMPLAINTS} complaint per 1,000 sent); report: sent {}",
        events.len(),
        report.sent
    );
    for phase in &phases {
        print_phase(phase, per);
    }
    let usage = usage_of(&phases, sns_publishes, emails);
    let (mut write_requests_on_send_path, mut writes_on_send_path) = (0u64, 0.0);
    let writes = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "IndexWrite"];
    for ((service, op), t) in phases.iter().filter(|p| p.name == "sender").flat_map(|p| p.calls.iter()) {
        if service == "DynamoDB" && writes.contains(&op.split(' ').next().unwrap_or_default()) {
            write_requests_on_send_path += t.requests;
            writes_on_send_path += t.write_units;
        }
    }
    let bill = Bill::of(&usage).per_million(per);
    println!("\nPer 1,000,000 emails (us-east-1 on-demand list prices, docs/benchmarks.md):");
    println!(
        "  DynamoDB     ${:>8.3}  ({:.2} WRU, {:.2} RRU per email)",
        bill.dynamodb,
        usage.dynamodb_write_units / per,
        usage.dynamodb_read_units / per
    );
    println!("  SQS          ${:>8.3}  ({:.2} requests per email)", bill.sqs, usage.sqs_requests / per);
    println!("  SNS          ${:>8.3}  ({:.2} publishes per email)", bill.sns, usage.sns_publishes / per);
    println!("  KMS          ${:>8.3}  ({:.4} requests per email)", bill.kms, usage.kms_requests / per);
    println!(
        "  Lambda       ${:>8.3}  ({:.3} invocations, {:.2} ms at 256 MB per email)",
        bill.lambda,
        usage.lambda_invocations / per,
        usage.lambda_gb_seconds / LAMBDA_GB / per * 1000.0
    );
    println!("  Logs         ${:>8.3}  ({:.0} bytes per email)", bill.logs, usage.log_bytes / per);
    println!("  beyond SES   ${:>8.3}  (goal: at most $1.00)", bill.beyond_ses());
    println!("  SES          ${:>8.3}  (apart)", bill.ses);
    println!(
        "DynamoDB writes per email on the send path: {:.2} requests, {:.2} WRU (goal: at most 2)",
        write_requests_on_send_path as f64 / per,
        writes_on_send_path / per
    );
    let default_rate = 14.0;
    let default_senders = 2.0;
    let waiting =
        LAMBDA_GB * default_senders / default_rate * carepost_tests::prices::usd::LAMBDA_ARM64_GB_SECOND * 1e6;
    println!(
        "Not in the figures: at the template's SendRatePerSecond 14 and SenderMaxConcurrency 2 each sender waits \
         {:.0} ms per email for the rate limiter, billed as duration: ${waiting:.3} per 1,000,000 emails.",
        default_senders / default_rate * 1000.0
    );
    Ok(())
}
