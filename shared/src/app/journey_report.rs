//! A journey's report: per step, how many contacts stand there now, how
//! many were sent its email (skipped, failed: the send ledger of the step's
//! campaign, so a send counts the moment it settles) and how many of those
//! opened or clicked (the step campaign's counters); how
//! many entered and how many left, by reason. Every count goes through the
//! small-cell rule (`MIN_CELL_SIZE`) like a campaign's: a count between one
//! and the minimum is shown as "fewer than N".
//!
//! Counts only, IDs and step names only: nothing about any patient.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::Cell;
use super::{AppError, JourneyAdmin};
use crate::domain::journey::walk::ExitReason;
use crate::domain::journey::{Journey, StepKind};
use crate::domain::{CampaignCounter, JourneyId};
use crate::ports::{Enrolment, JourneyRecord, Standing};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JourneyReport {
    pub id: JourneyId,
    pub name: String,
    pub version: u32,
    pub status: &'static str,
    pub entered: Cell,
    /// Still walking the journey (waiting or about to move).
    pub active: Cell,
    pub steps: Vec<StepReport>,
    /// Every exit reason, in a fixed order.
    pub exited: BTreeMap<&'static str, Cell>,
    /// The smallest count shown as a number.
    pub min_cell: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: String,
    /// `send`, `wait`, `branch`, `split` or `exit`.
    pub kind: &'static str,
    /// Contacts standing at this step now (any version).
    pub here: Cell,
    /// Send steps only: contacts whose email for this step was sent, not
    /// sent (consent, suppression, frequency cap …) or refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Cell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Cell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Cell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened: Option<Cell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicked: Option<Cell>,
    /// Where a contact goes from here: the step, and for a branch or a
    /// split which way (`yes`, `no`, `40%`); empty at the end.
    pub next: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Empty for a send or a wait: their one way on.
    pub when: String,
    pub step: String,
    /// In a report: how many contacts went this way (their enrolments'
    /// paths; a holdout counts those who left there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Cell>,
}

/// What a split's holdout arm leads to.
pub(super) const HOLDOUT: &str = "holdout (never mailed)";

/// The ways on from a step, labelled, for the report's step diagram.
pub(super) fn links(step: &StepKind) -> Vec<Link> {
    let link = |when: &str, to: &crate::domain::journey::StepId| Link {
        when: when.to_owned(),
        step: to.as_str().to_owned(),
        contacts: None,
    };
    match step {
        StepKind::Send { next, .. } | StepKind::Wait { next, .. } => next.iter().map(|n| link("", n)).collect(),
        StepKind::Branch { then, otherwise, .. } => {
            then.iter().map(|n| link("yes", n)).chain(otherwise.iter().map(|n| link("no", n))).collect()
        }
        StepKind::Split(arms) => {
            let arm = |a: &crate::domain::journey::Arm| match &a.next {
                Some(n) => link(&format!("{}%", a.percent), n),
                None => Link { when: format!("{}%", a.percent), step: HOLDOUT.to_owned(), contacts: None },
            };
            arms.iter().map(arm).collect()
        }
        StepKind::Exit => Vec::new(),
    }
}

/// One send step's outcomes: its ledger's settled rows and its campaign's
/// open and click counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Engagement {
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    pub opened: u64,
    pub clicked: u64,
}

pub(super) fn kind(step: &StepKind) -> &'static str {
    match step {
        StepKind::Send { .. } => "send",
        StepKind::Wait { .. } => "wait",
        StepKind::Branch { .. } => "branch",
        StepKind::Split(_) => "split",
        StepKind::Exit => "exit",
    }
}

