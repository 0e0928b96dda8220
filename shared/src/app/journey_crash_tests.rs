//! A sweep that dies mid-step: the send job is queued, then the store
//! fails before the contact moves on (a crash, a throttled table). The
//! next sweep finds the contact still due and queues the same job again;
//! the send ledger's claim makes the repeat a no-op. One email, and the
//! contact goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::journey_runner::SETTLE_RECHECK;
use super::test_support::Harness;
use crate::domain::journey::{EventName, StepId};
use crate::domain::{ContactId, JourneyId};
use crate::ports::{Enrolment, EntryScan, JourneyRecord, JourneyStatus, JourneyStore, Standing, StoreError};

/// The journey store, whose `advance` fails while `down` is set.
struct FailsToAdvance {
    inner: Arc<dyn JourneyStore>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl JourneyStore for FailsToAdvance {
    async fn create(&self, record: &JourneyRecord) -> Result<bool, StoreError> {
        self.inner.create(record).await
    }
    async fn get(&self, id: &JourneyId) -> Result<Option<JourneyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn version(&self, id: &JourneyId, version: u32) -> Result<Option<String>, StoreError> {
        self.inner.version(id, version).await
    }
    async fn add_version(&self, id: &JourneyId, latest: u32, definition: &str) -> Result<bool, StoreError> {
        self.inner.add_version(id, latest, definition).await
    }
    async fn list(&self) -> Result<Vec<JourneyRecord>, StoreError> {
        self.inner.list().await
    }
    async fn transition(&self, id: &JourneyId, from: JourneyStatus, to: JourneyStatus) -> Result<bool, StoreError> {
        self.inner.transition(id, from, to).await
    }
    async fn enrol(&self, enrolment: &Enrolment, reenter_before: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        self.inner.enrol(enrolment, reenter_before).await
    }
    async fn enrolment(&self, journey: &JourneyId, contact: &ContactId) -> Result<Option<Enrolment>, StoreError> {
        self.inner.enrolment(journey, contact).await
    }
    async fn advance(&self, next: &Enrolment) -> Result<bool, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable_msg("journeys table throttled (test)"));
        }
        self.inner.advance(next).await
    }
    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Enrolment>, StoreError> {
        self.inner.due(now, limit).await
    }
    async fn enrolments(&self, journey: &JourneyId) -> Result<Vec<Enrolment>, StoreError> {
        self.inner.enrolments(journey).await
    }
    async fn entry_scan(&self, journey: &JourneyId) -> Result<Option<EntryScan>, StoreError> {
        self.inner.entry_scan(journey).await
    }
    async fn save_entry_scan(&self, journey: &JourneyId, next: &EntryScan) -> Result<bool, StoreError> {
        self.inner.save_entry_scan(journey, next).await
    }
    async fn take_entry_slot(&self, journey: &JourneyId, cap: u32) -> Result<bool, StoreError> {
        self.inner.take_entry_slot(journey, cap).await
    }
    async fn release_entry_slot(&self, journey: &JourneyId) -> Result<(), StoreError> {
        self.inner.release_entry_slot(journey).await
    }
    async fn record_event(&self, contact: &ContactId, name: &EventName, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.record_event(contact, name, at).await
    }
    async fn events_of(&self, contact: &ContactId) -> Result<Vec<(EventName, OffsetDateTime)>, StoreError> {
        self.inner.events_of(contact).await
    }
}

const WELCOME: &str = r#"{"name": "Welcome", "category": "wellness-tips",
  "entry": {"consent_confirmed": {"topic": "wellness-tips"}},
  "steps": [{"type": "send", "id": "welcome", "next": "wait",
    "template": {"subject": "Welcome", "html": "<p>Hi</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>", "text": "Hi {{ unsubscribe_url }}"}},
    {"type": "wait", "id": "wait", "days": 3}]}"#;

/// A harness whose journey store fails `advance` while the flag is set,
/// with the welcome journey live and one patient in it.
async fn crashing() -> (Harness, Arc<AtomicBool>, JourneyId, ContactId) {
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let h = Harness::with(
        |_| {},
        move |mut p| {
            p.journeys = Arc::new(FailsToAdvance { inner: p.journeys.clone(), down: flag });
            p
        },
    );
    let journey = h.app.journeys.create(WELCOME).await.unwrap();
    h.app.journeys.launch(&journey).await.unwrap();
    let contact = h.patient("crash@example.com", &["wellness-tips"]).await;
    h.app.journey_runner.enrol(&journey, &contact).await.unwrap();
    (h, down, journey, contact)
}

async fn waits(h: &Harness, journey: &JourneyId, contact: &ContactId) -> bool {
    let standing = h.app.ports.journeys.enrolment(journey, contact).await.unwrap().unwrap().standing;
    matches!(standing, Standing::Active { ref position, .. } if position.step == StepId::parse("wait").unwrap())
}

#[tokio::test]
async fn a_sweep_that_dies_after_queueing_a_send_is_retried_before_the_send_went_and_the_ledger_stops_the_repeat() {
    let (h, down, journey, contact) = crashing().await;

    down.store(true, Ordering::SeqCst);
    let crashed = h.app.journey_runner.sweep(100).await;
    down.store(false, Ordering::SeqCst);
    let retried = h.app.journey_runner.sweep(100).await.unwrap();
    h.work_send_queue().await;
    h.clock.advance(SETTLE_RECHECK);
    h.app.journey_runner.sweep(100).await.unwrap();

    assert!(crashed.is_err(), "the store failure ends the sweep");
    assert_eq!(retried.queued, 1, "the contact was still due: its job is queued a second time");
    assert_eq!(h.transport.accepted().len(), 1, "one email: the ledger's claim made the second job a no-op");
    assert!(waits(&h, &journey, &contact).await, "and the contact went on to the wait");
}

#[tokio::test]
async fn a_sweep_that_dies_after_queueing_a_send_is_retried_after_the_send_went_and_moves_on_without_queueing() {
    let (h, down, journey, contact) = crashing().await;

    down.store(true, Ordering::SeqCst);
    let crashed = h.app.journey_runner.sweep(100).await;
    h.work_send_queue().await;
    down.store(false, Ordering::SeqCst);
    let retried = h.app.journey_runner.sweep(100).await.unwrap();
    h.work_send_queue().await;

    assert!(crashed.is_err());
    assert_eq!((retried.queued, retried.waiting), (0, 1), "the ledger says sent: nothing queued again");
    assert_eq!(h.transport.accepted().len(), 1);
    assert!(waits(&h, &journey, &contact).await);
}

#[tokio::test]
async fn a_sweep_that_fails_after_decrypting_still_writes_its_audit_entry() {
    let (h, down, _, _) = crashing().await;

    down.store(true, Ordering::SeqCst);
    let crashed = h.app.journey_runner.sweep(100).await;

    let entries = h.app.audit.entries(0, 100).await.unwrap();
    let sweeps: Vec<_> = entries.iter().filter(|e| e.event.action == "journey.sweep").collect();
    assert!(crashed.is_err(), "the store failure ends the sweep");
    assert_eq!(sweeps.len(), 1, "the contact it decrypted is in the audit log all the same");
    assert!(sweeps[0].event.reason.contains("1 contacts"), "{:?}", sweeps[0].event.reason);
}
