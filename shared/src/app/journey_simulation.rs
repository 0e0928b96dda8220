//! A journey run over the current population on a virtual clock before
//! launch, no email sent: per step, how many contacts would reach it and
//! when, how many it would mail, how many would still wait at the horizon,
//! where they would leave and why, and the linter's verdict on every send
//! step. Counts only, through the small-cell rule; a step's first and last
//! times are shown only where its count is not suppressed (one contact's
//! time would tell its last visit or birthday).
//!
//! Who enters: every contact the journey could mail now (not suppressed,
//! consent to its category, a HIPAA authorization where a send step needs
//! one), and of those, for a segment entry, who matches it; for a date
//! entry, who has the date, entering on the day it falls on within the
//! horizon; for a consent or event entry, everyone, as if it happened now.
//! Each contact is walked with the executor's own walk on the facts the
//! sweep reads (`journey_facts`), so a run on the same clock does the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use super::audit::JOURNEY_ACTOR;
use super::journey_facts::ContactFacts;
use super::journey_report::{HOLDOUT, Link, kind, links};
use super::journeys::check_send_step;
use super::judge::{AudienceJudge, Verdict};
use super::report::Cell;
use super::{AppError, Auditor};
use crate::config::Settings;
use crate::crypto::Envelope;
use crate::domain::journey::entry::{EntryWindow, NotEntering, entry_moment};
use crate::domain::journey::simulate::{Simulation, simulate};
use crate::domain::journey::walk::{ExitReason, Facts};
use crate::domain::journey::{Entry, EventName, Journey, StepId, StepKind};
use crate::domain::segment::Behaviour;
use crate::domain::{CampaignPurpose, ContactId, JourneyId, Profile};
use crate::ports::{Clock, ContactStore, JourneyStore, ShardSpec};

/// The horizon when none is asked for, and the longest allowed.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
pub const MAX_HORIZON_DAYS: u32 = 366;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulationReport {
    pub id: JourneyId,
    pub name: String,
    pub version: u32,
    /// False when the time budget ran out first: the figures are of the
    /// `evaluated` contacts read so far.
    pub complete: bool,
    pub evaluated: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub entered: Cell,
    /// Contacts that would not enter, by reason.
    pub not_entered: BTreeMap<&'static str, Cell>,
    pub steps: Vec<SimulatedStep>,
    pub min_cell: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedStep {
    pub step: String,
    pub kind: &'static str,
    pub reached: Cell,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Cell>,
    /// Still waiting here at the horizon.
    pub waiting: Cell,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub first: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last: Option<OffsetDateTime>,
    pub exited: BTreeMap<&'static str, Cell>,
    /// Send steps: `ok`, or what the linter refuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<String>,
    /// Each way on from here (a branch's `yes` and `no`, a split's arms,
    /// its holdout) and how many contacts would take it.
    pub next: Vec<Link>,
}

/// Why a contact of the population would not enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NotEntered {
    Suppressed,
    NoConsent,
    ConsentPending,
    ConsentWithdrawn,
    NoHipaaAuthorization,
    NotInSegment,
    /// A date entry: the contact has no such date.
    NoDate,
    /// A date entry: the day falls after the horizon (or has passed).
    NotDue,
}

impl NotEntered {
    const ALL: [NotEntered; 8] = [
        NotEntered::Suppressed,
        NotEntered::NoConsent,
        NotEntered::ConsentPending,
        NotEntered::ConsentWithdrawn,
        NotEntered::NoHipaaAuthorization,
        NotEntered::NotInSegment,
        NotEntered::NoDate,
        NotEntered::NotDue,
    ];

