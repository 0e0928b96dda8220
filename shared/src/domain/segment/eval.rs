//! Evaluating a checked segment against one contact's decrypted attributes
//! and what its mail did: on fan-out's hot path, so nothing here allocates
//! for built-in attributes.

use std::borrow::Cow;

use time::Date;

use super::{Behaviour, Kind, Rule};
use crate::domain::{Attribute, CampaignId, Profile, format_date, parse_date};

pub(super) enum Value<'a> {
    Text(&'a str),
    Date(Date),
    List(Cow<'a, [String]>),
}

fn custom_value<'a>(profile: &'a Profile, code: u8, kind: Kind) -> Option<Value<'a>> {
    let bytes = profile.custom.get(&code)?;
    match kind {
        Kind::Text => std::str::from_utf8(bytes).ok().map(Value::Text),
        Kind::Date => parse_date("", std::str::from_utf8(bytes).ok()?).ok().map(Value::Date),
        Kind::List => serde_json::from_slice::<Vec<String>>(bytes).ok().map(|l| Value::List(Cow::Owned(l))),
    }
}

fn value<'a>(profile: &'a Profile, attr: &str, custom: &[(String, u8, Kind)]) -> Option<Value<'a>> {
    if let Some((_, code, kind)) = custom.iter().find(|(name, _, _)| name == attr) {
        return custom_value(profile, *code, *kind);
    }
    builtin_value(profile, Attribute::parse(attr)?)
}

pub(super) fn builtin_value(profile: &Profile, attribute: Attribute) -> Option<Value<'_>> {
    match attribute {
        Attribute::Sex => profile.sex.map(|s| Value::Text(s.as_str())),
        Attribute::Zip => profile.zip.as_deref().map(Value::Text),
        Attribute::Language => profile.language.as_deref().map(Value::Text),
        Attribute::JourneyStage => profile.journey_stage.as_deref().map(Value::Text),
        Attribute::DateOfBirth => profile.date_of_birth.map(Value::Date),
        Attribute::LastVisit => profile.last_visit.map(Value::Date),
        Attribute::Conditions => {
            (!profile.conditions.is_empty()).then_some(Value::List(Cow::Borrowed(&profile.conditions)))
        }
        Attribute::Medications => {
            (!profile.medications.is_empty()).then_some(Value::List(Cow::Borrowed(&profile.medications)))
        }
        Attribute::Email | Attribute::FirstName | Attribute::LastName => None,
    }
}

pub(super) struct Ctx<'a> {
    pub(super) p: &'a Profile,
    pub(super) today: Date,
    pub(super) custom: &'a [(String, u8, Kind)],
    pub(super) behaviour: &'a Behaviour,
}

fn within(date: Option<Date>, today: Date, days: u32) -> bool {
    date.is_some_and(|d| d <= today && (today - d).whole_days() <= i64::from(days))
}

pub(super) fn eval(rule: &Rule, c: &Ctx<'_>) -> bool {
    let (p, today, custom) = (c.p, c.today, c.custom);
    match rule {
        Rule::All(rules) => rules.iter().all(|r| eval(r, c)),
        Rule::Any(rules) => rules.iter().any(|r| eval(r, c)),
        Rule::Not(inner) => !eval(inner, c),
        Rule::Eq { attr, value: want } => match value(p, attr, custom) {
            Some(Value::Text(t)) => t.eq_ignore_ascii_case(want),
            Some(Value::Date(d)) => format_date(d) == *want,
            Some(Value::List(items)) => items.iter().any(|i| i.eq_ignore_ascii_case(want)),
            None => false,
        },
        Rule::In { attr, values } => match value(p, attr, custom) {
            Some(Value::Text(t)) => values.iter().any(|v| t.eq_ignore_ascii_case(v)),
            Some(Value::Date(d)) => values.contains(&format_date(d)),
            Some(Value::List(items)) => items.iter().any(|i| values.iter().any(|v| i.eq_ignore_ascii_case(v))),
            None => false,
        },
        Rule::Range { attr, min, max } => match value(p, attr, custom) {
            Some(Value::Text(t)) => min.as_deref().is_none_or(|m| t >= m) && max.as_deref().is_none_or(|m| t <= m),
            Some(Value::Date(d)) => {
                let s = format_date(d);
                min.as_deref().is_none_or(|m| s.as_str() >= m) && max.as_deref().is_none_or(|m| s.as_str() <= m)
            }
            _ => false,
        },
        Rule::Exists { attr } => value(p, attr, custom).is_some(),
        Rule::Age { min, max } => match p.age_on(today) {
            Some(age) => min.is_none_or(|m| age >= m) && max.is_none_or(|m| age <= m),
            None => false,
        },
        Rule::WithinDays { attr, days } => match value(p, attr, custom) {
            Some(Value::Date(d)) => within(Some(d), today, *days),
            _ => false,
        },
        Rule::Prefix { attr, value: want } => match value(p, attr, custom) {
            Some(Value::Text(t)) => {
                let want = want.trim().as_bytes();
                t.as_bytes().get(..want.len()).is_some_and(|start| start.eq_ignore_ascii_case(want))
            }
            _ => false,
        },
        Rule::OpenedWithinDays(days) => within(c.behaviour.last_open, today, *days),
        Rule::ClickedWithinDays(days) => within(c.behaviour.last_click, today, *days),
        Rule::NeverOpened {} => c.behaviour.last_open.is_none(),
        Rule::ReceivedCampaign(id) => CampaignId::parse(id).is_ok_and(|id| c.behaviour.received.contains(&id)),
    }
}
