//! Doubles for the use cases' unit tests. Every store is the embedded
//! adapter on an in-memory SQLite database (the contract suites hold those
//! to DynamoDB's behaviour); the outside systems whose failures make the
//! branches are fakes: a scripted mail transport, a recording metrics sink
//! and a manual clock; the key file in a temporary directory stands in for
//! KMS, as in the embedded stack. A test builds one `Harness`
//! in a millisecond and moves time by hand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{App, Ports};
use crate::adapters::embedded::{Db, KeyFileProvider, QueueSettings, SqliteQueue};
use crate::config::{RateShare, Settings, Throughput};
use crate::crypto::{CacheLimits, Envelope, Keyring};
use crate::domain::{
    CampaignId, CampaignStatus, ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus,
    ContactId, ExternalId, ProfileInput, ProviderMessageId, PublicBaseUrl,
};
use crate::ports::{
    Clock, KeyProvider, MailTransport, ManualClock, Metric, Metrics, OutgoingMail, Queue, SendLedger, TransportError,
    TransportErrorKind,
};
use crate::runtime::embedded::{SqliteQueues, sqlite_ports};

/// A mail transport that answers from a script, then accepts everything.
#[derive(Default)]
pub(crate) struct ScriptedTransport {
    script: Mutex<VecDeque<TransportErrorKind>>,
    accepted: Mutex<Vec<OutgoingMail>>,
    attempts: Mutex<u32>,
}

impl ScriptedTransport {
    /// The next sends fail with these kinds, in order.
    pub(crate) fn fail_next(&self, kinds: &[TransportErrorKind]) {
        self.script.lock().unwrap().extend(kinds.iter().copied());
    }

    pub(crate) fn accepted(&self) -> Vec<OutgoingMail> {
        self.accepted.lock().unwrap().clone()
    }

    pub(crate) fn attempts(&self) -> u32 {
        *self.attempts.lock().unwrap()
    }
}

#[async_trait]
impl MailTransport for ScriptedTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError> {
        *self.attempts.lock().unwrap() += 1;
        if let Some(kind) = self.script.lock().unwrap().pop_front() {
            return Err(TransportError::new(kind, "scripted failure"));
        }
        let mut accepted = self.accepted.lock().unwrap();
        accepted.push(mail.clone());
        Ok(ProviderMessageId::new(format!("provider-{}", accepted.len())))
    }
}

/// Every metric counted, in order.
#[derive(Default)]
pub(crate) struct RecordingMetrics {
    seen: Mutex<Vec<(Option<CampaignId>, Metric, u64)>>,
}

impl RecordingMetrics {
    pub(crate) fn total(&self, metric: Metric) -> u64 {
        self.seen.lock().unwrap().iter().filter(|(_, m, _)| *m == metric).map(|(_, _, v)| v).sum()
    }

    /// The value of each count of `metric`, one per call.
    pub(crate) fn counts(&self, metric: Metric) -> Vec<u64> {
        self.seen.lock().unwrap().iter().filter(|(_, m, _)| *m == metric).map(|(_, _, v)| *v).collect()
    }
}

impl Metrics for RecordingMetrics {
    fn count(&self, campaign: Option<&CampaignId>, metric: Metric, value: u64) {
        self.seen.lock().unwrap().push((campaign.copied(), metric, value));
    }
}

pub(crate) struct Harness {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub transport: Arc<ScriptedTransport>,
    pub metrics: Arc<RecordingMetrics>,
    pub send_queue: Arc<SqliteQueue>,
    pub fanout_queue: Arc<SqliteQueue>,
    /// Holds the key file standing in for KMS; removed with the harness.
    _keys_dir: tempfile::TempDir,
}

