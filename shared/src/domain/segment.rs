//! Segments: a JSON rule tree (all / any / not over eq, in, prefix, range,
//! exists, age and within_days on attributes, and opened / clicked within
//! days, never opened and received campaign on behaviour), checked once when
//! parsed and then evaluated per contact against decrypted attributes and
//! what the contact's mail did. The language is documented, with examples,
//! in `docs/segments.md`.
//!
//! ```json
//! {"all": [
//!   {"age": {"min": 40, "max": 75}},
//!   {"in": {"attr": "conditions", "values": ["type-2-diabetes"]}},
//!   {"not": {"eq": {"attr": "language", "value": "es"}}},
//!   {"within_days": {"attr": "last_visit", "days": 365}}
//! ]}
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::Date;

use super::{Attribute, AttributeKey, AttributeType, CampaignId, ContactSchema, Profile, format_date, parse_date};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
    Eq {
        attr: String,
        value: String,
    },
    /// For list attributes (conditions, medications): any overlap.
    In {
        attr: String,
        values: Vec<String>,
    },
    /// Inclusive bounds; dates as YYYY-MM-DD, text compared as text.
    Range {
        attr: String,
        min: Option<String>,
        max: Option<String>,
    },
    Exists {
        attr: String,
    },
    /// Age in whole years from the date of birth, inclusive bounds.
    Age {
        min: Option<u32>,
        max: Option<u32>,
    },
    /// A date attribute no more than `days` days before today.
    WithinDays {
        attr: String,
        days: u32,
    },
    /// A text attribute starting with `value` (a ZIP prefix such as `021`).
    Prefix {
        attr: String,
        value: String,
    },
    /// A person (not an image proxy) opened one of our emails in the last N days.
    OpenedWithinDays(u32),
    /// A person clicked a link in one of our emails in the last N days.
    ClickedWithinDays(u32),
    /// No human open on record (records last the retention period).
    NeverOpened {},
    /// The contact was sent campaign X (by its ID).
    ReceivedCampaign(String),
}

/// What a contact's mail did, for the behavioural rules: loaded only when
/// the segment has such rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub last_open: Option<Date>,
    pub last_click: Option<Date>,
    /// Of the campaigns the segment names, those the contact was sent.
    pub received: Vec<CampaignId>,
}

/// A rule tree known to be well formed: attributes exist in the contact
/// schema, types fit, depth and size are bounded. Custom attributes are
/// resolved to their codes once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    rule: Rule,
    custom: Vec<(String, u8, Kind)>,
    campaigns: Vec<CampaignId>,
    engagement: bool,
    /// Built-in attributes read, sorted, once.
    builtins: Vec<Attribute>,
    /// Field codes of every attribute read (built-in and custom), for decryption.
    read_codes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment {path}: {message}")]
pub struct ParseSegmentError {
    pub path: String,
    pub message: String,
}

const MAX_DEPTH: usize = 8;
const MAX_NODES: usize = 200;

fn err(path: &str, message: impl Into<String>) -> ParseSegmentError {
    ParseSegmentError { path: path.to_owned(), message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Date,
    List,
}

fn kind_of(attr: Attribute) -> Option<Kind> {
    match attr {
        Attribute::Email | Attribute::FirstName | Attribute::LastName => None,
        Attribute::DateOfBirth | Attribute::LastVisit => Some(Kind::Date),
        Attribute::Conditions | Attribute::Medications => Some(Kind::List),
        Attribute::Sex | Attribute::Zip | Attribute::Language | Attribute::JourneyStage => Some(Kind::Text),
    }
}

/// Custom attributes usable in a rule: codes, code lists and dates; free
/// text is not (as names are not).
fn custom_kind(kind: AttributeType) -> Option<Kind> {
    match kind {
        AttributeType::Code => Some(Kind::Text),
        AttributeType::CodeList => Some(Kind::List),
        AttributeType::Date => Some(Kind::Date),
        _ => None,
    }
}

struct Resolver<'a> {
    schema: &'a ContactSchema,
    custom: Vec<(String, u8, Kind)>,
    campaigns: Vec<CampaignId>,
    engagement: bool,
}

