//! Journeys at run time: a contact entering, and the timer sweep that moves
//! every enrolment whose time has come.
//!
//! Exactly once per (journey, contact, step) comes from two conditional
//! writes already in place: a send step is a campaign of its own
//! (`journeys::step_campaign`), so its message goes through the send
//! ledger, consent, suppression, HIPAA authorization, frequency cap and rate
//! limiter like any campaign's, re-checked when the step runs; and an
//! enrolment moves only from the revision the sweep read, so two sweeps
//! (a duplicate timer, a crash and a retry) cannot both move a contact. A
//! sweep that dies after queueing a send and before moving the contact
//! queues it again next time; the ledger's claim makes that a no-op.
//!
//! A send step is left only once the ledger has settled its message: sent
//! (the walk goes on from then), or skipped or failed (consent withdrawn,
//! suppressed, refused: the contact leaves, `not_sent`). Until then the
//! enrolment comes due again every `SETTLE_RECHECK`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;

use super::AppError;
use super::journey_facts::ContactFacts;
use super::journeys::step_campaign;
use crate::config::Settings;
use crate::crypto::Envelope;
use crate::domain::journey::walk::{ExitReason, Move, next_move_traced};
use crate::domain::journey::{Entry, EventName, Journey, Reentry, StepKind};
use crate::domain::{ConsentCategory, ContactId, ExternalId, InvalidField, JourneyId, SendJob};
use crate::ports::{
    Clock, ContactStore, Enrolment, JourneyRecord, JourneyStatus, JourneyStore, LedgerState, Queue, SendLedger,
    Standing,
};

/// How long a send step waits before looking at the ledger again.
pub const SETTLE_RECHECK: Duration = Duration::from_secs(60);
/// How long an enrolment of a paused journey waits before it is looked at
/// again: pausing is one status change; the contacts stay where they are
/// and come due again this often until the journey is resumed.
pub const PAUSED_RECHECK: Duration = Duration::from_secs(15 * 60);

/// What one sweep did (counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Enrolments read as due.
    pub due: u64,
    /// Send jobs queued.
    pub queued: u64,
    /// Enrolments now waiting (a timer, a quiet hour, a send to settle).
    pub waiting: u64,
    pub exited: u64,
    /// Held because their journey is not live.
    pub held: u64,
    /// Moved by another sweep first (nothing done here).
    pub raced: u64,
    /// Contacts whose attributes were decrypted to walk them (one audit
    /// entry per sweep call says how many).
    pub read: u64,
}

impl SweepReport {
    /// One log line of the counts (a timer tick's, in either runtime).
    pub fn log(&self, what: &str) {
        tracing::info!(
            due = self.due,
            queued = self.queued,
            waiting = self.waiting,
            exited = self.exited,
            held = self.held,
            raced = self.raced,
            read = self.read,
            "{what}"
        );
    }

    pub fn add(&mut self, other: &SweepReport) {
        self.due += other.due;
        self.queued += other.queued;
        self.waiting += other.waiting;
        self.exited += other.exited;
        self.held += other.held;
        self.raced += other.raced;
        self.read += other.read;
    }
}

/// How far ahead of the stack's clock an event's time may be (the caller's
/// clock may run a little fast); later is refused.
pub const EVENT_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Enrolments one sweep call reads: a page of the due index.
pub const SWEEP_BATCH: usize = 100;

/// Contacts of a page walked at once. Each walk waits on a few store
/// round trips; side by side, a page takes about as long as its slowest
/// walk instead of the sum of them.
pub const SWEEP_CONCURRENCY: usize = 16;

/// A contact's entry into a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolOutcome {
    Entered,
    /// Already walking it, or re-entry does not allow it yet.
    AlreadyIn,
    /// The journey is not live.
    NotLive,
    /// The journey's cap of contacts has entered.
    Capped,
}

/// The latest exit that lets a contact entering at `at` in again, if
/// re-entry is allowed at all.
pub(super) fn reenter_before(journey: &Journey, at: OffsetDateTime) -> Option<OffsetDateTime> {
    match journey.reentry() {
        Reentry::Never => None,
        Reentry::After(wait) => Some(at - wait),
    }
}

/// Whether a contact with this enrolment (or none) may enter: none yet, or
/// (re-entry) one that left at or before `reenter_before`. The store's
/// `enrol` decides again, conditionally; this saves a write that would fail.
pub(super) fn may_enter(present: Option<&Enrolment>, reenter_before: Option<OffsetDateTime>) -> bool {
    match (present.map(|e| &e.standing), reenter_before) {
        (None, _) => true,
        (Some(Standing::Exited { at, .. }), Some(before)) => *at <= before,
        _ => false,
    }
}

