//! A journey run over a population on a virtual clock, no email sent:
//! per step, how many contacts would reach it and when, how many it would
//! mail, where they would leave and why. It walks each contact with the
//! same walk ([`super::walk::next_move`]) the executor uses, so its counts are what a run on
//! the same clock does, as long as the facts hold (a simulation cannot know
//! who will open: it counts nobody as opening, the cautious side of every
//! engagement branch).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::walk::{ExitReason, Facts, Move, Position, after_send, next_move_traced};
use super::{EventName, Journey, StepId};
use crate::domain::ContactId;
use crate::domain::segment::Segment;

/// One step's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFigures {
    /// Contacts that reached the step.
    pub reached: u64,
    /// Contacts it would mail (send steps).
    pub sent: u64,
    /// Contacts still waiting here when the simulation ends.
    pub waiting: u64,
    /// When the first and the last contact reached it.
    #[serde(with = "time::serde::timestamp::option")]
    pub first: Option<OffsetDateTime>,
    #[serde(with = "time::serde::timestamp::option")]
    pub last: Option<OffsetDateTime>,
    /// Contacts that left from this step, by reason.
    pub exited: BTreeMap<ExitReason, u64>,
    /// Contacts that went on from this step to each next one (a branch's
    /// yes and no, a split's arms).
    pub led_to: BTreeMap<StepId, u64>,
}

/// The figures per step, in the journey's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Simulation {
    pub entered: u64,
    pub steps: Vec<(StepId, StepFigures)>,
}

impl Simulation {
    pub fn step(&self, id: &str) -> Option<&StepFigures> {
        self.steps.iter().find(|(s, _)| s.as_str() == id).map(|(_, f)| f)
    }
}

impl Simulation {
    /// Adds another part of the population's figures (a page, a contact
    /// entering on its own day) to these.
    pub fn add(&mut self, other: Simulation) {
        self.entered += other.entered;
        for (id, theirs) in other.steps {
            match self.steps.iter_mut().find(|(s, _)| *s == id) {
                Some((_, ours)) => {
                    ours.reached += theirs.reached;
                    ours.sent += theirs.sent;
                    ours.waiting += theirs.waiting;
                    ours.first = earliest(ours.first, theirs.first);
                    ours.last = latest(ours.last, theirs.last);
                    for (reason, n) in theirs.exited {
                        *ours.exited.entry(reason).or_default() += n;
                    }
                    for (next, n) in theirs.led_to {
                        *ours.led_to.entry(next).or_default() += n;
                    }
                }
                None => self.steps.push((id, theirs)),
            }
        }
    }
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    a.max(b)
}

/// A contact's facts with the simulation's own sends laid over them.
struct Overlay<'a> {
    facts: &'a dyn Facts,
    sent: BTreeMap<StepId, OffsetDateTime>,
}

impl Facts for Overlay<'_> {
    fn sent_at(&self, step: &StepId) -> Option<OffsetDateTime> {
        self.sent.get(step).copied()
    }
    fn opened(&self, _: &StepId) -> bool {
        false
    }
    fn clicked(&self, _: &StepId) -> bool {
        false
    }
    fn event_since(&self, name: &EventName, since: OffsetDateTime) -> bool {
        self.facts.event_since(name, since)
    }
    fn matches(&self, segment: &Segment) -> bool {
        self.facts.matches(segment)
    }
    fn date(&self, attribute: &str) -> Option<time::Date> {
        self.facts.date(attribute)
    }
    fn time_zone(&self) -> Option<&str> {
        self.facts.time_zone()
    }
}

/// Walks every contact of `population` from the journey's start, entered at
/// `start`, until it leaves or its next move is after `until`.
pub fn simulate<'a>(
    journey: &Journey,
    journey_key: &str,
    population: impl IntoIterator<Item = (ContactId, &'a dyn Facts)>,
    start: OffsetDateTime,
    until: OffsetDateTime,
) -> Simulation {
    let mut figures: BTreeMap<StepId, StepFigures> =
        journey.steps().iter().map(|s| (s.id.clone(), StepFigures::default())).collect();
    let mut entered = 0;
    for (contact, facts) in population {
        entered += 1;
        let mut overlay = Overlay { facts, sent: BTreeMap::new() };
        let mut at = Position { step: journey.start().id.clone(), arrived_at: start };
        let mut now = start;
        let mut seen: Vec<StepId> = Vec::new();
        // Each round moves the contact on or ends it; the graph has no cycle.
        for _ in 0..=2 * journey.steps().len() + 2 {
            let mut trail = Vec::new();
            let step = next_move_traced(journey, journey_key, &contact, &at, start, &overlay, now, &mut trail);
            for (id, when) in trail {
                if seen.contains(&id) {
                    continue;
                }
                if let Some(f) = figures.get_mut(&id) {
                    f.reached += 1;
                    f.first = Some(f.first.map_or(when, |t| t.min(when)));
                    f.last = Some(f.last.map_or(when, |t| t.max(when)));
                }
                seen.push(id);
            }
            match step {
                Move::Send { at: here } => {
                    if let Some(f) = figures.get_mut(&here.step) {
                        f.sent += 1;
                    }
                    overlay.sent.insert(here.step.clone(), now);
                    match after_send(journey, &here.step, now) {
                        Some(next) => at = next,
                        None => {
                            exit(&mut figures, &here.step, ExitReason::Completed);
                            break;
                        }
                    }
                }
                Move::Wait { at: here, until: due } => {
                    if due > until {
                        if let Some(f) = figures.get_mut(&here.step) {
                            f.waiting += 1;
                        }
                        break;
                    }
                    now = due.max(now);
                    at = here;
                }
                Move::Exit { from, reason } => {
                    exit(&mut figures, &from, reason);
                    break;
                }
            }
        }
        // The contact's path, in order (the graph has no cycle): each step
        // it left for the next.
        for pair in seen.windows(2) {
            if let Some(f) = figures.get_mut(&pair[0]) {
                *f.led_to.entry(pair[1].clone()).or_default() += 1;
            }
        }
    }
    let steps = journey.steps().iter().map(|s| (s.id.clone(), figures.remove(&s.id).unwrap_or_default())).collect();
    Simulation { entered, steps }
}

fn exit(figures: &mut BTreeMap<StepId, StepFigures>, from: &StepId, reason: ExitReason) {
    if let Some(f) = figures.get_mut(from) {
        *f.exited.entry(reason).or_default() += 1;
    }
}
