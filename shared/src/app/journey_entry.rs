//! Entry on a segment or a date attribute at run time: who enters is found
//! by reading the contacts, one pass a day per live journey, moved on by
//! the journey timer's ticks page by page (a pass over a large population
//! spans many ticks; where it stands is durable, `EntryScan`).
//!
//! A pass enrols every contact the journey could mail now (not suppressed,
//! consent to its category, a HIPAA authorization where a send step needs
//! one) that the entry takes in (`domain::journey::entry`): a segment
//! entry, who matches now and has not entered (or may re-enter); a date
//! entry, whose day begins in the pass's window, due at local midnight of
//! that day, up to `ENTRY_SCAN_AHEAD` ahead, so a contact is enrolled
//! before its day begins and the sweep moves it on time. Each pass's
//! window starts where the last one's ended: days missed while the timer
//! was away enter at the next pass, late rather than never.
//!
//! Enrolling is the store's conditional write (one enrolment per journey
//! and contact), so two overlapping ticks, or a page read twice after a
//! crash, enter nobody twice. Each page of decrypted contacts is one
//! `journey.entry` audit entry.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::audit::JOURNEY_ACTOR;
use super::journey_facts::ContactFacts;
use super::journey_runner::{EnrolOutcome, JourneyRunner, may_enter, reenter_before};
use super::journey_simulation::{needs_hipaa, no_rows};
use super::judge::{AudienceJudge, Verdict};
use super::{AppError, Auditor};
use crate::config::Settings;
use crate::crypto::Envelope;
use crate::domain::journey::entry::{EntryWindow, entry_moment};

use crate::domain::journey::{Entry, EventName, Journey};
use crate::domain::segment::Behaviour;
use crate::ports::{
    Clock, ContactRecord, ContactStore, EntryScan, JourneyRecord, JourneyStatus, JourneyStore, ShardSpec,
};

/// How often a live journey's contacts are read for who enters.
pub const ENTRY_SCAN_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How far past its start a pass enrols date entrants: the next pass's
/// start and half a day more, so a pass that starts or runs late still
/// finds each contact enrolled before its day begins.
pub const ENTRY_SCAN_AHEAD: Duration = Duration::from_secs(36 * 3600);

/// What the entry scans of one tick did (counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    /// Journeys whose pass this tick moved on.
    pub journeys: u64,
    /// Contacts whose attributes were decrypted.
    pub read: u64,
    pub entered: u64,
    /// Passes that reached the last contact this tick.
    pub completed: u64,
}

impl EntryReport {
    pub fn log(&self, what: &str) {
        tracing::info!(
            journeys = self.journeys,
            read = self.read,
            entered = self.entered,
            completed = self.completed,
            "{what}"
        );
    }
}

pub struct JourneyEntries {
    pub(super) journeys: Arc<dyn JourneyStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) judge: Arc<AudienceJudge>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) audit: Arc<Auditor>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) runner: Arc<JourneyRunner>,
}