    fn as_str(self) -> &'static str {
        match self {
            NotEntered::Suppressed => "suppressed",
            NotEntered::NoConsent => "no_consent",
            NotEntered::ConsentPending => "consent_pending",
            NotEntered::ConsentWithdrawn => "consent_withdrawn",
            NotEntered::NoHipaaAuthorization => "no_hipaa_authorization",
            NotEntered::NotInSegment => "not_in_segment",
            NotEntered::NoDate => "no_date",
            NotEntered::NotDue => "not_due",
        }
    }

    fn of(verdict: Verdict) -> Option<NotEntered> {
        Some(match verdict {
            Verdict::Include => return None,
            Verdict::Suppressed => NotEntered::Suppressed,
            Verdict::NoConsent => NotEntered::NoConsent,
            Verdict::ConsentPending => NotEntered::ConsentPending,
            Verdict::ConsentWithdrawn => NotEntered::ConsentWithdrawn,
            Verdict::NoHipaaAuthorization => NotEntered::NoHipaaAuthorization,
            Verdict::NotInSegment | Verdict::MissingAttribute | Verdict::FrequencyCap => NotEntered::NotInSegment,
        })
    }
}

pub struct JourneySimulator {
    pub(super) journeys: Arc<dyn JourneyStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) judge: Arc<AudienceJudge>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) audit: Arc<Auditor>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl JourneySimulator {
    /// Simulates the journey's latest version (whatever its status) from
    /// now for `horizon_days`.
    pub async fn simulate(&self, id: &JourneyId, horizon_days: u32) -> Result<SimulationReport, AppError> {
        if horizon_days == 0 || horizon_days > MAX_HORIZON_DAYS {
            return Err(crate::domain::InvalidField::new("days", format!("from 1 to {MAX_HORIZON_DAYS}")).into());
        }
        let record = self.journeys.get(id).await?.ok_or(AppError::NotFound("journey"))?;
        let journey = Journey::parse(&record.definition, &self.settings.schema)
            .map_err(|_| crate::ports::StoreError::corrupt("stored journey definition does not parse"))?;
        let start = self.clock.now();
        let until = start + Duration::from_secs(u64::from(horizon_days) * 86_400);
        let key = format!("{id}/v{}", record.version);
        let mut total = Simulation { entered: 0, steps: Vec::new() };
        let mut not_entered: BTreeMap<NotEntered, u64> = BTreeMap::new();
        let (mut evaluated, mut cursor, mut complete) = (0u64, None::<String>, false);
        let deadline = Instant::now() + self.settings.dry_run_budget;
        let whole = ShardSpec { index: 0, total: 1 };
        let (needs_hipaa, reads_events) = (needs_hipaa(&journey), journey.reads_events());
        loop {
            let page = self.contacts.scan_shard(whole, cursor.as_deref(), self.settings.fanout_page_size).await?;
            let facts = self.judge.page_facts_for(journey.category(), &page.records).await?;
            let mut opened = 0usize;
            for record in &page.records {
                evaluated += 1;
                let verdict = AudienceJudge::standing(journey.category(), needs_hipaa, record, &facts, start);
                if let Some(reason) = NotEntered::of(verdict) {
                    *not_entered.entry(reason).or_default() += 1;
                    continue;
                }
                let (_, profile) = self.envelope.open_where(&record.id, &record.sealed, |_| true).await?;
                opened += 1;
                let events = if reads_events { self.journeys.events_of(&record.id).await? } else { Vec::new() };
                let behaviour = match journey.entry() {
                    Entry::Segment(segment) => self.judge.behaviour(segment, &record.id).await?,
                    _ => Behaviour::default(),
                };
                match entry_time(&journey, &self.facts(&profile, &events, start, behaviour.clone()), start, until) {
                    Ok(entered_at) => {
                        let facts = self.facts(&profile, &events, entered_at, behaviour);
                        let walked: [(ContactId, &dyn Facts); 1] = [(record.id, &facts)];
                        total.add(simulate(&journey, &key, walked, entered_at, until));
                    }
                    Err(reason) => *not_entered.entry(reason).or_default() += 1,
                }
            }
            if opened > 0 {
                let reason = format!("journey {id} simulation: attributes read for {opened} contacts");
                let attributes = self.settings.schema.names();
                self.audit.record(JOURNEY_ACTOR, "journey.simulate", None, attributes, reason).await?;
            }
            cursor = page.next;
            if cursor.is_none() {
                complete = true;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(self.report(&record, &journey, total, not_entered, evaluated, complete, (start, until)))
    }

    fn facts<'a>(
        &'a self,
        profile: &'a Profile,
        events: &'a [(EventName, OffsetDateTime)],
        now: OffsetDateTime,
        behaviour: Behaviour,
    ) -> ContactFacts<'a> {
        let (schema, today) = (&self.settings.schema, now.date());
        ContactFacts { schema, profile, today, sent: &[], rows: no_rows(), events, behaviour }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        record: &crate::ports::JourneyRecord,
        journey: &Journey,
        total: Simulation,
        not_entered: BTreeMap<NotEntered, u64>,
        evaluated: u64,
        complete: bool,
        (start, until): (OffsetDateTime, OffsetDateTime),
    ) -> SimulationReport {
        let min_cell = self.settings.min_cell;
        let cell = |n: u64| Cell::of(n, min_cell);
        let shown = |n: u64| n >= min_cell;
        let postal = self.settings.postal_address.is_some();
        let steps = journey
            .steps()
            .iter()
            .map(|step| {
                let f = total.step(step.id.as_str()).cloned().unwrap_or_default();
                let is_send = matches!(step.kind, StepKind::Send { .. });
                SimulatedStep {
                    step: step.id.as_str().to_owned(),
                    kind: kind(&step.kind),
                    reached: cell(f.reached),
                    sent: is_send.then(|| cell(f.sent)),
                    waiting: cell(f.waiting),
                    first: f.first.filter(|_| shown(f.reached)),
                    last: f.last.filter(|_| shown(f.reached)),
                    exited: ExitReason::ALL
                        .iter()
                        .map(|r| (r.as_str(), cell(f.exited.get(r).copied().unwrap_or(0))))
                        .collect(),
                    lint: is_send.then(|| match check_send_step(step, postal) {
                        Ok(()) => "ok".to_owned(),
                        Err(e) => e.to_string(),
                    }),
                    next: links(&step.kind)
                        .into_iter()
                        .map(|link| {
                            let taken = match StepId::parse(&link.step) {
                                Some(to) if link.step != HOLDOUT => f.led_to.get(&to).copied().unwrap_or(0),
                                // The holdout: counted where it leaves.
                                _ => f.exited.get(&ExitReason::Holdout).copied().unwrap_or(0),
                            };
                            Link { contacts: Some(cell(taken)), ..link }
                        })
                        .collect(),
                }
            })
            .collect();
        SimulationReport {
            id: record.id,
            name: journey.name().to_owned(),
            version: record.version,
            complete,
            evaluated,
            start,
            until,
            entered: cell(total.entered),
            not_entered: NotEntered::ALL
                .iter()
                .map(|r| (r.as_str(), cell(not_entered.get(r).copied().unwrap_or(0))))
                .collect(),
            steps,
            min_cell,
        }
    }
}

pub(super) fn no_rows() -> &'static HashMap<crate::domain::journey::StepId, crate::ports::LedgerRow> {
    static EMPTY: std::sync::OnceLock<HashMap<crate::domain::journey::StepId, crate::ports::LedgerRow>> =
        std::sync::OnceLock::new();
    EMPTY.get_or_init(HashMap::new)
}

/// Whether any send step is PHI-personalized marketing, which needs each
/// recipient's HIPAA authorization.
pub(super) fn needs_hipaa(journey: &Journey) -> bool {
    journey.steps().iter().any(|s| {
        matches!(&s.kind, StepKind::Send { phi_personalized: true, purpose: Some(CampaignPurpose::Marketing), .. })
    })
}

/// When a contact of the population would enter, or why it would not:
/// the entry scan's rule over the whole horizon as one window.
fn entry_time(
    journey: &Journey,
    facts: &dyn Facts,
    start: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<OffsetDateTime, NotEntered> {
    entry_moment(journey, facts, &EntryWindow { now: start, from: None, until }).map_err(|reason| match reason {
        NotEntering::NotInSegment => NotEntered::NotInSegment,
        NotEntering::NoDate => NotEntered::NoDate,
        NotEntering::NotDue => NotEntered::NotDue,
    })
}