impl Resolver<'_> {
    fn attr(&mut self, path: &str, name: &str) -> Result<Kind, ParseSegmentError> {
        let def = self
            .schema
            .get(name)
            .ok_or_else(|| err(path, format!("unknown attribute '{name}': it is not in the contact schema")))?;
        let unusable = || err(path, format!("attribute '{name}' cannot be used in a segment"));
        match def.key {
            AttributeKey::Builtin(a) => kind_of(a).ok_or_else(unusable),
            AttributeKey::Custom(code) => {
                let kind = custom_kind(def.kind).ok_or_else(unusable)?;
                if !self.custom.iter().any(|(n, _, _)| n == name) {
                    self.custom.push((name.to_owned(), code, kind));
                }
                Ok(kind)
            }
        }
    }
}

impl Segment {
    pub fn parse(rule: Rule, schema: &ContactSchema) -> Result<Segment, ParseSegmentError> {
        let mut nodes = 0;
        let mut resolver = Resolver { schema, custom: Vec::new(), campaigns: Vec::new(), engagement: false };
        check(&rule, "$", 0, &mut nodes, &mut resolver)?;
        let mut builtins = Vec::new();
        collect(&rule, &mut builtins);
        builtins.sort();
        builtins.dedup();
        let read_codes = builtins.iter().map(|a| a.code()).chain(resolver.custom.iter().map(|(_, c, _)| *c)).collect();
        Ok(Segment {
            rule,
            custom: resolver.custom,
            campaigns: resolver.campaigns,
            engagement: resolver.engagement,
            builtins,
            read_codes,
        })
    }

