//! What the journey walk knows about one contact, read from its profile,
//! its journey sends and the send ledger: shared by the timer sweep and the
//! simulation so both walk a contact on the same facts.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::domain::journey::walk::Facts;
use crate::domain::journey::{EventName, StepId};
use crate::domain::segment::{Behaviour, Segment};
use crate::domain::{AttributeKey, ContactSchema, Profile};
use crate::ports::LedgerRow;

/// What the walk knows about one contact: its attributes (opened by the
/// sweep, never stored or logged), its journey sends and the ledger's rows.
pub(super) struct ContactFacts<'a> {
    pub(super) schema: &'a ContactSchema,
    pub(super) profile: &'a Profile,
    pub(super) today: time::Date,
    pub(super) sent: &'a [(StepId, OffsetDateTime)],
    pub(super) rows: &'a HashMap<StepId, LedgerRow>,
    /// The contact's journey events, read only when the journey asks about
    /// events (`Journey::reads_events`); empty otherwise.
    pub(super) events: &'a [(EventName, OffsetDateTime)],
    /// Opens, clicks and campaigns received, for segment rules on
    /// engagement: the entry's in the entry scan, every one the journey has
    /// (`Journey::segments`) in the sweep and the simulation; empty, and not
    /// read, where no rule asks.
    pub(super) behaviour: Behaviour,
}

impl ContactFacts<'_> {
    fn custom_text(&self, name: &str) -> Option<&str> {
        match self.schema.get(name)?.key {
            AttributeKey::Custom(code) => std::str::from_utf8(self.profile.custom.get(&code)?).ok(),
            AttributeKey::Builtin(_) => None,
        }
    }
}

impl Facts for ContactFacts<'_> {
    fn sent_at(&self, step: &StepId) -> Option<OffsetDateTime> {
        self.sent.iter().find(|(s, _)| s == step).map(|(_, at)| *at)
    }
    fn opened(&self, step: &StepId) -> bool {
        self.rows.get(step).is_some_and(|r| r.opened)
    }
    fn clicked(&self, step: &StepId) -> bool {
        self.rows.get(step).is_some_and(|r| r.clicked)
    }
    fn event_since(&self, name: &EventName, since: OffsetDateTime) -> bool {
        self.events.iter().any(|(n, at)| n == name && *at >= since)
    }
    fn matches(&self, segment: &Segment) -> bool {
        segment.matches(self.profile, self.today, &self.behaviour)
    }
    fn date(&self, attribute: &str) -> Option<time::Date> {
        match self.schema.get(attribute)?.key {
            AttributeKey::Builtin(crate::domain::Attribute::DateOfBirth) => self.profile.date_of_birth,
            AttributeKey::Builtin(crate::domain::Attribute::LastVisit) => self.profile.last_visit,
            AttributeKey::Builtin(_) => None,
            AttributeKey::Custom(_) => crate::domain::parse_date("", self.custom_text(attribute)?).ok(),
        }
    }
    fn time_zone(&self) -> Option<&str> {
        self.custom_text("time_zone")
    }
}
