//! The durable intake's branches: what the endpoint does (the same for known
//! and unknown addresses), what the worker does after failures, and the
//! per-client limits; in-memory stores, a scripted transport, a manual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{ConsentSubmission, IntakeOutcome, RequestProof};
use crate::app::AppError;
use crate::app::test_support::Harness;
use crate::domain::{BlindIndex, ContactId, EmailAddress, IntakeId, Sensitive};
use crate::ports::{
    BodyFilter, Clock, ContactRecord, ContactStore, IntakeStore, LimitKey, LimitWindow, PendingIntake, Queue,
    QueueError, ReceivedMessage, ScanPage, ShardSpec, StoreError, TransportErrorKind,
};

fn browser(h: &Harness) -> RequestProof {
    RequestProof { origin: Sensitive::new(Some(h.app.settings.own_origin())), ..Default::default() }
}

fn from_ip(h: &Harness, ip: &str) -> RequestProof {
    RequestProof { ip: Sensitive::new(Some(ip.parse().unwrap())), ..browser(h) }
}

fn signup(email: &str) -> ConsentSubmission {
    ConsentSubmission {
        form_id: "web-signup".into(),
        email: email.into(),
        categories: vec!["wellness-tips".into()],
        ..Default::default()
    }
}

async fn contact_of(h: &Harness, email: &str) -> Option<ContactId> {
    let index = h.app.keyring.blind_index.index(&EmailAddress::parse(email).unwrap());
    h.app.ports.contacts.find_by_email_index(&index).await.unwrap().map(|r| r.id)
}

/// Counts every call the use case makes to the contact store.
struct CountingContacts {
    inner: Arc<dyn ContactStore>,
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl ContactStore for CountingContacts {
    async fn put(&self, record: &ContactRecord) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(record).await
    }
    async fn get(&self, id: &ContactId) -> Result<Option<ContactRecord>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn find_by_email_index(&self, index: &BlindIndex) -> Result<Option<ContactRecord>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_email_index(index).await
    }
    async fn find_by_external_id(&self, id: &crate::domain::ExternalId) -> Result<Option<ContactRecord>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_external_id(id).await
    }
    async fn scan_shard(&self, shard: ShardSpec, cursor: Option<&str>, limit: usize) -> Result<ScanPage, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.scan_shard(shard, cursor, limit).await
    }
    async fn delete(&self, id: &ContactId) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(id).await
    }
    async fn replace_sealed(&self, id: &ContactId, expected: &[u8], sealed: &[u8]) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.replace_sealed(id, expected, sealed).await
    }
}

#[tokio::test]
async fn the_endpoint_does_the_same_work_for_a_known_and_an_unknown_address() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let h = Harness::with(
        |_| {},
        move |mut p| {
            p.contacts = Arc::new(CountingContacts { inner: p.contacts.clone(), calls: counted });
            p
        },
    );
    h.patient("known.probe@example.org", &[]).await;
    let before = calls.load(Ordering::SeqCst);

    h.app.consent.submit(signup("known.probe@example.org"), browser(&h)).await.unwrap();
    h.app.consent.submit(signup("new.probe@example.org"), browser(&h)).await.unwrap();

    assert_eq!(calls.load(Ordering::SeqCst), before, "the request path never asks whether an address is known");
    assert_eq!(Harness::queued(&h.send_queue).await.len(), 2, "one job each");
    assert_eq!(contact_of(&h, "new.probe@example.org").await, None, "the worker stores the contact, not the endpoint");
    assert_eq!(h.work_send_queue().await, 2);
    assert!(contact_of(&h, "new.probe@example.org").await.is_some());
    assert_eq!(h.transport.accepted().len(), 2, "known and unknown both get their confirmation");
}

#[tokio::test]
async fn a_transport_outage_then_recovery_delivers_exactly_one_confirmation() {
    let h = Harness::new();
    h.transport.fail_next(&[TransportErrorKind::Transient, TransportErrorKind::Transient]);

    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    h.work_send_queue().await;
    h.clock.advance(Duration::from_secs(60));
    h.work_send_queue().await;
    let during_the_outage = h.transport.accepted().len();
    h.clock.advance(Duration::from_secs(120));
    h.work_send_queue().await;
    h.clock.advance(Duration::from_secs(600));
    let after_recovery = h.work_send_queue().await;

    assert_eq!(during_the_outage, 0);
    assert_eq!(h.transport.attempts(), 3, "two failures, then the email left");
    assert_eq!(h.transport.accepted().len(), 1, "exactly one confirmation");
    assert_eq!(after_recovery, 0, "the job is done");
}

