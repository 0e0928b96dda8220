//! Where a contact goes next: one pure function from the journey, the
//! contact's position, what is known about the contact and the time, to the
//! next thing to do. The executor (queue worker or Lambda) and the
//! simulation both call it, so a simulation on a virtual clock predicts
//! what a run on the same clock does, step by step. Time comes in as an
//! argument; nothing here reads a clock.

use time::OffsetDateTime;

use super::split::arm_for;
use super::{Condition, EventName, Journey, StepId, StepKind, Wait};
use crate::domain::ContactId;
use crate::domain::segment::Segment;

/// A contact's place in a journey: the step it is at and when it got there
/// (a wait counts from then, so a late timer does not stretch the journey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub step: StepId,
    pub arrived_at: OffsetDateTime,
}

/// What the journey knows about a contact when it moves.
pub trait Facts {
    /// When this journey's send step mailed the contact, if it did.
    fn sent_at(&self, step: &StepId) -> Option<OffsetDateTime>;
    fn opened(&self, step: &StepId) -> bool;
    fn clicked(&self, step: &StepId) -> bool;
    /// Whether the event happened at or after `since`.
    fn event_since(&self, name: &EventName, since: OffsetDateTime) -> bool;
    /// Whether the contact's attributes match.
    fn matches(&self, segment: &Segment) -> bool;
    /// A date attribute's value.
    fn date(&self, attribute: &str) -> Option<time::Date>;
    /// The contact's `time_zone` attribute.
    fn time_zone(&self) -> Option<&str>;
}

/// Why a contact left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitReason {
    /// It walked to the end.
    Completed,
    /// The goal event happened.
    Converted,
    /// An `exit_when` rule held.
    ExitRule,
    /// A split's holdout arm: counted, never mailed.
    Holdout,
    /// A date the journey waits for is not set on the contact.
    NoDate,
    /// A send step's message was not sent and will not be: consent
    /// withdrawn or pending, suppressed, refused by the provider. The send
    /// ledger keeps why.
    NotSent,
}

impl ExitReason {
    pub const ALL: [ExitReason; 6] = [
        ExitReason::Completed,
        ExitReason::Converted,
        ExitReason::ExitRule,
        ExitReason::Holdout,
        ExitReason::NoDate,
        ExitReason::NotSent,
    ];

    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "completed",
            ExitReason::Converted => "converted",
            ExitReason::ExitRule => "exit_rule",
            ExitReason::Holdout => "holdout",
            ExitReason::NoDate => "no_date",
            ExitReason::NotSent => "not_sent",
        }
    }

    pub fn parse(text: &str) -> Option<ExitReason> {
        ExitReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// As its name (`completed`, `converted`, …).
impl serde::Serialize for ExitReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ExitReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ExitReason::parse(&text).ok_or_else(|| serde::de::Error::custom("not an exit reason"))
    }
}

/// The next thing to do for a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Mail the send step `at.step` now (through the campaign send path);
    /// then [`after_send`].
    Send {
        at: Position,
    },
    /// Nothing until `until`; come back then.
    Wait {
        at: Position,
        until: OffsetDateTime,
    },
    Exit {
        from: StepId,
        reason: ExitReason,
    },
}

/// Where the contact stands after `position` was walked as far as it can
/// go at `now`: through waits that are over, branches and splits, up to a
/// send, a wait not over, or an exit. `journey_key` names the journey for
/// the split (its ID and version).
pub fn next_move(
    journey: &Journey,
    journey_key: &str,
    contact: &ContactId,
    position: &Position,
    entered_at: OffsetDateTime,
    facts: &dyn Facts,
    now: OffsetDateTime,
) -> Move {
    next_move_traced(journey, journey_key, contact, position, entered_at, facts, now, &mut Vec::new())
}

