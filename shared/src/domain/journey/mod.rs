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

/// The file as written; [`wire::JourneyFile::into_journey`] checks it.
mod wire {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct JourneyFile {
        name: String,
        category: String,
        entry: EntryFile,
        steps: Vec<StepFile>,
        #[serde(default)]
        goal: Option<String>,
        #[serde(default)]
        exit_when: Vec<ConditionFile>,
        #[serde(default)]
        reentry: Option<ReentryFile>,
        #[serde(default)]
        cap: Option<u32>,
        #[serde(default)]
        quiet_hours: Option<QuietFile>,
        #[serde(default)]
        closed_days: Vec<String>,
        #[serde(default)]
        time_zone: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum EntryFile {
        Segment(serde_json::Value),
        ConsentConfirmed { topic: String },
        Date(DateFile),
        Event { name: String },
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DateFile {
        attribute: String,
        #[serde(default)]
        offset_days: i32,
        #[serde(default)]
        yearly: bool,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum ConditionFile {
        Opened { step: String },
        Clicked { step: String },
        NotOpenedWithin { step: String, days: u32 },
        Event { name: String },
        Matches(serde_json::Value),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum ReentryFile {
        Never,
        AfterDays(u32),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct QuietFile {
        from: String,
        to: String,
    }

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
    enum StepFile {
        Send {
            id: String,
            template: TemplateSource,
            #[serde(default)]
            phi_personalized: bool,
            #[serde(default)]
            purpose: Option<CampaignPurpose>,
            #[serde(default)]
            next: Option<String>,
        },
        Wait {
            id: String,
            #[serde(default)]
            days: Option<u32>,
            #[serde(default)]
            hours: Option<u32>,
            #[serde(default)]
            until: Option<DateFile>,
            #[serde(default)]
            at_local_time: Option<String>,
            #[serde(default)]
            next: Option<String>,
        },
        Branch {
            id: String,
            when: ConditionFile,
            #[serde(default)]
            then: Option<String>,
            #[serde(default, rename = "else")]
            otherwise: Option<String>,
        },
        Split {
            id: String,
            arms: Vec<ArmFile>,
        },
        Exit {
            id: String,
        },
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ArmFile {
        percent: u8,
        #[serde(default)]
        next: Option<String>,
        #[serde(default)]
        holdout: bool,
    }

    const DAY: u64 = 24 * 3600;

    impl JourneyFile {
        pub(super) fn into_journey(self, schema: &ContactSchema) -> Result<Journey, JourneyError> {
            let name = self.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(field_error("name", "1 to 100 characters"));
            }
            let category =
                ConsentCategory::parse(&self.category).map_err(|e| field_error("category", e.to_string()))?;
            if self.steps.is_empty() {
                return Err(field_error("steps", "a journey needs at least one step"));
            }
            if self.steps.len() > MAX_STEPS {
                return Err(field_error("steps", format!("at most {MAX_STEPS} steps")));
            }
            let entry = match self.entry {
                EntryFile::Segment(rule) => Entry::Segment(
                    Segment::from_json(rule, schema).map_err(|e| field_error("entry.segment", e.to_string()))?,
                ),
                EntryFile::ConsentConfirmed { topic } => Entry::ConsentConfirmed(
                    ConsentCategory::parse(&topic)
                        .map_err(|e| field_error("entry.consent_confirmed", e.to_string()))?,
                ),
                EntryFile::Date(date) => {
                    Entry::Date(date_offset(date, schema).map_err(|problem| field_error("entry.date", problem))?)
                }
                EntryFile::Event { name } => {
                    Entry::Event(event_name(&name).map_err(|p| field_error("entry.event", p))?)
                }
            };
            let mut steps = Vec::with_capacity(self.steps.len());
            for step in self.steps {
                steps.push(step.into_step(schema)?);
            }
            let goal = self.goal.map(|g| event_name(&g).map_err(|p| field_error("goal", p))).transpose()?;
            let exit_when = self
                .exit_when
                .into_iter()
                .map(|c| condition(c, schema).map_err(|p| field_error("exit_when", p)))
                .collect::<Result<Vec<_>, _>>()?;
            if exit_when
                .iter()
                .any(|c| matches!(c, Condition::Opened(_) | Condition::Clicked(_) | Condition::NotOpenedWithin(..)))
            {
                return Err(field_error("exit_when", "engagement with a step belongs in a branch, not an exit rule"));
            }
            let reentry = match self.reentry {
                None | Some(ReentryFile::Never) => Reentry::Never,
                Some(ReentryFile::AfterDays(0)) => return Err(field_error("reentry", "after_days must be at least 1")),
                Some(ReentryFile::AfterDays(days)) => Reentry::After(Duration::from_secs(u64::from(days) * DAY)),
            };
            if self.cap == Some(0) {
                return Err(field_error("cap", "must be at least 1"));
            }
            let quiet = self
                .quiet_hours
                .map(|q| QuietHours::parse(&q.from, &q.to).map_err(|p| field_error("quiet_hours", p)))
                .transpose()?;
            let local = LocalPolicy::new(quiet, &self.closed_days, self.time_zone.as_deref())
                .map_err(|(field, problem)| field_error(field, problem))?;
            let journey = Journey { name, category, entry, steps, goal, exit_when, reentry, cap: self.cap, local };
            graph::check(&journey)?;
            Ok(journey)
        }
    }

    fn event_name(text: &str) -> Result<EventName, String> {
        EventName::parse(text).ok_or_else(|| "an event name is 1 to 64 of a-z, 0-9, '.', '-' and '_'".to_owned())
    }

    fn step_ref(text: String) -> Result<StepId, String> {
        StepId::parse(&text).ok_or_else(|| "a step name is 1 to 64 of a-z, 0-9, '-' and '_'".to_owned())
    }

    fn date_offset(date: DateFile, schema: &ContactSchema) -> Result<DateOffset, String> {
        let def = schema.get(&date.attribute).ok_or_else(|| "no such attribute in the contact schema".to_owned())?;
        if !def.kind.is_date() {
            return Err("the attribute is not a date".to_owned());
        }
        if date.offset_days.unsigned_abs() > 366 {
            return Err("offset_days is at most a year either way".to_owned());
        }
        Ok(DateOffset { attribute: def.name.clone(), days: date.offset_days, yearly: date.yearly })
    }

    fn condition(c: ConditionFile, schema: &ContactSchema) -> Result<Condition, String> {
        Ok(match c {
            ConditionFile::Opened { step } => Condition::Opened(step_ref(step)?),
            ConditionFile::Clicked { step } => Condition::Clicked(step_ref(step)?),
            ConditionFile::NotOpenedWithin { step, days } => {
                if days == 0 || u64::from(days) * DAY > LONGEST_WAIT.as_secs() {
                    return Err("days is 1 to 366".to_owned());
                }
                Condition::NotOpenedWithin(step_ref(step)?, Duration::from_secs(u64::from(days) * DAY))
            }
            ConditionFile::Event { name } => Condition::Event(event_name(&name)?),
            ConditionFile::Matches(rule) => {
                Condition::Matches(Segment::from_json(rule, schema).map_err(|e| e.to_string())?)
            }
        })
    }

    fn next(id: &str, next: Option<String>) -> Result<Option<StepId>, JourneyError> {
        next.map(|n| step_ref(n).map_err(|p| step_error(id, p))).transpose()
    }

    impl StepFile {
        fn id(&self) -> &str {
            match self {
                StepFile::Send { id, .. }
                | StepFile::Wait { id, .. }
                | StepFile::Branch { id, .. }
                | StepFile::Split { id, .. }
                | StepFile::Exit { id } => id,
            }
        }

        fn into_step(self, schema: &ContactSchema) -> Result<Step, JourneyError> {
            // The name is checked first, so an error never repeats a name that is not one.
            let step_id = StepId::parse(self.id())
                .ok_or_else(|| field_error("steps", "a step name is 1 to 64 of a-z, 0-9, '-' and '_'"))?;
            let (id, kind) = match self {
                StepFile::Send { id, template, phi_personalized, purpose, next: n } => {
                    if phi_personalized && purpose.is_none() {
                        return Err(step_error(&id, "a PHI-personalized send needs a purpose"));
                    }
                    let next = next(&id, n)?;
                    (id, StepKind::Send { template, phi_personalized, purpose, next })
                }
                StepFile::Wait { id, days, hours, until, at_local_time, next: n } => {
                    let wait = match (days, hours, until) {
                        (None, None, Some(date)) => {
                            Wait::Until(date_offset(date, schema).map_err(|p| step_error(&id, p))?)
                        }
                        (days, hours, None) if days.is_some() || hours.is_some() => {
                            let seconds = u64::from(days.unwrap_or(0)) * DAY + u64::from(hours.unwrap_or(0)) * 3600;
                            if seconds == 0 || seconds > LONGEST_WAIT.as_secs() {
                                return Err(step_error(&id, "a wait is more than nothing and at most 366 days"));
                            }
                            Wait::For(Duration::from_secs(seconds))
                        }
                        _ => return Err(step_error(&id, "a wait has days and/or hours, or until, not both")),
                    };
                    let at_local_time = at_local_time
                        .map(|t| local_time::TimeOfDay::parse(&t).map_err(|p| step_error(&id, p)))
                        .transpose()?;
                    let next = next(&id, n)?;
                    (id, StepKind::Wait { wait, at_local_time, next })
                }
                StepFile::Branch { id, when, then, otherwise } => {
                    let when = condition(when, schema).map_err(|p| step_error(&id, p))?;
                    let (then, otherwise) = (next(&id, then)?, next(&id, otherwise)?);
                    (id, StepKind::Branch { when, then, otherwise })
                }
                StepFile::Split { id, arms } => {
                    if arms.len() < 2 {
                        return Err(step_error(&id, "a split has at least two arms"));
                    }
                    let mut parsed = Vec::with_capacity(arms.len());
                    for arm in arms {
                        if arm.percent == 0 || arm.percent > 100 {
                            return Err(step_error(&id, "each arm's percent is 1 to 100"));
                        }
                        let next = match (arm.holdout, arm.next) {
                            (true, None) => None,
                            (false, Some(n)) => Some(step_ref(n).map_err(|p| step_error(&id, p))?),
                            _ => return Err(step_error(&id, "an arm has a next step, or is the holdout")),
                        };
                        parsed.push(Arm { percent: arm.percent, next });
                    }
                    if parsed.iter().map(|a| u32::from(a.percent)).sum::<u32>() != 100 {
                        return Err(step_error(&id, "the arms' percents add up to 100"));
                    }
                    if parsed.iter().filter(|a| a.next.is_none()).count() > 1 {
                        return Err(step_error(&id, "at most one holdout arm"));
                    }
                    (id, StepKind::Split(parsed))
                }
                StepFile::Exit { id } => (id, StepKind::Exit),
            };
            debug_assert_eq!(id, step_id.as_str());
            Ok(Step { id: step_id, kind })
        }
    }
}
