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
use crate::crypto::{Envelope, Keyring};
use crate::domain::journey::entry::{EntryWindow, NotEntering, entry_moment};
use crate::domain::journey::simulate::{Simulation, simulate};
use crate::domain::journey::walk::{ExitReason, Facts};
use crate::domain::journey::{EventName, Journey, StepId, StepKind};
use crate::domain::segment::Behaviour;
use crate::domain::{CampaignPurpose, ContactId, JourneyId, Profile};
use crate::ports::{Clock, ContactStore, JourneyStore, ShardSpec};

/// The horizon when none is asked for, and the longest allowed.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
pub const MAX_HORIZON_DAYS: u32 = 366;

/// What a resume token is sealed for, and how long it stays good (the
/// contacts change; an hour-old walk no longer describes them).
const RESUME_PURPOSE: &str = "journey-simulation";
const RESUME_LIFETIME: time::Duration = time::Duration::hours(1);

/// The answer to one simulation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SimulationProgress {
    Complete(SimulationReport),
    Partial(PartialSimulation),
}

/// Contacts remain: call again with `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartialSimulation {
    pub id: JourneyId,
    /// Always false.
    pub complete: bool,
    /// Contacts walked so far.
    pub evaluated: u64,
    pub resume: String,
}

/// Where a simulation stands between calls, sealed into its resume token:
/// raw counts (never shown until the end), the page cursor, the horizon.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Progress {
    version: u32,
    #[serde(with = "time::serde::timestamp")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::timestamp")]
    until: OffsetDateTime,
    evaluated: u64,
    cursor: Option<String>,
    not_entered: BTreeMap<String, u64>,
    total: Simulation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulationReport {
    pub id: JourneyId,
    pub name: String,
    pub version: u32,
    /// Always true (a call the time budget cuts short answers
    /// [`PartialSimulation`]).
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
    pub(super) keyring: Arc<Keyring>,
    pub(super) clock: Arc<dyn Clock>,
}

impl JourneySimulator {
    /// Simulates the journey's latest version (whatever its status) from
    /// now for `horizon_days`, or goes on from a `resume` token (its horizon
    /// and virtual clock kept), until every contact is walked or the time
    /// budget is spent: then the answer is partial, a count of contacts
    /// walked and a sealed token to call again with (no figures until the
    /// end, so calls cannot be told apart to single out a patient).
    pub async fn simulate_call(
        &self,
        id: &JourneyId,
        horizon_days: u32,
        resume: Option<&str>,
    ) -> Result<SimulationProgress, AppError> {
        if horizon_days == 0 || horizon_days > MAX_HORIZON_DAYS {
            return Err(crate::domain::InvalidField::new("days", format!("from 1 to {MAX_HORIZON_DAYS}")).into());
        }
        let record = self.journeys.get(id).await?.ok_or(AppError::NotFound("journey"))?;
        let journey = Journey::parse(&record.definition, &self.settings.schema)
            .map_err(|_| crate::ports::StoreError::corrupt("stored journey definition does not parse"))?;
        let mut progress = match resume {
            Some(token) => self.open_resume(id, record.version, token)?,
            None => {
                let start = self.clock.now();
                Progress {
                    version: record.version,
                    start,
                    until: start + Duration::from_secs(u64::from(horizon_days) * 86_400),
                    evaluated: 0,
                    cursor: None,
                    not_entered: BTreeMap::new(),
                    total: Simulation { entered: 0, steps: Vec::new() },
                }
            }
        };
        let (start, until) = (progress.start, progress.until);
        let key = format!("{id}/v{}", record.version);
        let deadline = Instant::now() + self.settings.dry_run_budget;
        let whole = ShardSpec { index: 0, total: 1 };
        let (needs_hipaa, reads_events) = (needs_hipaa(&journey), journey.reads_events());
        loop {
            let page =
                self.contacts.scan_shard(whole, progress.cursor.as_deref(), self.settings.fanout_page_size).await?;
            let facts = self.judge.page_facts_for(journey.category(), &page.records).await?;
            let mut opened = 0usize;
            let left_out = |progress: &mut Progress, reason: NotEntered| {
                *progress.not_entered.entry(reason.as_str().to_owned()).or_default() += 1;
            };
            for record in &page.records {
                progress.evaluated += 1;
                let verdict = AudienceJudge::standing(journey.category(), needs_hipaa, record, &facts, start);
                if let Some(reason) = NotEntered::of(verdict) {
                    left_out(&mut progress, reason);
                    continue;
                }
                let (_, profile) = self.envelope.open_where(&record.id, &record.sealed, |_| true).await?;
                opened += 1;
                let events = if reads_events { self.journeys.events_of(&record.id).await? } else { Vec::new() };
                let behaviour = self.judge.behaviour_of(journey.segments(), &record.id).await?;
                match entry_time(&journey, &self.facts(&profile, &events, start, behaviour.clone()), start, until) {
                    Ok(entered_at) => {
                        let facts = self.facts(&profile, &events, entered_at, behaviour);
                        let walked: [(ContactId, &dyn Facts); 1] = [(record.id, &facts)];
                        progress.total.add(simulate(&journey, &key, walked, entered_at, until));
                    }
                    Err(reason) => left_out(&mut progress, reason),
                }
            }
            if opened > 0 {
                let reason = format!("journey {id} simulation: attributes read for {opened} contacts");
                let attributes = self.settings.schema.names();
                self.audit.record(JOURNEY_ACTOR, "journey.simulate", None, attributes, reason).await?;
            }
            progress.cursor = page.next;
            if progress.cursor.is_none() {
                return Ok(SimulationProgress::Complete(self.report(&record, &journey, progress)));
            }
            if Instant::now() >= deadline {
                let expires = self.clock.now() + RESUME_LIFETIME;
                let resume = self.keyring.state.seal(RESUME_PURPOSE, id.as_bytes(), &progress, expires);
                return Ok(SimulationProgress::Partial(PartialSimulation {
                    id: *id,
                    complete: false,
                    evaluated: progress.evaluated,
                    resume,
                }));
            }
        }
    }

    /// [`Self::simulate_call`] called again with its token until complete.
    #[cfg(test)]
    pub(crate) async fn simulate(&self, id: &JourneyId, horizon_days: u32) -> Result<SimulationReport, AppError> {
        let mut resume = None;
        loop {
            match self.simulate_call(id, horizon_days, resume.as_deref()).await? {
                SimulationProgress::Complete(report) => return Ok(report),
                SimulationProgress::Partial(partial) => resume = Some(partial.resume),
            }
        }
    }

    fn open_resume(&self, id: &JourneyId, version: u32, token: &str) -> Result<Progress, AppError> {
        let bad = || {
            AppError::from(crate::domain::InvalidField::new(
                "resume",
                "not a resume token of a simulation of this journey's latest version, or older than an hour: \
                 start again",
            ))
        };
        let progress: Progress =
            self.keyring.state.open(RESUME_PURPOSE, id.as_bytes(), token, self.clock.now()).map_err(|_| bad())?;
        if progress.version != version {
            return Err(bad());
        }
        Ok(progress)
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

    fn report(&self, record: &crate::ports::JourneyRecord, journey: &Journey, progress: Progress) -> SimulationReport {
        let Progress { total, not_entered, evaluated, start, until, .. } = progress;
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
            complete: true,
            evaluated,
            start,
            until,
            entered: cell(total.entered),
            not_entered: NotEntered::ALL
                .iter()
                .map(|r| (r.as_str(), cell(not_entered.get(r.as_str()).copied().unwrap_or(0))))
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