pub struct JourneyRunner {
    pub(super) journeys: Arc<dyn JourneyStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) ledger: Arc<dyn SendLedger>,
    /// Reads the engagement a branch's or exit rule's segment asks about.
    pub(super) judge: Arc<super::AudienceJudge>,
    pub(super) send_queue: Arc<dyn Queue>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) settings: Arc<Settings>,
    pub(super) audit: Arc<super::Auditor>,
    pub(super) clock: Arc<dyn Clock>,
}

/// One journey version as the sweep uses it.
struct Loaded {
    status: JourneyStatus,
    journey: Journey,
    key: String,
}

impl JourneyRunner {
    /// Enrols the contact at the journey's latest version: it stands at the
    /// first step, due now; the next sweep walks it.
    pub async fn enrol(&self, journey: &JourneyId, contact: &ContactId) -> Result<EnrolOutcome, AppError> {
        let Some(record) = self.journeys.get(journey).await? else { return Err(AppError::NotFound("journey")) };
        if record.status != JourneyStatus::Live {
            return Ok(EnrolOutcome::NotLive);
        }
        let parsed = self.parse(&record.definition)?;
        self.enrol_at(&record, &parsed, contact, self.clock.now()).await
    }

    /// Enrols the contact in `journey` (the parsed latest version of
    /// `record`, which the caller found live) as of `entered_at`: now, or
    /// for a date entry the start of the contact's day, which may be ahead
    /// (the enrolment is due then). Re-entry counts back from `entered_at`.
    /// A capped journey takes a slot only for a contact that can enter, and
    /// gives it back if the entry then loses a race.
    pub(super) async fn enrol_at(
        &self,
        record: &JourneyRecord,
        journey: &Journey,
        contact: &ContactId,
        entered_at: OffsetDateTime,
    ) -> Result<EnrolOutcome, AppError> {
        let reenter_before = reenter_before(journey, entered_at);
        let start = journey.start().id.clone();
        let enrolment = Enrolment::at_step(record.id, record.version, *contact, start, entered_at, entered_at);
        let Some(cap) = journey.cap() else { return self.write_entry(&enrolment, reenter_before).await };
        let present = self.journeys.enrolment(&record.id, contact).await?;
        if !may_enter(present.as_ref(), reenter_before) {
            return Ok(EnrolOutcome::AlreadyIn);
        }
        if !self.journeys.take_entry_slot(&record.id, cap).await? {
            return Ok(EnrolOutcome::Capped);
        }
        let outcome = self.write_entry(&enrolment, reenter_before).await;
        if !matches!(outcome, Ok(EnrolOutcome::Entered)) {
            self.journeys.release_entry_slot(&record.id).await?;
        }
        outcome
    }

    async fn write_entry(
        &self,
        enrolment: &Enrolment,
        reenter_before: Option<OffsetDateTime>,
    ) -> Result<EnrolOutcome, AppError> {
        Ok(if self.journeys.enrol(enrolment, reenter_before).await? {
            EnrolOutcome::Entered
        } else {
            EnrolOutcome::AlreadyIn
        })
    }

    /// Enrols the contact in every live journey a confirmed sign-up for one
    /// of `topics` starts; answers how many it entered.
    pub async fn enter_on_consent(&self, contact: &ContactId, topics: &[ConsentCategory]) -> Result<u32, AppError> {
        if topics.is_empty() {
            return Ok(0);
        }
        self.enter_live(contact, |entry| matches!(entry, Entry::ConsentConfirmed(topic) if topics.contains(topic)))
            .await
    }

    /// Enrols the contact in every live journey whose entry `starts` says
    /// yes to; answers how many it entered. Journeys are few (an operator's
    /// list), so reading them all per sign-up or event is one small read.
    async fn enter_live(&self, contact: &ContactId, starts: impl Fn(&Entry) -> bool) -> Result<u32, AppError> {
        let mut entered = 0;
        for record in self.journeys.list().await? {
            if record.status != JourneyStatus::Live {
                continue;
            }
            let starts = match self.parse(&record.definition) {
                Ok(journey) => starts(journey.entry()),
                Err(e) => {
                    tracing::warn!(journey_id = %record.id, error = %e, "journey skipped: it no longer parses");
                    false
                }
            };
            if starts && self.enrol(&record.id, contact).await? == EnrolOutcome::Entered {
                entered += 1;
            }
        }
        Ok(entered)
    }

    /// The stack's time, for an event that does not say when it happened.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// `POST /v1/events`: records that `name` happened to the contact with
    /// this external ID at `at`, then enrols it in every live journey the
    /// event starts. Goals, exit rules and event branches read it when the
    /// contact's next step runs. Answers how many journeys it entered.
    pub async fn record_event(
        &self,
        external: &ExternalId,
        name: &EventName,
        at: OffsetDateTime,
    ) -> Result<u32, AppError> {
        if at > self.clock.now() + EVENT_CLOCK_SKEW {
            return Err(InvalidField::new("occurred_at", "is in the future").into());
        }
        let contact = self.contacts.find_by_external_id(external).await?.ok_or(AppError::NotFound("contact"))?.id;
        self.journeys.record_event(&contact, name, at).await?;
        self.enter_live(&contact, |entry| matches!(entry, Entry::Event(event) if event == name)).await
    }