    pub fn from_json(value: serde_json::Value, schema: &ContactSchema) -> Result<Segment, ParseSegmentError> {
        let rule: Rule = serde_path_to_error::deserialize(value)
            .map_err(|e| err(&format!("$.{}", e.path()), e.inner().to_string()))?;
        Segment::parse(rule, schema)
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The built-in attributes the rule reads, so callers decrypt only those.
    pub fn attributes(&self) -> Vec<Attribute> {
        self.builtins.clone()
    }

    /// The field codes of every attribute the rule reads, built-in and custom.
    pub fn read_codes(&self) -> &[u8] {
        &self.read_codes
    }

    /// Names of every attribute the rule reads, built-in and custom (for the audit log).
    pub fn attribute_names(&self) -> Vec<String> {
        let builtin = self.builtins.iter().map(|a| a.as_str().to_owned());
        builtin.chain(self.custom.iter().map(|(name, _, _)| name.clone())).collect()
    }

    /// The codes of the custom attributes the rule reads.
    pub fn custom_codes(&self) -> Vec<u8> {
        self.custom.iter().map(|(_, code, _)| *code).collect()
    }

    /// Whether the rule reads opens or clicks.
    pub fn reads_engagement(&self) -> bool {
        self.engagement
    }

    /// The campaigns `received_campaign` rules name.
    pub fn campaigns_read(&self) -> &[CampaignId] {
        &self.campaigns
    }

    pub fn matches(&self, profile: &Profile, today: Date, behaviour: &Behaviour) -> bool {
        eval(&self.rule, &Ctx { p: profile, today, custom: &self.custom, behaviour })
    }

    /// Whether the contact lacks an attribute the rule reads: a contact the
    /// segment leaves out for that reason is reported apart.
    pub fn lacks_attribute(&self, profile: &Profile) -> bool {
        self.builtins.iter().any(|a| builtin_value(profile, *a).is_none())
            || self.custom.iter().any(|(_, code, _)| !profile.custom.contains_key(code))
    }
}

fn check(
    rule: &Rule,
    path: &str,
    depth: usize,
    nodes: &mut usize,
    resolver: &mut Resolver<'_>,
) -> Result<(), ParseSegmentError> {
    *nodes += 1;
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH}")));
    }
    if *nodes > MAX_NODES {
        return Err(err(path, format!("more than {MAX_NODES} rules")));
    }
    match rule {
        Rule::All(rules) | Rule::Any(rules) => {
            if rules.is_empty() {
                return Err(err(path, "needs at least one rule"));
            }
            for (i, r) in rules.iter().enumerate() {
                check(r, &format!("{path}[{i}]"), depth + 1, nodes, resolver)?;
            }
        }
        Rule::Not(inner) => check(inner, &format!("{path}.not"), depth + 1, nodes, resolver)?,
        Rule::Eq { attr, value } => {
            let kind = resolver.attr(path, attr)?;
            if kind == Kind::Date {
                parse_date(attr, value).map_err(|e| err(path, e.message))?;
            }
        }
        Rule::In { attr, values } => {
            resolver.attr(path, attr)?;
            if values.is_empty() {
                return Err(err(path, "'values' must not be empty"));
            }
        }
        Rule::Range { attr, min, max } => {
            let kind = resolver.attr(path, attr)?;
            if kind == Kind::List {
                return Err(err(path, format!("range does not apply to the list attribute '{attr}'")));
            }
            if min.is_none() && max.is_none() {
                return Err(err(path, "range needs 'min', 'max' or both"));
            }
            if kind == Kind::Date {
                for bound in [min, max].into_iter().flatten() {
                    parse_date(attr, bound).map_err(|e| err(path, e.message))?;
                }
            }
        }
        Rule::Exists { attr } => {
            resolver.attr(path, attr)?;
        }
        Rule::Age { min, max } => {
            if !resolver.schema.holds(Attribute::DateOfBirth) {
                return Err(err(path, "age needs date_of_birth, which is not in the contact schema"));
            }
            if min.is_none() && max.is_none() {
                return Err(err(path, "age needs 'min', 'max' or both"));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(err(path, "age 'min' is greater than 'max'"));
            }
        }
        Rule::Prefix { attr, value } => {
            if resolver.attr(path, attr)? != Kind::Text {
                return Err(err(path, format!("prefix needs a text or code attribute, not '{attr}'")));
            }
            if value.trim().is_empty() || value.chars().count() > 64 {
                return Err(err(path, "'value' must be 1 to 64 characters"));
            }
        }
        Rule::OpenedWithinDays(days) | Rule::ClickedWithinDays(days) => {
            check_days(path, *days)?;
            resolver.engagement = true;
        }
        Rule::NeverOpened {} => resolver.engagement = true,
        Rule::ReceivedCampaign(id) => {
            let id = CampaignId::parse(id).map_err(|_| err(path, "received_campaign needs a campaign ID"))?;
            if !resolver.campaigns.contains(&id) {
                resolver.campaigns.push(id);
            }
        }
        Rule::WithinDays { attr, days } => {
            let kind = resolver.attr(path, attr)?;
            if kind != Kind::Date {
                return Err(err(path, format!("within_days needs a date attribute, not '{attr}'")));
            }
            check_days(path, *days)?;
        }
    }
    Ok(())
}

fn check_days(path: &str, days: u32) -> Result<(), ParseSegmentError> {
    if days == 0 || days > 36_500 {
        return Err(err(path, "'days' must be between 1 and 36500"));
    }
    Ok(())
}

fn collect(rule: &Rule, out: &mut Vec<Attribute>) {
    match rule {
        Rule::All(rules) | Rule::Any(rules) => rules.iter().for_each(|r| collect(r, out)),
        Rule::Not(inner) => collect(inner, out),
        Rule::Eq { attr, .. }
        | Rule::In { attr, .. }
        | Rule::Range { attr, .. }
        | Rule::Exists { attr }
        | Rule::WithinDays { attr, .. }
        | Rule::Prefix { attr, .. } => out.extend(Attribute::parse(attr)),
        Rule::Age { .. } => out.push(Attribute::DateOfBirth),
        Rule::OpenedWithinDays(_) | Rule::ClickedWithinDays(_) | Rule::NeverOpened {} | Rule::ReceivedCampaign(_) => {}
    }
}

