//! Fan-out on moto: 20,000 contacts in 8 shards, every shard message
//! delivered twice, each fan-out invocation given 0.4 seconds (so shards
//! continue themselves), and one shard dying mid-page: after its page's send
//! jobs went out, before its checkpoint. Every eligible contact gets exactly
//! one send job through the send ledger; no ineligible one gets any.
//!
//! moto's SQS walks every queued message on each send and receive, so send
//! jobs are taken while fan-out runs and fan-out waits while more than 100
//! are queued, as a send function scaled out in AWS keeps the queue short.
//! (With the whole audience queued first, this test had not finished after
//! 25 minutes; now it takes about 5.)
//!
//! The contacts and consent states are seeded with `BatchWriteItem` in the
//! adapters' item layout: moto copies every table on each transaction, which
//! makes transactional upserts quadratic. Send jobs are taken as the
//! sender takes them (a ledger claim, then a settle) without rendering mail:
//! the ledger is what keeps a patient from a second message, and the mail
//! path on moto is covered by `pipeline.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use carepost::app::App;
use carepost::config::{RateShare, Throughput};
use carepost::domain::{
    CampaignCounter, CampaignId, CampaignStatus, ContactId, ProviderMessageId, SendJob, ShardProgress,
};
use carepost::ports::{CampaignRecord, CampaignStore, ClaimOutcome, LedgerState, Queue, StoreError};
use carepost::runtime::lambda;
use carepost::runtime::lambda::aws_lambda_events::event::sqs::SqsBatchResponse;
use serde_json::json;

use carepost_tests::seed::{active_consent_item, batch_write, contact_item};

use super::harness::{acknowledge, drain, moto_stack_with, queue_depth, receive_event, throughput};

const CONTACTS: usize = 20_000;
const SHARDS: u16 = 8;
const CRASHING_SHARD: u16 = 5;

/// The campaign store, except that one shard's checkpoint fails once, on its
/// second page: the function died after sending that page's jobs.
struct CrashMidPage {
    inner: Arc<dyn CampaignStore>,
    saves: AtomicUsize,
    crashed: AtomicBool,
}

#[async_trait]
impl CampaignStore for CrashMidPage {
    async fn create(&self, record: &CampaignRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn get(&self, id: &CampaignId) -> Result<Option<CampaignRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        after: Option<carepost::ports::CampaignCursor>,
        limit: usize,
    ) -> Result<carepost::ports::CampaignPage, StoreError> {
        self.inner.list(after, limit).await
    }
    async fn transition(&self, id: &CampaignId, from: CampaignStatus, to: CampaignStatus) -> Result<bool, StoreError> {
        self.inner.transition(id, from, to).await
    }
    async fn save_shard(&self, id: &CampaignId, progress: &ShardProgress) -> Result<(), StoreError> {
        if progress.shard == CRASHING_SHARD
            && self.saves.fetch_add(1, Ordering::SeqCst) == 1
            && !self.crashed.swap(true, Ordering::SeqCst)
        {
            return Err(StoreError::unavailable_msg("the function died before its checkpoint"));
        }
        self.inner.save_shard(id, progress).await
    }
    async fn shards(&self, id: &CampaignId) -> Result<Vec<ShardProgress>, StoreError> {
        self.inner.shards(id).await
    }
    async fn increment(&self, id: &CampaignId, counter: CampaignCounter, by: u64) -> Result<(), StoreError> {
        self.inner.increment(id, counter, by).await
    }
    async fn counters(&self, id: &CampaignId) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        self.inner.counters(id).await
    }
    async fn pause(&self, id: &CampaignId, reason: &str) -> Result<bool, StoreError> {
        self.inner.pause(id, reason).await
    }
    async fn increment_window(
        &self,
        id: &CampaignId,
        counter: CampaignCounter,
        bucket: i64,
        by: u64,
    ) -> Result<(), StoreError> {
        self.inner.increment_window(id, counter, bucket, by).await
    }
    async fn window(
        &self,
        id: &CampaignId,
        counters: &[CampaignCounter],
        from_bucket: i64,
    ) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        self.inner.window(id, counters, from_bucket).await
    }
    async fn window_buckets(&self, id: &CampaignId) -> Result<Vec<(i64, CampaignCounter, u64)>, StoreError> {
        self.inner.window_buckets(id).await
    }
}