    /// Sweeps batch after batch until fewer than a batch are due or
    /// `batches` have run (what one timer tick does; the next tick takes
    /// the rest), and answers the total.
    pub async fn drain(&self, batches: u32) -> Result<SweepReport, AppError> {
        self.drain_while(batches, || true).await
    }

    /// [`Self::drain`], starting another batch only while `more_time()`
    /// says so (a Lambda invocation's deadline).
    pub async fn drain_while(&self, batches: u32, more_time: impl Fn() -> bool) -> Result<SweepReport, AppError> {
        let mut total = SweepReport::default();
        for batch in 0..batches {
            if batch > 0 && !more_time() {
                break;
            }
            let report = self.sweep(SWEEP_BATCH).await?;
            total.add(&report);
            // A batch with nothing moved is all held or raced: the rest waits
            // for the next tick rather than re-reading the same rows.
            let moved = report.queued + report.waiting + report.exited;
            if report.due < SWEEP_BATCH as u64 || moved == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Moves up to `limit` enrolments due by now.
    pub async fn sweep(&self, limit: usize) -> Result<SweepReport, AppError> {
        let now = self.clock.now();
        let due = self.journeys.due(now, limit).await?;
        let mut report = SweepReport { due: due.len() as u64, ..SweepReport::default() };
        // Each journey version once, then the page's contacts side by side:
        // each walk is a few reads and one conditional write of its own row.
        let mut loaded: HashMap<(JourneyId, u32), Option<Arc<Loaded>>> = HashMap::new();
        for enrolment in &due {
            let key = (enrolment.journey, enrolment.version);
            if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(key) {
                slot.insert(self.load(&enrolment.journey, enrolment.version).await?.map(Arc::new));
            }
        }
        let walks = futures::stream::iter(due)
            .map(|enrolment| {
                let journey = loaded.get(&(enrolment.journey, enrolment.version)).cloned().flatten();
                async move {
                    let (mut report, mut sends) = (SweepReport::default(), Vec::new());
                    let walked = match journey {
                        Some(journey) => self.step(&journey, enrolment, now, &mut report, &mut sends).await,
                        // The journey or its version is gone: nothing can move it.
                        None => {
                            self.write(&enrolment, exited(&enrolment, ExitReason::Completed, now), &mut report).await
                        }
                    };
                    // A failed walk keeps its counts: what it decrypted is audited below.
                    (report, walked.map(|()| sends))
                }
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let (mut sends, mut failed): (Vec<(SendJob, Enrolment, Enrolment)>, Option<AppError>) = (Vec::new(), None);
        for (walked, queued) in walks {
            report.add(&walked);
            match queued {
                Ok(queued) => sends.extend(queued),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if report.read > 0 {
            // Every attribute of each contact walked was decrypted: logged as
            // fan-out and the sender log theirs, one entry per page, failed
            // walks included.
            let reason = format!("journey sweep: attributes read for {} contacts", report.read);
            let attributes = self.settings.schema.names();
            self.audit.record(super::audit::JOURNEY_ACTOR, "journey.sweep", None, attributes, reason).await?;
        }
        // The page's send jobs in batches of ten, then each contact moved on:
        // a crash between the two queues them again next time, where the
        // ledger's claim makes the repeat a no-op.
        if !sends.is_empty() {
            let jobs: Vec<String> = sends.iter().map(|(job, _, _)| job.to_body()).collect();
            self.send_queue.send_batch(&jobs).await?;
            report.queued += sends.len() as u64;
            let writes = futures::stream::iter(sends)
                .map(|(_, read, next)| async move {
                    let mut written = SweepReport::default();
                    self.write(&read, next, &mut written).await.map(|()| written)
                })
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            for written in writes {
                report.add(&written?);
            }
        }
        // The walks that failed are still due: the next sweep tries them again.
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn load(&self, id: &JourneyId, version: u32) -> Result<Option<Loaded>, AppError> {
        let Some(record) = self.journeys.get(id).await? else { return Ok(None) };
        let Some(definition) = self.journeys.version(id, version).await? else { return Ok(None) };
        let journey = self.parse(&definition)?;
        Ok(Some(Loaded { status: record.status, journey, key: format!("{id}/v{version}") }))
    }

    fn parse(&self, definition: &str) -> Result<Journey, AppError> {
        Journey::parse(definition, &self.settings.schema).map_err(|e| {
            AppError::Store(crate::ports::StoreError::corrupt(format!("stored journey no longer parses: {e}")))
        })
    }

    async fn step(
        &self,
        loaded: &Loaded,
        enrolment: Enrolment,
        now: OffsetDateTime,
        report: &mut SweepReport,
        sends: &mut Vec<(SendJob, Enrolment, Enrolment)>,
    ) -> Result<(), AppError> {
        let Standing::Active { position, .. } = &enrolment.standing else { return Ok(()) };
        let position = &position.clone();
        if loaded.status != JourneyStatus::Live {
            report.held += 1;
            let mut next = enrolment.clone();
            next.revision = enrolment.revision + 1;
            next.standing = Standing::Active { position: position.clone(), due_at: now + PAUSED_RECHECK };
            if !self.journeys.advance(&next).await? {
                report.raced += 1;
            }
            return Ok(());
        }
        let Some(record) = self.contacts.get(&enrolment.contact).await? else {
            return self.write(&enrolment, exited(&enrolment, ExitReason::NotSent, now), report).await;
        };
        let journey = &loaded.journey;
        let mut next = enrolment.clone();
        // Engagement and the settled state of every send step the contact
        // reached, in one ledger read each.
        let mut rows = HashMap::new();
        for step in journey.steps().iter().filter(|s| matches!(s.kind, StepKind::Send { .. })) {
            let sent_here = next.sent.iter().any(|(s, _)| s == &step.id);
            if sent_here || step.id == position.step {
                let campaign = step_campaign(&enrolment.journey, enrolment.version, &step.id);
                if let Some(row) = self.ledger.row(&campaign, &enrolment.contact).await? {
                    rows.insert(step.id.clone(), row);
                }
            }
        }
        if let Some(row) = rows.get(&position.step)
            && !next.sent.iter().any(|(s, _)| s == &position.step)
        {
            match &row.state {
                // Sent when it was last queued, at the latest (a sweep may
                // come by long after): waits count from then.
                LedgerState::Sent { .. } => {
                    let queued = enrolment.due_at().map_or(now, |due| due - SETTLE_RECHECK);
                    next.sent.push((position.step.clone(), queued.max(position.arrived_at).min(now)));
                }
                LedgerState::Skipped { .. } | LedgerState::Failed { .. } => {
                    return self.write(&enrolment, exited(&enrolment, ExitReason::NotSent, now), report).await;
                }
                LedgerState::Claimed { .. } => {}
            }
        }
        let (_, profile) = self.envelope.open(&record.id, &record.sealed, None).await?;
        report.read += 1;
        let events =
            if journey.reads_events() { self.journeys.events_of(&enrolment.contact).await? } else { Vec::new() };
        let facts = ContactFacts {
            schema: &self.settings.schema,
            profile: &profile,
            today: now.date(),
            sent: &next.sent,
            rows: &rows,
            events: &events,
            behaviour: self.judge.behaviour_of(journey.segments(), &enrolment.contact).await?,
        };
        let mut trail = Vec::new();
        let (key, contact, entered_at) = (&loaded.key, &enrolment.contact, enrolment.entered_at);
        let moved = next_move_traced(journey, key, contact, position, entered_at, &facts, now, &mut trail);
        // Where the walk went (each branch's way, each split's arm), for the report.
        for (step, _) in trail {
            if !next.path.contains(&step) {
                next.path.push(step);
            }
        }
        match moved {
            Move::Send { at } => {
                let campaign = step_campaign(&enrolment.journey, enrolment.version, &at.step);
                let job = SendJob { campaign_id: campaign, contact_id: enrolment.contact };
                next.standing = Standing::Active { position: at, due_at: now + SETTLE_RECHECK };
                // Queued with the page's others before the contact moves on.
                sends.push((job, enrolment, next));
                return Ok(());
            }
            Move::Wait { at, until } => next.standing = Standing::Active { position: at, due_at: until },
            Move::Exit { from, reason } => next.standing = Standing::Exited { from, reason, at: now },
        }
        self.write(&enrolment, next, report).await
    }

    /// Writes `next` over `read` (its revision one up), counting what it did.
    async fn write(&self, read: &Enrolment, mut next: Enrolment, report: &mut SweepReport) -> Result<(), AppError> {
        next.revision = read.revision + 1;
        if !self.journeys.advance(&next).await? {
            report.raced += 1;
        } else if matches!(next.standing, Standing::Exited { .. }) {
            report.exited += 1;
        } else {
            report.waiting += 1;
        }
        Ok(())
    }
}

fn exited(enrolment: &Enrolment, reason: ExitReason, now: OffsetDateTime) -> Enrolment {
    let from = match &enrolment.standing {
        Standing::Active { position, .. } => position.step.clone(),
        Standing::Exited { from, .. } => from.clone(),
    };
    Enrolment { standing: Standing::Exited { from, reason, at: now }, ..enrolment.clone() }
}
