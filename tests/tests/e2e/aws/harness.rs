//! A Carepost stack on moto: tables, queues, key and SES identity created
//! over the AWS wire protocol, the Lambda handlers driven the way the SQS
//! event source mapping drives them, and moto's record of sent mail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use carepost::adapters::aws::TableNames;
use carepost::adapters::aws::dynamodb::create_tables;
use carepost::adapters::aws::sqs::create_queue_pair;
use carepost::app::App;
use carepost::config::{Knobs, Runtime, Throughput};
use carepost::runtime::aws::{AwsApp, AwsClients, AwsSettings, build};
use carepost::runtime::lambda::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;

/// The wall clock, moved on by what the test says has passed: the
/// application's time (timers, reconciliation) without waiting for it, while
/// SQS and DynamoDB keep moto's own.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    ahead: std::sync::Mutex<std::time::Duration>,
}

impl ShiftedClock {
    pub fn pass(&self, by: std::time::Duration) {
        *self.ahead.lock().unwrap() += by;
    }
}

impl carepost::ports::Clock for ShiftedClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + *self.ahead.lock().unwrap()
    }
}

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is not set: start moto first (make test does)")
}

pub async fn sdk() -> aws_config::SdkConfig {
    endpoint();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub struct Queues {
    pub fanout: (String, String),
    pub send: (String, String),
    pub events: (String, String),
}

pub struct MotoStack {
    pub clients: AwsClients,
    pub settings: AwsSettings,
    pub built: AwsApp,
    pub queues: Queues,
}

impl MotoStack {
    pub fn app(&self) -> &Arc<App> {
        &self.built.app
    }

    /// The `ses-events` queue, where the events function backs off.
    pub fn events_queue(&self) -> Arc<carepost::adapters::aws::sqs::SqsQueue> {
        self.built.events_queue.clone().expect("the harness sets EVENTS_QUEUE_URL")
    }
}

pub fn throughput() -> Throughput {
    Throughput {
        send_rate_per_second: 200,
        sender_max_concurrency: 2,
        fanout_shards: 4,
        visibility_timeout_seconds: 2,
        max_receive_count: 5,
        ..Throughput::default()
    }
}

/// Creates every resource under a fresh prefix and builds the application.
pub async fn moto_stack() -> MotoStack {
    moto_stack_with(throughput(), |c| c).await
}

pub async fn moto_stack_with(t: Throughput, customize: impl FnOnce(AwsClients) -> AwsClients) -> MotoStack {
    let sdk = sdk().await;
    let plain = AwsClients::from_sdk(&sdk);
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&plain.dynamodb, &tables).await.expect("tables are created");
    let queue = |name: &str| {
        let (client, name) = (plain.sqs.clone(), format!("{prefix}-{name}"));
        async move {
            create_queue_pair(&client, &name, t.visibility_timeout_seconds, t.max_receive_count).await.expect("queue")
        }
    };
    let queues = Queues { fanout: queue("fanout").await, send: queue("send").await, events: queue("ses-events").await };
    let key = plain.kms.create_key().description("carepost test key").send().await.expect("kms key");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    plain.sesv2.create_email_identity().email_identity("clinic.example").send().await.expect("SES identity");
    let settings = AwsSettings {
        tables,
        fanout_queue_url: queues.fanout.0.clone(),
        send_queue_url: queues.send.0.clone(),
        send_dlq_url: Some(queues.send.1.clone()),
        events_queue_url: Some(queues.events.0.clone()),
        kms_key_id: key_id,
        ses_configuration_set: None,
        ses_notice_configuration_set: None,
        settings: Knobs {
            public_base_url: Some("https://mail.clinic.example".into()),
            sender_name: Some("Clinic".into()),
            sender_address: Some("news@clinic.example".into()),
            acceptance_grace_seconds: Some(3),
            // Small test campaigns, counted exactly (the small-cell rule has its own tests).
            min_cell_size: 1,
            allowed_origins: vec![carepost::domain::Origin::parse("https://www.clinic.example").unwrap()],
            ..Knobs::from(t)
        }
        .validate(&Runtime::Lambda)
        .expect("the test settings are valid"),
    };
    let clients = customize(plain);
    let built = build(clients.clone(), settings.clone()).await.expect("application builds");
    MotoStack { clients, settings, built, queues }
}