/// [`next_move`], with every step the walk passed through (branches and
/// splits included) and when the contact reached it pushed onto `trail`:
/// what per-step reporting and the simulation count.
#[allow(clippy::too_many_arguments)]
pub fn next_move_traced(
    journey: &Journey,
    journey_key: &str,
    contact: &ContactId,
    position: &Position,
    entered_at: OffsetDateTime,
    facts: &dyn Facts,
    now: OffsetDateTime,
    trail: &mut Vec<(StepId, OffsetDateTime)>,
) -> Move {
    if let Some(goal) = journey.goal()
        && facts.event_since(goal, entered_at)
    {
        return Move::Exit { from: position.step.clone(), reason: ExitReason::Converted };
    }
    if journey.exit_when().iter().any(|c| holds(c, facts, entered_at, now) == Some(true)) {
        return Move::Exit { from: position.step.clone(), reason: ExitReason::ExitRule };
    }
    let mut at = position.clone();
    // The graph has no cycle, so each step is passed at most once.
    for _ in 0..=journey.steps().len() {
        let Some(step) = journey.step(&at.step) else {
            return Move::Exit { from: at.step, reason: ExitReason::Completed };
        };
        trail.push((at.step.clone(), at.arrived_at));
        let onward = |next: &Option<StepId>, when: OffsetDateTime| match next {
            Some(n) => Ok(Position { step: n.clone(), arrived_at: when }),
            None => Err(ExitReason::Completed),
        };
        let moved = match &step.kind {
            StepKind::Send { next, .. } => match facts.sent_at(&step.id) {
                Some(sent) => onward(next, sent.max(at.arrived_at)),
                None => {
                    let allowed = journey.local().next_allowed(now, facts.time_zone());
                    return if allowed > now { Move::Wait { at, until: allowed } } else { Move::Send { at } };
                }
            },
            StepKind::Wait { wait, at_local_time, next } => {
                let mut due = match wait {
                    Wait::For(d) => at.arrived_at + *d,
                    // The day begins at midnight where the patient is, as
                    // a date entry's does: a Tokyo patient's "a week before"
                    // is not Chicago's.
                    Wait::Until(offset) => match facts
                        .date(&offset.attribute)
                        .and_then(|d| d.checked_add(time::Duration::days(i64::from(offset.days))))
                    {
                        Some(day) => journey.local().start_of_day(day, facts.time_zone()),
                        None => return Move::Exit { from: at.step, reason: ExitReason::NoDate },
                    },
                };
                if let Some(time) = at_local_time {
                    due = journey.local().next_time_of_day(due, *time, facts.time_zone());
                }
                if due > now {
                    return Move::Wait { at, until: due };
                }
                onward(next, due.max(at.arrived_at))
            }
            StepKind::Branch { when, then, otherwise } => match holds(when, facts, at.arrived_at, now) {
                Some(true) => onward(then, at.arrived_at),
                Some(false) => onward(otherwise, at.arrived_at),
                None => {
                    let until = undecided_until(when, facts).unwrap_or(now);
                    return Move::Wait { at, until };
                }
            },
            StepKind::Split(arms) => {
                let arm = &arms[arm_for(journey_key, &step.id, contact, arms)];
                match &arm.next {
                    Some(_) => onward(&arm.next, at.arrived_at),
                    None => Err(ExitReason::Holdout),
                }
            }
            StepKind::Exit => Err(ExitReason::Completed),
        };
        match moved {
            Ok(next) => at = next,
            Err(reason) => return Move::Exit { from: at.step, reason },
        }
    }
    Move::Exit { from: at.step, reason: ExitReason::Completed }
}

/// The position after a send step mailed the contact at `sent_at`.
pub fn after_send(journey: &Journey, step: &StepId, sent_at: OffsetDateTime) -> Option<Position> {
    match journey.step(step).map(|s| &s.kind) {
        Some(StepKind::Send { next: Some(next), .. }) => Some(Position { step: next.clone(), arrived_at: sent_at }),
        _ => None,
    }
}

/// `Some(answer)`, or `None` while the answer depends on time yet to pass
/// (not opened within a window still open).
fn holds(c: &Condition, facts: &dyn Facts, since: OffsetDateTime, now: OffsetDateTime) -> Option<bool> {
    Some(match c {
        Condition::Opened(step) => facts.opened(step),
        Condition::Clicked(step) => facts.clicked(step),
        Condition::NotOpenedWithin(step, window) => {
            if facts.opened(step) {
                false
            } else {
                match facts.sent_at(step) {
                    Some(sent) if sent + *window > now => return None,
                    Some(_) => true,
                    // Never mailed (skipped): never opened either.
                    None => true,
                }
            }
        }
        Condition::Event(name) => facts.event_since(name, since),
        Condition::Matches(segment) => facts.matches(segment),
    })
}

fn undecided_until(c: &Condition, facts: &dyn Facts) -> Option<OffsetDateTime> {
    match c {
        Condition::NotOpenedWithin(step, window) => facts.sent_at(step).map(|sent| sent + *window),
        _ => None,
    }
}