#[tokio::test]
async fn a_failed_send_does_not_spend_the_addresss_hourly_slot() {
    let h = Harness::new();
    h.transport.fail_next(&[TransportErrorKind::Permanent]);

    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    h.work_send_queue().await;
    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    h.work_send_queue().await;

    assert_eq!(h.transport.attempts(), 2);
    assert_eq!(h.transport.accepted().len(), 1, "the second request got the email the first could not");
}

/// An intake store whose next `remove_intake` fails: a crash after the
/// email left and before the request was cleared.
struct RemoveFailsOnce {
    inner: Arc<dyn IntakeStore>,
    failed: AtomicU32,
}

#[async_trait]
impl IntakeStore for RemoveFailsOnce {
    async fn put_intake(&self, intake: &PendingIntake) -> Result<(), StoreError> {
        self.inner.put_intake(intake).await
    }
    async fn intake(&self, id: &IntakeId, now: time::OffsetDateTime) -> Result<Option<PendingIntake>, StoreError> {
        self.inner.intake(id, now).await
    }
    async fn remove_intake(&self, id: &IntakeId) -> Result<(), StoreError> {
        if self.failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StoreError::unavailable_msg("scripted outage"));
        }
        self.inner.remove_intake(id).await
    }
    async fn count_requests(&self, keys: &[LimitKey], window: LimitWindow) -> Result<Vec<u32>, StoreError> {
        self.inner.count_requests(keys, window).await
    }
}

#[tokio::test]
async fn a_retry_after_the_email_left_sends_no_second_one_and_records_no_second_request() {
    let h = Harness::with(
        |_| {},
        |mut p| {
            p.intake = Arc::new(RemoveFailsOnce { inner: p.intake.clone(), failed: AtomicU32::new(0) });
            p
        },
    );

    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    h.work_send_queue().await;
    h.clock.advance(Duration::from_secs(60));
    h.work_send_queue().await;

    assert_eq!(h.transport.accepted().len(), 1);
    let contact = contact_of(&h, "jane.probe@example.org").await.unwrap();
    let history = h.app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(history.len(), 1, "one request entry: {history:?}");
    assert_eq!(Harness::queued(&h.send_queue).await.len(), 0);
}

/// A send queue that is down.
struct DownQueue;

#[async_trait]
impl Queue for DownQueue {
    async fn send_batch(&self, _: &[String]) -> Result<(), QueueError> {
        Err(QueueError::unavailable_msg("scripted outage"))
    }
    async fn send_delayed(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::unavailable_msg("scripted outage"))
    }
    async fn receive(&self, _: usize, _: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str) -> Result<(), QueueError> {
        Ok(())
    }
    async fn change_visibility(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Ok(())
    }
    async fn depth(&self) -> Result<(u64, u64), QueueError> {
        Ok((0, 0))
    }
    async fn redrive(&self, _: &BodyFilter) -> Result<u64, QueueError> {
        Ok(0)
    }
    async fn dead_lettered(&self, _: &BodyFilter) -> Result<Option<u64>, QueueError> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_queued_fails_and_leaves_nothing_waiting() {
    let h = Harness::with(
        |_| {},
        |mut p| {
            p.send_queue = Arc::new(DownQueue);
            p
        },
    );

    let answer = h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await;

    assert!(matches!(answer, Err(AppError::Queue(_))), "{answer:?}");
    let waiting = h.app.ports.intake.count_requests(&[], LimitWindow::holding(h.clock.now(), Duration::ZERO));
    assert_eq!(waiting.await.unwrap(), Vec::<u32>::new());
    assert_eq!(contact_of(&h, "jane.probe@example.org").await, None);
}

#[tokio::test]
async fn an_expired_request_is_gone_for_the_worker() {
    let h = Harness::new();
    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    let body = Harness::queued(&h.send_queue).await.remove(0);
    let job: crate::domain::ConfirmationJob = serde_json::from_str(&body).unwrap();

    h.clock.advance(h.app.settings.confirmation_ttl + Duration::from_secs(1));
    let outcome = h.app.consent.process_intake(&job.intake_id).await.unwrap();

    assert_eq!(outcome, IntakeOutcome::Gone);
    assert_eq!(contact_of(&h, "jane.probe@example.org").await, None);
}