pub(crate) fn category(name: &str) -> ConsentCategory {
    ConsentCategory::parse(name).expect("valid category")
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::with(|_| {}, |ports| ports)
    }

    /// `settings` may change the settings; `ports` may wrap a port (a
    /// decorator that fails on purpose).
    pub(crate) fn with(settings: impl FnOnce(&mut Settings), ports: impl FnOnce(Ports) -> Ports) -> Harness {
        let db = Db::open(std::path::Path::new(":memory:")).expect("in-memory database");
        let clock = Arc::new(ManualClock::starting_now());
        let transport = Arc::new(ScriptedTransport::default());
        let metrics = Arc::new(RecordingMetrics::default());
        let queue_settings = QueueSettings { visibility_timeout: Duration::from_secs(30), max_receive_count: 5 };
        // On the manual clock too: a retry's back-off passes when the test moves time.
        let send_queue = Arc::new(SqliteQueue::new(db.clone(), "send", queue_settings).with_clock(clock.clone()));
        let fanout_queue = Arc::new(SqliteQueue::new(db.clone(), "fanout", queue_settings).with_clock(clock.clone()));
        let queues = SqliteQueues { fanout: fanout_queue.clone(), send: send_queue.clone() };
        let built = sqlite_ports(&db, queues, transport.clone(), metrics.clone(), clock.clone());
        let throughput = Throughput { send_rate_per_second: 10_000, ..Throughput::default() };
        let mut s = Settings::local(PublicBaseUrl::parse("https://mail.clinic.example").unwrap(), throughput);
        settings(&mut s);
        let keys_dir = tempfile::tempdir().expect("temporary directory");
        let keys: Arc<dyn KeyProvider> =
            Arc::new(KeyFileProvider::open_or_create(&keys_dir.path().join("master.key")).expect("key file"));
        let app = App::new(
            ports(built),
            Arc::new(Envelope::new(keys, CacheLimits::default())),
            Arc::new(Keyring::from_root(&[7; 32])),
            Arc::new(s),
            RateShare::whole(&throughput),
        );
        Harness { app, clock, transport, metrics, send_queue, fanout_queue, _keys_dir: keys_dir }
    }

    /// The app alone, shared as the routers take it, with the key file's
    /// directory that must outlive it.
    pub(crate) fn into_shared(self) -> (Arc<App>, tempfile::TempDir) {
        (Arc::new(self.app), self._keys_dir)
    }

    /// A patient with `topics` granted now (as if confirmed).
    pub(crate) async fn patient(&self, email: &str, topics: &[&str]) -> ContactId {
        let safe: String = email.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let external = ExternalId::parse(&format!("ext-{safe}")).unwrap();
        let profile = ProfileInput {
            first_name: Some("Probe".into()),
            date_of_birth: Some("1980-04-02".into()),
            ..ProfileInput::default()
        };
        let id = self.app.contacts.upsert("test", external, email, &profile).await.unwrap().contact_id;
        if !topics.is_empty() {
            self.grant(&id, topics).await;
        }
        id
    }

    pub(crate) async fn grant(&self, contact: &ContactId, topics: &[&str]) {
        let evidence = ConsentEvidence::without_proof(
            *contact,
            ConsentEntryKind::Granted,
            topics.iter().map(|t| category(t)).collect(),
            self.clock.now(),
            ConsentMethod::Api,
        );
        self.app.consent_ledger.append(evidence, ConsentStatus::Active).await.unwrap();
    }

    /// A campaign to `topic` for everyone, moved straight to `sending`.
    pub(crate) async fn sending_campaign(&self, topic: &str) -> CampaignId {
        let input = serde_json::from_value(serde_json::json!({
            "name": "Unit", "category": topic, "segment": {"exists": {"attr": "date_of_birth"}},
            "template": {"subject": "News from the clinic", "html": "<p>Hello</p>", "text": "Hello"}
        }))
        .unwrap();
        let id = self.app.campaigns.create(input).await.unwrap();
        let campaigns = &self.app.ports.campaigns;
        assert!(campaigns.transition(&id, CampaignStatus::Draft, CampaignStatus::FanningOut).await.unwrap());
        assert!(campaigns.transition(&id, CampaignStatus::FanningOut, CampaignStatus::Sending).await.unwrap());
        id
    }

    pub(crate) fn ledger(&self) -> &Arc<dyn SendLedger> {
        &self.app.ports.ledger
    }

    /// Runs the send queue's visible messages through the send worker's
    /// driver, as the worker does, and applies each decision; returns how
    /// many were handled.
    pub(crate) async fn work_send_queue(&self) -> usize {
        let messages = self.send_queue.receive(100, Duration::ZERO).await.unwrap();
        let deliveries = messages.iter().map(|m| crate::runtime::driver::Delivery {
            message_id: &m.message_id,
            body: m.body.expose(),
            receive_count: m.receive_count,
        });
        let decisions =
            crate::runtime::driver::drive_batch(crate::runtime::driver::SendJobs::new(&self.app), deliveries, || false)
                .await;
        for (index, decision) in &decisions {
            let handle = &messages[*index].receipt_handle;
            match decision {
                crate::domain::Decision::Ack => self.send_queue.delete(handle).await.unwrap(),
                crate::domain::Decision::Retry { after } => {
                    self.send_queue.change_visibility(handle, *after).await.unwrap()
                }
                crate::domain::Decision::DeadLetter => {}
            }
        }
        decisions.len()
    }

    /// Bodies of the visible messages on a queue (received, then left to reappear).
    pub(crate) async fn queued(queue: &SqliteQueue) -> Vec<String> {
        let received = queue.receive(100, Duration::ZERO).await.unwrap();
        for m in &received {
            queue.change_visibility(&m.receipt_handle, Duration::ZERO).await.unwrap();
        }
        received.into_iter().map(|m| m.body.into_inner()).collect()
    }
}