/// Receives like the SQS event source mapping: up to `batch` messages as one
/// `SqsEvent`, with the receive count attribute.
pub async fn receive_event(sqs: &aws_sdk_sqs::Client, url: &str, batch: i32) -> SqsEvent {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(batch)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive");
    let mut event = SqsEvent::default();
    event.records = out
        .messages()
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record.attributes = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
                .unwrap_or_else(HashMap::new);
            record
        })
        .collect();
    event
}

/// Deletes what the handler did not report as failed, as the mapping does.
pub async fn acknowledge(sqs: &aws_sdk_sqs::Client, url: &str, event: &SqsEvent, response: &SqsBatchResponse) {
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    for record in &event.records {
        if !failed.contains(&record.message_id.as_deref().unwrap_or_default())
            && let Some(receipt) = &record.receipt_handle
        {
            sqs.delete_message().queue_url(url).receipt_handle(receipt).send().await.expect("delete");
        }
    }
}

/// Messages in the queue, visible or in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    let n = |k: aws_sdk_sqs::types::QueueAttributeName| {
        attrs.attributes().and_then(|a| a.get(&k)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// Runs `handler` over the queue until it is empty (and stays empty past
/// any back-off), or the time runs out. Returns every body it handed over.
pub async fn drain<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch: i32,
    within: std::time::Duration,
    mut handler: F,
) -> Vec<String>
where
    F: FnMut(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = SqsBatchResponse>,
{
    let deadline = Instant::now() + within;
    let mut idle_since: Option<Instant> = None;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let event = receive_event(sqs, url, batch).await;
        if event.records.is_empty() {
            if queue_depth(sqs, url).await == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > std::time::Duration::from_millis(300) {
                    return seen;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        idle_since = None;
        seen.extend(event.records.iter().filter_map(|r| r.body.clone()));
        let copy = event.clone();
        let response = handler(event).await;
        acknowledge(sqs, url, &copy, &response).await;
    }
    panic!("queue {url} was not drained in {within:?}");
}

/// Runs the sender function over the send queue until it is empty, as its
/// event source mapping would: consent requests become contacts, ledger
/// entries and confirmation emails there.
pub async fn run_sender(stack: &MotoStack) -> Vec<String> {
    let sqs = stack.clients.sqs.clone();
    drain(&sqs, &stack.queues.send.0, 10, std::time::Duration::from_secs(60), |event| {
        let (app, queue) = (stack.app().clone(), stack.built.send_queue.clone());
        async move { carepost::runtime::lambda::handle_send(&app, queue.as_ref(), event).await }
    })
    .await
}

/// Raw messages moto's SES recorded (`/moto-api/data.json`), oldest first.
pub async fn sent_raw_messages() -> Vec<String> {
    sent_messages().await.into_iter().map(|(_, raw)| raw).collect()
}

/// (SES message ID, raw message) of everything moto's SES accepted.
pub async fn sent_messages() -> Vec<(String, String)> {
    // moto builds data.json by walking every backend, and fails (a 500
    // page) when another test changes one under it: read it again.
    let mut last = String::new();
    let mut data = None;
    for _ in 0..20 {
        let body = reqwest::get(format!("{}/moto-api/data.json", endpoint())).await.unwrap().text().await.unwrap();
        match serde_json::from_str::<Value>(&body) {
            Ok(parsed) => {
                data = Some(parsed);
                break;
            }
            Err(_) => {
                last = body.chars().take(300).collect();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    let data = data.unwrap_or_else(|| panic!("moto's data.json never parsed; last answer: {last}"));
    let recorded = data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default();
    recorded.iter().filter_map(|m| Some((m["id"].as_str()?.to_owned(), m["raw_data"].as_str()?.to_owned()))).collect()
}