#[tokio::test]
async fn contacts_in_eight_shards_duplicated_and_crashed_reach_each_eligible_patient_once() {
    let t = Throughput { fanout_shards: SHARDS, visibility_timeout_seconds: 2, max_receive_count: 10, ..throughput() };
    let stack = moto_stack_with(t, |c| c).await;
    let base = stack.app();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Every fourth patient never consented; the segment keeps asthma patients.
    let patients = carepost::synthetic::generate(CONTACTS, 2027);
    let (mut contacts, mut consent, mut eligible) = (Vec::new(), Vec::new(), HashSet::new());
    for patient in &patients {
        let record = carepost::synthetic::sealed_record(&base.envelope, patient).await.unwrap();
        contacts.push(contact_item(&record, now));
        let consented = patient.index % 4 != 0;
        if consented {
            consent.push(active_consent_item(&record, "wellness-tips", now));
        }
        if consented && patient.full_profile().conditions.iter().any(|c| c == "asthma") {
            eligible.insert(record.id);
        }
    }
    let dynamodb = &stack.clients.dynamodb;
    let seeding = Instant::now();
    batch_write(dynamodb, &stack.settings.tables.contacts, contacts).await;
    batch_write(dynamodb, &stack.settings.tables.consent, consent).await;
    let seeding = seeding.elapsed();
    let mut ports = base.ports.clone();
    ports.campaigns = Arc::new(CrashMidPage {
        inner: base.ports.campaigns.clone(),
        saves: AtomicUsize::new(0),
        crashed: AtomicBool::new(false),
    });
    // Pages of the default size (250) and 0.4 s per invocation: shards take
    // several pages and continue themselves through the queue.
    assert_eq!(base.settings.fanout_page_size, 250);
    let app = App::new(ports, base.envelope.clone(), base.keyring.clone(), base.settings.clone(), RateShare::whole(&t));
    let input = serde_json::from_value(json!({
        "name": "Asthma season", "category": "wellness-tips", "segment": {"in": {"attr": "conditions", "values": ["asthma"]}},
        "template": {"subject": "Asthma season", "html": "<p>Hello</p>", "text": "Hello {{ unsubscribe_url }}"}
    }))
    .unwrap();
    let campaign = app.campaigns.create(input).await.unwrap();

    app.lifecycle.launch(&campaign).await.unwrap();
    // Every shard message delivered twice.
    let shard_jobs: Vec<String> = (0..SHARDS)
        .map(|shard| carepost::domain::FanoutShardJob { campaign_id: campaign, shard, shards: SHARDS }.to_body())
        .collect();
    stack.built.fanout_queue.send_batch(&shard_jobs).await.unwrap();
    let fanout_queue: &dyn Queue = stack.built.fanout_queue.as_ref();
    let (sqs, fanout_url) = (&stack.clients.sqs, stack.settings.fanout_queue_url.clone());
    let started = Instant::now();
    let fanning_out = AtomicBool::new(true);
    let send_url = stack.settings.send_queue_url.clone();
    let fanout = async {
        let mut messages = Vec::new();
        loop {
            // In AWS the send function scales out to keep up; here fan-out
            // waits for it, so the send queue stays short.
            while queue_depth(sqs, &send_url).await > 100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let event = receive_event(sqs, &fanout_url, 1).await;
            if event.records.is_empty() {
                if queue_depth(sqs, &fanout_url).await == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            messages.extend(event.records.iter().filter_map(|r| r.body.clone()));
            let deadline = Instant::now() + Duration::from_millis(400);
            let response = lambda::handle_fanout(&app, fanout_queue, event.clone(), deadline).await;
            acknowledge(sqs, &fanout_url, &event, &response).await;
            assert!(started.elapsed() < Duration::from_secs(900), "fan-out did not finish in 15 minutes");
        }
        fanning_out.store(false, Ordering::SeqCst);
        (messages, started.elapsed())
    };
    // Send jobs are taken while fan-out runs, as the send function does, so
    // the queue stays short: moto's SendMessage and ReceiveMessage walk every
    // queued message (a queue of thousands made this test quadratic).
    let claims = std::sync::Mutex::new(HashMap::<ContactId, u32>::new());
    let sending = async {
        let mut jobs_received = 0usize;
        loop {
            let last_round = !fanning_out.load(Ordering::SeqCst);
            let received = drain(sqs, &send_url, 10, Duration::from_secs(900), |event| {
                let (app, claims) = (&app, &claims);
                async move {
                    for record in &event.records {
                        let job = SendJob::parse(record.body.as_deref().unwrap()).unwrap();
                        let now = time::OffsetDateTime::now_utc();
                        let claimed =
                            app.ports.ledger.claim(&job.campaign_id, &job.contact_id, now, Duration::from_secs(60));
                        if let ClaimOutcome::Claimed { attempt } = claimed.await.unwrap() {
                            let sent = LedgerState::Sent {
                                provider_message_id: ProviderMessageId::new(job.contact_id.to_string()),
                            };
                            app.ports.ledger.settle(&job.campaign_id, &job.contact_id, attempt, &sent).await.unwrap();
                            *claims.lock().unwrap().entry(job.contact_id).or_default() += 1;
                        }
                    }
                    SqsBatchResponse::default()
                }
            })
            .await;
            jobs_received += received.len();
            if last_round {
                return jobs_received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let ((fanout_messages, fanout_time), jobs_received) = tokio::join!(fanout, sending);
    let total_time = started.elapsed();
    let report = app.reports.campaign_report(&campaign).await.unwrap();

    let claims = claims.into_inner().unwrap();
    let claimed: HashSet<ContactId> = claims.keys().copied().collect();
    assert!(
        fanout_messages.len() > usize::from(2 * SHARDS) + 1,
        "shards continued themselves: {}",
        fanout_messages.len()
    );
    assert!(jobs_received > eligible.len(), "the crashed page's jobs went out twice: {jobs_received}");
    assert!(claims.values().all(|n| *n == 1), "a contact was claimed twice");
    assert_eq!(claimed.len(), eligible.len(), "every eligible contact, once");
    assert!(claimed == eligible, "no ineligible contact got a job");
    assert_eq!((report.evaluated, report.audience), (CONTACTS as u64, eligible.len() as u64));
    assert_eq!(report.excluded.no_consent, (CONTACTS / 4) as u64);
    assert_eq!(report.sent, eligible.len() as u64);
    eprintln!(
        "{CONTACTS} contacts in {SHARDS} shards on moto: seeded in {:.1} s, fan-out {:.1} s ({} fan-out messages), \
         {jobs_received} send jobs for {} eligible all taken after {:.1} s",
        seeding.as_secs_f64(),
        fanout_time.as_secs_f64(),
        fanout_messages.len(),
        eligible.len(),
        total_time.as_secs_f64()
    );
}
