//! A journey: an automated workflow of send, wait, branch, split and exit
//! steps that each enrolled contact walks through on its own clock
//! (docs/journeys.md). This module is the definition: the JSON an operator
//! writes, parsed once into a [`Journey`] whose graph is known to be sound
//! — every reference resolves, every step is reachable, nothing loops, a
//! split's shares add up to 100, an engagement branch asks about a send the
//! contact has passed — with errors that name the step. Where a contact
//! goes next ([`walk`], [`split`]) and when it may be mailed
//! ([`local_time`]) are pure functions over it.

pub mod entry;
mod graph;
pub mod local_time;
pub mod simulate;
pub mod split;
#[cfg(test)]
mod tests;
pub mod walk;
/// The file as written; [`wire::JourneyFile::into_journey`] checks it.
mod wire;

use std::time::Duration;

use serde::Deserialize;

use super::campaign::{CampaignPurpose, TemplateSource};
use super::consent::ConsentCategory;
use super::schema::ContactSchema;
use super::scrub::parse_error;
use super::segment::Segment;
use crate::error::{Classify, ErrorClass};
pub use local_time::{LocalPolicy, QuietHours, TimeOfDay};

/// The longest wait a step may ask for: a year (and a day, for leap years).
pub const LONGEST_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);
/// At most this many steps: a journey is read whole on every step a contact takes.
pub const MAX_STEPS: usize = 100;

/// Why a journey definition was refused. Every message names the step or
/// field; none quotes a template or a value from the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JourneyError {
    #[error("journey definition: {0}")]
    Malformed(String),
    #[error("{field}: {problem}")]
    Field { field: &'static str, problem: String },
    #[error("step '{step}': {problem}")]
    Step { step: String, problem: String },
    #[error("the journey loops: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl Classify for JourneyError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

fn step_error(step: &str, problem: impl Into<String>) -> JourneyError {
    JourneyError::Step { step: step.to_owned(), problem: problem.into() }
}

fn field_error(field: &'static str, problem: impl Into<String>) -> JourneyError {
    JourneyError::Field { field, problem: problem.into() }
}

/// A step's name: 1 to 64 of a-z, 0-9, `-` and `_`. Reports name steps,
/// so a name is an operator's label, never a patient's data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId(String);

impl StepId {
    pub fn parse(text: &str) -> Option<StepId> {
        let ok = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        ok.then(|| StepId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// As its name (a simulation's sealed resume state carries step names).
impl serde::Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StepId::parse(&text).ok_or_else(|| serde::de::Error::custom("not a step name"))
    }
}

/// An API event's name (`appointment.booked`, `lab_result.available`):
/// 1 to 64 of a-z, 0-9, `.`, `-` and `_`. The event carries a contact's
/// external ID and this name only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventName(String);

impl EventName {
    pub fn parse(text: &str) -> Option<EventName> {
        let ok = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        ok.then(|| EventName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date attribute and a whole number of days from it (negative: before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateOffset {
    pub attribute: String,
    pub days: i32,
    /// The date's day of the year, every year (birthdays), rather than the date itself.
    pub yearly: bool,
}

impl DateOffset {
    /// The first day on or after `today` that this offset of `date` falls on:
    /// the date plus the offset, or for a yearly offset its next anniversary
    /// plus the offset (29 February is the 28th in other years). `None` when
    /// a one-off day has passed.
    pub fn next_day(&self, date: time::Date, today: time::Date) -> Option<time::Date> {
        let shift = |d: time::Date| d.checked_add(time::Duration::days(i64::from(self.days)));
        if !self.yearly {
            return shift(date).filter(|d| *d >= today);
        }
        (today.year() - 1..=today.year() + 1)
            .filter_map(|year| {
                let day = date.replace_year(year).or_else(|_| (date - time::Duration::days(1)).replace_year(year));
                day.ok().and_then(shift)
            })
            .find(|d| *d >= today)
    }
}

/// How contacts enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Evaluated on a schedule: who newly matches enters.
    Segment(Segment),
    /// A confirmed sign-up for this topic.
    ConsentConfirmed(ConsentCategory),
    /// On the day `offset` falls on.
    Date(DateOffset),
    /// `POST /v1/events` with this name.
    Event(EventName),
}

/// What a branch asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The contact opened the email of this earlier send step.
    Opened(StepId),
    Clicked(StepId),
    /// Not opened within so long after that step sent it.
    NotOpenedWithin(StepId, Duration),
    /// The event happened since the contact entered.
    Event(EventName),
    /// The contact's attributes match.
    Matches(Segment),
}

/// How long a wait step holds a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    For(Duration),
    Until(DateOffset),
}

/// One arm of a random split: its share, and where it leads (`None`: a
/// holdout, counted and exited without mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub percent: u8,
    pub next: Option<StepId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Send {
        template: TemplateSource,
        phi_personalized: bool,
        purpose: Option<CampaignPurpose>,
        next: Option<StepId>,
    },
    Wait {
        wait: Wait,
        /// Then on to the next local time of day (`09:00`) in the contact's zone.
        at_local_time: Option<local_time::TimeOfDay>,
        next: Option<StepId>,
    },
    Branch {
        when: Condition,
        then: Option<StepId>,
        otherwise: Option<StepId>,
    },
    Split(Vec<Arm>),
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: StepId,
    pub kind: StepKind,
}

impl Step {
    /// The steps this one can lead to, in order.
    pub fn successors(&self) -> Vec<&StepId> {
        match &self.kind {
            StepKind::Send { next, .. } | StepKind::Wait { next, .. } => next.iter().collect(),
            StepKind::Branch { then, otherwise, .. } => then.iter().chain(otherwise.iter()).collect(),
            StepKind::Split(arms) => arms.iter().filter_map(|a| a.next.as_ref()).collect(),
            StepKind::Exit => Vec::new(),
        }
    }
}

/// Whether a contact may walk a journey again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reentry {
    Never,
    After(Duration),
}

/// A journey definition known to be sound (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    name: String,
    category: ConsentCategory,
    entry: Entry,
    steps: Vec<Step>,
    goal: Option<EventName>,
    exit_when: Vec<Condition>,
    reentry: Reentry,
    cap: Option<u32>,
    local: LocalPolicy,
}