#[tokio::test]
async fn an_address_is_limited_per_hour_with_the_time_to_wait() {
    let h = Harness::new();
    let limit = h.app.settings.consent_limits.per_address_per_hour;

    for i in 0..limit {
        let ip = format!("192.0.2.{i}");
        h.app.consent.submit(signup("jane.probe@example.org"), from_ip(&h, &ip)).await.unwrap();
    }
    let over = h.app.consent.submit(signup("jane.probe@example.org"), from_ip(&h, "198.51.100.1")).await;
    let other_address = h.app.consent.submit(signup("sam.probe@example.org"), from_ip(&h, "198.51.100.1")).await;
    let window_end = LimitWindow::holding(h.clock.now(), Duration::from_secs(3600)).end;
    let wait = (window_end - h.clock.now()).whole_seconds() as u64;
    h.clock.advance(Duration::from_secs(wait));
    let next_hour = h.app.consent.submit(signup("jane.probe@example.org"), from_ip(&h, "198.51.100.1")).await;

    match over {
        Err(AppError::RateLimited { retry_after_seconds }) => assert_eq!(retry_after_seconds, wait.max(1)),
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert!(other_address.is_ok() && next_hour.is_ok());
}

#[tokio::test]
async fn a_client_ip_is_limited_per_form_and_a_form_may_set_its_own_limit() {
    let h = Harness::with(
        |s| s.forms[0].limits = Some(crate::forms::FormLimits { per_ip_per_hour: Some(3), per_address_per_hour: None }),
        |p| p,
    );

    let mut answers = Vec::new();
    for i in 0..4 {
        answers.push(h.app.consent.submit(signup(&format!("p{i}.probe@example.org")), from_ip(&h, "192.0.2.7")).await);
    }
    let another_ip = h.app.consent.submit(signup("p9.probe@example.org"), from_ip(&h, "192.0.2.8")).await;

    assert!(answers[..3].iter().all(Result::is_ok));
    assert!(matches!(answers[3], Err(AppError::RateLimited { .. })), "{:?}", answers[3]);
    assert!(another_ip.is_ok());
    assert_eq!(Harness::queued(&h.send_queue).await.len(), 4, "a refused request queues nothing");
}

#[tokio::test]
async fn a_waiting_request_and_its_job_hold_no_address_and_no_ip() {
    let h = Harness::new();
    h.app.consent.submit(signup("jane.probe@example.org"), from_ip(&h, "192.0.2.44")).await.unwrap();
    let body = Harness::queued(&h.send_queue).await.remove(0);
    let job: crate::domain::ConfirmationJob = serde_json::from_str(&body).unwrap();

    let stored = h.app.ports.intake.intake(&job.intake_id, h.clock.now()).await.unwrap().unwrap();

    assert!(!body.contains("jane") && !body.contains("192.0.2.44"), "{body}");
    for sealed in [&stored.sealed_contact, &stored.sealed_request] {
        let text = String::from_utf8_lossy(sealed);
        assert!(!text.contains("jane") && !text.contains("192.0.2.44") && !text.contains("wellness"), "sealed");
    }
    assert!(!format!("{stored:?}").contains("jane"));
    let address = EmailAddress::parse("jane.probe@example.org").unwrap();
    let index = h.app.keyring.blind_index.index(&address);
    let tag = h.app.keyring.blind_index.tag("consent-limit", address.normalized().as_bytes());
    assert_ne!(tag, index.as_str(), "a counter's key is not the address's index");
}

#[tokio::test]
async fn a_single_opt_in_sign_up_enters_the_live_journeys_it_starts_once_even_when_the_job_is_retried() {
    let h = Harness::with(|s| s.forms.iter_mut().for_each(|f| f.double_opt_in = false), |p| p);
    let welcome = include_str!("../../../docs/journeys.example.json");
    let live = h.app.journeys.create(welcome).await.unwrap();
    h.app.journeys.launch(&live).await.unwrap();
    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();
    h.app.consent.submit(signup("jane.probe@example.org"), browser(&h)).await.unwrap();

    h.work_send_queue().await;

    let contact = contact_of(&h, "jane.probe@example.org").await.expect("the worker stored the contact");
    let entered = h.app.ports.journeys.enrolment(&live, &contact).await.unwrap().expect("entered at the grant");
    assert_eq!(entered.revision, 0, "the repeated request did not enter it again");
    assert!(h.transport.accepted().is_empty(), "single opt-in mails no confirmation");
}
