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

mod eval;

use serde::{Deserialize, Serialize};
use time::Date;

use super::{Attribute, AttributeKey, AttributeType, CampaignId, ContactSchema, Profile, parse_date};
use eval::{Ctx, builtin_value, eval};

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
        AttributeType::Date | AttributeType::ScheduledDate => Some(Kind::Date),
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

#[cfg(test)]
mod tests;