impl Journey {
    /// Parses and checks a definition against the stack's contact schema.
    pub fn parse(text: &str, schema: &ContactSchema) -> Result<Journey, JourneyError> {
        let file: wire::JourneyFile =
            serde_json::from_str(text).map_err(|e| JourneyError::Malformed(parse_error(&e).to_string()))?;
        file.into_journey(schema)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn category(&self) -> &ConsentCategory {
        &self.category
    }

    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Every step; the first is where contacts start.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn start(&self) -> &Step {
        &self.steps[0]
    }

    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.steps.iter().find(|s| &s.id == id)
    }

    /// Whether anything in the journey asks about events (its goal, an exit
    /// rule, a branch): only then does a step need the contact's events read.
    pub fn reads_events(&self) -> bool {
        let is_event = |c: &Condition| matches!(c, Condition::Event(_));
        self.goal.is_some()
            || self.exit_when.iter().any(is_event)
            || self.steps.iter().any(|s| matches!(&s.kind, StepKind::Branch { when, .. } if is_event(when)))
    }

    /// Every segment the journey evaluates (its entry, its exit rules, its
    /// branches), so the engagement their rules read is read once per walk.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        let entry = match &self.entry {
            Entry::Segment(segment) => Some(segment),
            _ => None,
        };
        let branches = self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Branch { when, .. } => Some(when),
            _ => None,
        });
        let conditions = self.exit_when.iter().chain(branches).filter_map(|c| match c {
            Condition::Matches(segment) => Some(segment),
            _ => None,
        });
        entry.into_iter().chain(conditions)
    }

    /// The event that counts as the journey's goal: a contact who reaches it leaves, converted.
    pub fn goal(&self) -> Option<&EventName> {
        self.goal.as_ref()
    }

    /// Conditions that take a contact out wherever it is.
    pub fn exit_when(&self) -> &[Condition] {
        &self.exit_when
    }

    pub fn reentry(&self) -> Reentry {
        self.reentry
    }

    /// At most this many contacts enter in all.
    pub fn cap(&self) -> Option<u32> {
        self.cap
    }

    /// Quiet hours, closed days and the default time zone.
    pub fn local(&self) -> &LocalPolicy {
        &self.local
    }
}