impl JourneyEntries {
    /// Moves every live segment- or date-entry journey's pass on, a page at
    /// a time, while `more_time()` says so: a pass begins once every
    /// [`ENTRY_SCAN_EVERY`]; one under way goes on from its cursor. One
    /// page is read whatever the time left, so a pass always moves on.
    pub async fn scan_while(&self, more_time: impl Fn() -> bool) -> Result<EntryReport, AppError> {
        let mut report = EntryReport::default();
        for record in self.journeys.list().await? {
            if record.status != JourneyStatus::Live {
                continue;
            }
            let journey = match Journey::parse(&record.definition, &self.settings.schema) {
                Ok(journey) if matches!(journey.entry(), Entry::Segment(_) | Entry::Date(_)) => journey,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(journey_id = %record.id, error = %e, "journey skipped: it no longer parses");
                    continue;
                }
            };
            // At least one page a tick, whatever the time left.
            if report.journeys > 0 && !more_time() {
                break;
            }
            self.scan(&record, &journey, &more_time, &mut report).await?;
        }
        Ok(report)
    }

    /// One journey's pass: begun if one is due, then page after page.
    async fn scan(
        &self,
        record: &JourneyRecord,
        journey: &Journey,
        more_time: &impl Fn() -> bool,
        report: &mut EntryReport,
    ) -> Result<(), AppError> {
        let Some(mut scan) = self.pass_under_way(record).await? else { return Ok(()) };
        report.journeys += 1;
        let whole = ShardSpec { index: 0, total: 1 };
        loop {
            let page = self.contacts.scan_shard(whole, scan.cursor.as_deref(), self.settings.fanout_page_size).await?;
            let entered = self.enter_page(record, journey, &scan, &page.records, report).await?;
            let next = EntryScan {
                complete: page.next.is_none(),
                cursor: page.next,
                entered: scan.entered + entered,
                revision: scan.revision + 1,
                ..scan
            };
            // Another tick moved this pass on first: it goes on from there.
            if !self.journeys.save_entry_scan(&record.id, &next).await? {
                return Ok(());
            }
            scan = next;
            if scan.complete {
                report.completed += 1;
                tracing::info!(journey_id = %record.id, entered = scan.entered, "journey entry pass complete");
                return Ok(());
            }
            if !more_time() {
                return Ok(());
            }
        }
    }

    /// The pass to move on: the one under way, or a new one once the last
    /// is a day old (none if another tick began it first).
    async fn pass_under_way(&self, record: &JourneyRecord) -> Result<Option<EntryScan>, AppError> {
        let now = self.clock.now();
        let last = match self.journeys.entry_scan(&record.id).await? {
            Some(scan) if !scan.complete => return Ok(Some(scan)),
            Some(done) if now < done.started_at + ENTRY_SCAN_EVERY => return Ok(None),
            last => last,
        };
        let next = EntryScan {
            started_at: now,
            from: last.as_ref().map(|l| l.until),
            until: now + ENTRY_SCAN_AHEAD,
            cursor: None,
            complete: false,
            entered: 0,
            revision: last.map_or(0, |l| l.revision + 1),
        };
        Ok(self.journeys.save_entry_scan(&record.id, &next).await?.then_some(next))
    }

    /// What a segment entry's rules on engagement need (nothing for a date
    /// entry). Only the entry's: the pass reads every contact, most of whom
    /// do not enter; branches and exit rules read theirs when the sweep
    /// walks the contact.
    async fn behaviour_for(&self, journey: &Journey, contact: &ContactRecord) -> Result<Behaviour, AppError> {
        match journey.entry() {
            Entry::Segment(segment) => self.judge.behaviour(segment, &contact.id).await,
            _ => Ok(Behaviour::default()),
        }
    }

    /// Enrols the page's contacts the entry takes in; answers how many.
    async fn enter_page(
        &self,
        record: &JourneyRecord,
        journey: &Journey,
        scan: &EntryScan,
        contacts: &[ContactRecord],
        report: &mut EntryReport,
    ) -> Result<u64, AppError> {
        let now = self.clock.now();
        let window = EntryWindow { now, from: scan.from, until: scan.until };
        let facts = self.judge.page_facts_for(journey.category(), contacts).await?;
        let needs_hipaa = needs_hipaa(journey);
        let no_events: [(EventName, OffsetDateTime); 0] = [];
        let (mut read, mut entered) = (0u64, 0u64);
        let outcome = async {
            for contact in contacts {
                let verdict = AudienceJudge::standing(journey.category(), needs_hipaa, contact, &facts, now);
                if verdict != Verdict::Include {
                    continue;
                }
                let (_, profile) = self.envelope.open_where(&contact.id, &contact.sealed, |_| true).await?;
                read += 1;
                let facts = ContactFacts {
                    schema: &self.settings.schema,
                    profile: &profile,
                    today: now.date(),
                    sent: &[],
                    rows: no_rows(),
                    events: &no_events,
                    behaviour: self.behaviour_for(journey, contact).await?,
                };
                let Ok(at) = entry_moment(journey, &facts, &window) else { continue };
                // Most of a segment's contacts entered on an earlier pass: a
                // read says so for less than a refused conditional write.
                let present = self.journeys.enrolment(&record.id, &contact.id).await?;
                if may_enter(present.as_ref(), reenter_before(journey, at))
                    && self.runner.enrol_at(record, journey, &contact.id, at).await? == EnrolOutcome::Entered
                {
                    entered += 1;
                }
            }
            Ok::<(), AppError>(())
        }
        .await;
        report.read += read;
        report.entered += entered;
        if read > 0 {
            // Audited whether or not the page went through: what was decrypted was read.
            let reason = format!("journey {} entry scan: attributes read for {read} contacts", record.id);
            let attributes = self.settings.schema.names();
            self.audit.record(JOURNEY_ACTOR, "journey.entry", None, attributes, reason).await?;
        }
        outcome.map(|()| entered)
    }
}
