//! The journey file as written, and its checks: [`JourneyFile::into_journey`]
//! turns it into a [`Journey`](super::Journey) or names the step or field at fault.

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
        let category = ConsentCategory::parse(&self.category).map_err(|e| field_error("category", e.to_string()))?;
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
                ConsentCategory::parse(&topic).map_err(|e| field_error("entry.consent_confirmed", e.to_string()))?,
            ),
            EntryFile::Date(date) => {
                Entry::Date(date_offset(date, schema).map_err(|problem| field_error("entry.date", problem))?)
            }
            EntryFile::Event { name } => Entry::Event(event_name(&name).map_err(|p| field_error("entry.event", p))?),
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
            .map(|q| QuietHours::parse(&q.from, &q.to).map_err(|p| field_error("quiet_hours", p.to_string())))
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
                    (None, None, Some(date)) => Wait::Until(date_offset(date, schema).map_err(|p| step_error(&id, p))?),
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
                    .map(|t| local_time::TimeOfDay::parse(&t).map_err(|p| step_error(&id, p.to_string())))
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