enum Value<'a> {
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

fn builtin_value(profile: &Profile, attribute: Attribute) -> Option<Value<'_>> {
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

struct Ctx<'a> {
    p: &'a Profile,
    today: Date,
    custom: &'a [(String, u8, Kind)],
    behaviour: &'a Behaviour,
}

fn within(date: Option<Date>, today: Date, days: u32) -> bool {
    date.is_some_and(|d| d <= today && (today - d).whole_days() <= i64::from(days))
}

fn eval(rule: &Rule, c: &Ctx<'_>) -> bool {
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
            Some(Value::Text(t)) => t.to_ascii_lowercase().starts_with(&want.trim().to_ascii_lowercase()),
            _ => false,
        },
        Rule::OpenedWithinDays(days) => within(c.behaviour.last_open, today, *days),
        Rule::ClickedWithinDays(days) => within(c.behaviour.last_click, today, *days),
        Rule::NeverOpened {} => c.behaviour.last_open.is_none(),
        Rule::ReceivedCampaign(id) => CampaignId::parse(id).is_ok_and(|id| c.behaviour.received.contains(&id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    fn patient() -> Profile {
        Profile {
            date_of_birth: Some(date!(1970 - 06 - 15)),
            sex: Some(super::super::Sex::Female),
            zip: Some("02139".into()),
            language: Some("en".into()),
            conditions: vec!["type-2-diabetes".into(), "hypertension".into()],
            last_visit: Some(date!(2026 - 03 - 01)),
            ..Default::default()
        }
    }

    const TODAY: Date = date!(2026 - 11 - 23);

    fn from_json(value: serde_json::Value) -> Result<Segment, ParseSegmentError> {
        Segment::from_json(value, &ContactSchema::default())
    }

    #[test]
    fn custom_attributes_of_the_schema_select_by_their_code() {
        let schema = ContactSchema::parse(
            &json!({"attributes": [
                {"name": "insurance_type", "type": "code", "class": "non_identifying", "code": 16},
                {"name": "vaccinations", "type": "code_list", "class": "phi", "code": 17},
                {"name": "care_note", "type": "text", "class": "phi", "code": 18}
            ]})
            .to_string(),
        )
        .unwrap();
        let rule = json!({"all": [
            {"eq": {"attr": "insurance_type", "value": "medicare"}},
            {"not": {"in": {"attr": "vaccinations", "values": ["flu"]}}}
        ]});
        let seg = Segment::from_json(rule, &schema).unwrap();
        let mut due = Profile::default();
        due.custom.insert(16, b"medicare".to_vec());
        due.custom.insert(17, br#"["covid-19"]"#.to_vec());
        let mut vaccinated = due.clone();
        vaccinated.custom.insert(17, br#"["flu"]"#.to_vec());

        assert_eq!(seg.custom_codes(), vec![16, 17]);
        assert!(seg.matches(&due, TODAY, &Behaviour::default()));
        assert!(!seg.matches(&vaccinated, TODAY, &Behaviour::default()));
        assert!(!seg.matches(&Profile::default(), TODAY, &Behaviour::default()));
        let free_text = Segment::from_json(json!({"exists": {"attr": "care_note"}}), &schema).unwrap_err();
        assert!(free_text.message.contains("cannot be used"), "{free_text}");
        let dropped = Segment::from_json(json!({"exists": {"attr": "zip"}}), &schema).unwrap_err();
        assert!(dropped.message.contains("not in the contact schema"), "{dropped}");
        assert!(Segment::from_json(json!({"age": {"min": 40}}), &schema).is_err());
    }

    #[test]
    fn a_nested_rule_tree_selects_the_patients_it_describes() {
        let seg = from_json(json!({"all": [
            {"age": {"min": 50, "max": 75}},
            {"in": {"attr": "conditions", "values": ["type-2-diabetes"]}},
            {"not": {"eq": {"attr": "language", "value": "es"}}},
            {"within_days": {"attr": "last_visit", "days": 365}},
            {"any": [{"eq": {"attr": "sex", "value": "female"}}, {"exists": {"attr": "journey_stage"}}]}
        ]}))
        .unwrap();
        assert!(seg.matches(&patient(), TODAY, &Behaviour::default()));
        let mut younger = patient();
        younger.date_of_birth = Some(date!(1990 - 01 - 01));
        assert!(!seg.matches(&younger, TODAY, &Behaviour::default()));
    }

    #[test]
    fn zip_prefix_and_behaviour_select_as_documented() {
        let x = CampaignId::new_random();
        let seg = from_json(json!({"all": [
            {"prefix": {"attr": "zip", "value": "021"}},
            {"opened_within_days": 30},
            {"not": {"received_campaign": x.to_string()}}
        ]}))
        .unwrap();
        let opened = |days_ago: i64| Behaviour {
            last_open: Some(TODAY - time::Duration::days(days_ago)),
            ..Behaviour::default()
        };
        let received = Behaviour { received: vec![x], ..opened(1) };
        let mut elsewhere = patient();
        elsewhere.zip = Some("94110".into());

        assert!(seg.reads_engagement());
        assert_eq!(seg.campaigns_read(), &[x]);
        assert!(seg.matches(&patient(), TODAY, &opened(30)));
        assert!(!seg.matches(&patient(), TODAY, &opened(31)), "opened too long ago");
        assert!(!seg.matches(&patient(), TODAY, &received), "already received campaign X");
        assert!(!seg.matches(&elsewhere, TODAY, &opened(1)));
        let never = from_json(json!({"never_opened": {}})).unwrap();
        assert!(never.matches(&patient(), TODAY, &Behaviour::default()));
        assert!(!never.matches(&patient(), TODAY, &opened(400)));
    }

    #[test]
    fn behavioural_and_prefix_rules_are_checked() {
        for (rule, needle) in [
            (json!({"prefix": {"attr": "conditions", "value": "a"}}), "text or code"),
            (json!({"prefix": {"attr": "zip", "value": " "}}), "1 to 64"),
            (json!({"opened_within_days": 0}), "between 1 and 36500"),
            (json!({"received_campaign": "last-spring"}), "campaign ID"),
        ] {
            let e = from_json(rule.clone()).unwrap_err();
            assert!(e.message.contains(needle), "{rule}: {e}");
        }
    }

    #[test]
    fn a_contact_lacking_a_read_attribute_is_told_apart() {
        let seg = from_json(json!({"in": {"attr": "conditions", "values": ["copd"]}})).unwrap();
        assert!(seg.lacks_attribute(&Profile::default()));
        assert!(!seg.lacks_attribute(&patient()));
    }

    #[test]
    fn range_on_dates_and_missing_attributes() {
        let seg = from_json(json!({"range": {"attr": "last_visit", "min": "2026-01-01"}})).unwrap();
        assert!(seg.matches(&patient(), TODAY, &Behaviour::default()));
        assert!(!seg.matches(&Profile::default(), TODAY, &Behaviour::default()));
    }

    #[test]
    fn unknown_attribute_is_refused_with_its_path() {
        let e = from_json(json!({"all": [{"exists": {"attr": "ssn"}}]})).unwrap_err();
        assert_eq!(e.path, "$[0]");
        assert!(e.message.contains("ssn"));
    }

    #[test]
    fn names_and_email_cannot_select_an_audience() {
        assert!(from_json(json!({"eq": {"attr": "last_name", "value": "Smith"}})).is_err());
    }

    #[test]
    fn malformed_json_names_the_place() {
        let e = from_json(json!({"all": [{"age": {"min": "old"}}]})).unwrap_err();
        assert!(e.path.starts_with("$.all"), "{e:?}");
    }

    #[test]
    fn the_attributes_read_are_listed_once() {
        let seg = from_json(json!({"any": [{"age": {"min": 1}}, {"exists": {"attr": "date_of_birth"}}]})).unwrap();
        assert_eq!(seg.attributes(), vec![Attribute::DateOfBirth]);
    }
}