/// The report of `journey` (the record's latest version) from its
/// enrolments and each send step's engagement (`engagement(step)`).
pub fn build(
    record: &JourneyRecord,
    journey: &Journey,
    enrolments: &[Enrolment],
    engagement: impl Fn(&str) -> Engagement,
    min_cell: u64,
) -> JourneyReport {
    let cell = |n: u64| Cell::of(n, min_cell);
    let mut here: BTreeMap<&str, u64> = BTreeMap::new();
    let mut exited: BTreeMap<&'static str, u64> = ExitReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    let mut active = 0u64;
    // Each way a contact went (its path, step to next step), and who a holdout took.
    let mut ways: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut held_out: BTreeMap<&str, u64> = BTreeMap::new();
    for e in enrolments {
        for pair in e.path.windows(2) {
            *ways.entry((pair[0].as_str(), pair[1].as_str())).or_default() += 1;
        }
        if let Standing::Exited { from, reason: ExitReason::Holdout, .. } = &e.standing {
            *held_out.entry(from.as_str()).or_default() += 1;
        }
    }
    for e in enrolments {
        match &e.standing {
            Standing::Active { position, .. } => {
                active += 1;
                *here.entry(position.step.as_str()).or_default() += 1;
            }
            Standing::Exited { reason, .. } => *exited.entry(reason.as_str()).or_default() += 1,
        }
    }
    let steps = journey
        .steps()
        .iter()
        .map(|step| {
            let name = step.id.as_str();
            let is_send = matches!(step.kind, StepKind::Send { .. });
            let seen = if is_send { Some(engagement(name)) } else { None };
            StepReport {
                step: name.to_owned(),
                kind: kind(&step.kind),
                here: cell(here.get(name).copied().unwrap_or(0)),
                sent: seen.map(|s| cell(s.sent)),
                skipped: seen.map(|s| cell(s.skipped)),
                failed: seen.map(|s| cell(s.failed)),
                opened: seen.map(|s| cell(s.opened)),
                clicked: seen.map(|s| cell(s.clicked)),
                next: links(&step.kind)
                    .into_iter()
                    .map(|link| {
                        let taken = if link.step == HOLDOUT {
                            held_out.get(name).copied().unwrap_or(0)
                        } else {
                            ways.get(&(name, link.step.as_str())).copied().unwrap_or(0)
                        };
                        Link { contacts: Some(cell(taken)), ..link }
                    })
                    .collect(),
            }
        })
        .collect();
    JourneyReport {
        id: record.id,
        name: journey.name().to_owned(),
        version: record.version,
        status: record.status.as_str(),
        entered: cell(enrolments.len() as u64),
        active: cell(active),
        steps,
        exited: exited.into_iter().map(|(reason, n)| (reason, cell(n))).collect(),
        min_cell,
    }
}

impl JourneyAdmin {
    /// The journey's report (see the module docs).
    pub async fn report(&self, id: &JourneyId) -> Result<JourneyReport, AppError> {
        let record = self.get(id).await?;
        let journey = Journey::parse(&record.definition, &self.settings.schema)
            .map_err(|_| crate::ports::StoreError::corrupt("stored journey definition does not parse"))?;
        let enrolments = self.journeys.enrolments(id).await?;
        // Each version's step campaign counts its own sends, opens and clicks; a
        // step's total is the sum over the versions contacts walked.
        let mut engagement: BTreeMap<String, Engagement> = BTreeMap::new();
        let versions: std::collections::BTreeSet<u32> =
            enrolments.iter().map(|e| e.version).chain([record.version]).collect();
        for step in journey.steps().iter().filter(|s| matches!(s.kind, StepKind::Send { .. })) {
            let total = engagement.entry(step.id.as_str().to_owned()).or_default();
            for version in &versions {
                let campaign = super::journeys::step_campaign(id, *version, &step.id);
                let settled = self.ledger.counts(&campaign).await?;
                total.sent += settled.sent;
                total.skipped += settled.skipped;
                total.failed += settled.failed;
                for (counter, n) in self.campaigns.counters(&campaign).await? {
                    match counter {
                        CampaignCounter::Opened => total.opened += n,
                        CampaignCounter::Clicked => total.clicked += n,
                        _ => {}
                    }
                }
            }
        }
        let seen = |step: &str| engagement.get(step).copied().unwrap_or_default();
        Ok(build(&record, &journey, &enrolments, seen, self.settings.min_cell))
    }
}
