//! A campaign's report: audience, outcomes, engagement and rates, and a
//! timeline by hour. Nothing in it names or describes a contact.
//!
//! The small-cell rule (docs/reports.md) is the same here as in the
//! audience estimate and the campaign list: every count that depends on the
//! segment or on what happened to its members, totals as much as the
//! timeline, is shown as "fewer than N" from 1 to `min_cell - 1` (a handful
//! of patients matching a segment could single one out). Only `evaluated`,
//! every contact fan-out looked at whatever the segment, is exact. A rate is
//! computed from the exact counts and then withheld or bounded so that it
//! cannot give a suppressed count back ([`Rate`]).

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use std::sync::Arc;

use super::{AppError, CampaignCatalog};
use crate::config::Settings;
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, ConsentCategory, ExclusionCounts};
use crate::ports::{CampaignStore, SendLedger};

/// The exact counts; what leaves the process (JSON, the HTML page) is the
/// [`PublishedReport`] under the small-cell rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignReport {
    pub id: CampaignId,
    pub name: String,
    pub status: CampaignStatus,
    /// Why it is paused, while it is.
    pub paused_reason: Option<String>,
    /// Jobs that ran out of retries and how they come back, while that lasts.
    pub stalled: Option<super::recovery::Stalled>,
    /// When fan-out starts (or started), for a scheduled campaign.
    pub launch_at: Option<time::OffsetDateTime>,
    pub category: ConsentCategory,
    pub shards_total: u16,
    pub shards_done: u16,
    /// Contacts looked at by fan-out (exact: every contact, whatever the segment).
    pub evaluated: u64,
    /// Contacts that passed every check at fan-out and got a send job.
    pub audience: u64,
    pub excluded: ExclusionCounts,
    pub sent: u64,
    /// Jobs not sent because consent or suppression changed after fan-out.
    pub skipped_at_send: u64,
    pub failed: u64,
    /// Audience not yet in a terminal state.
    pub remaining: u64,
    pub delivered: u64,
    pub bounced_hard: u64,
    pub bounced_soft: u64,
    pub bounced_undetermined: u64,
    /// Not delivered because the recipient's server (or the relay) could
    /// not do TLS: apart from bounces, never suppressing.
    pub tls_unavailable: u64,
    /// Of those, sent a secure message's notice instead (`secure_message`).
    pub secure_notices: u64,
    pub complained: u64,
    pub rejected: u64,
    pub delayed: u64,
    pub rendering_failed: u64,
    /// Messages opened by a person (first open per message).
    pub opened: u64,
    /// Messages opened only by image proxies or privacy prefetching.
    pub opened_machine: u64,
    /// Messages clicked by a person (first click per message).
    pub clicked: u64,
    pub clicked_machine: u64,
    /// Distinct (message, link) clicks by people.
    pub links_clicked: u64,
    pub unsubscribed: u64,
    /// Provider events received again and not counted again.
    pub duplicate_events: u64,
    /// The smallest count shown as a number (totals, exclusions, timeline).
    pub min_cell: u64,
    pub timeline: Vec<TimelineHour>,
    /// Reach per recipient domain (ledger rows settled with one).
    pub by_domain: Vec<crate::ports::DomainReach>,
    /// What the campaign was created with: segment, template, purpose,
    /// tracking, sender and launch time (`carepost campaign show`).
    pub definition: serde_json::Value,
}

/// A report as the API, the CLI and the HTML page show it: every count
/// derived from the segment as a [`Cell`], the rates as computed.
#[derive(Serialize)]
pub struct PublishedReport<'a> {
    id: &'a CampaignId,
    name: &'a str,
    status: CampaignStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_reason: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stalled: &'a Option<super::recovery::Stalled>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    launch_at: Option<OffsetDateTime>,
    category: &'a ConsentCategory,
    shards_total: u16,
    shards_done: u16,
    evaluated: u64,
    excluded: super::audience::ExcludedCells,
    audience: Cell,
    sent: Cell,
    skipped_at_send: Cell,
    failed: Cell,
    remaining: Cell,
    delivered: Cell,
    bounced_hard: Cell,
    bounced_soft: Cell,
    bounced_undetermined: Cell,
    tls_unavailable: Cell,
    secure_notices: Cell,
    complained: Cell,
    rejected: Cell,
    delayed: Cell,
    rendering_failed: Cell,
    opened: Cell,
    opened_machine: Cell,
    clicked: Cell,
    clicked_machine: Cell,
    links_clicked: Cell,
    unsubscribed: Cell,
    duplicate_events: Cell,
    rates: Rates,
    min_cell: u64,
    timeline: &'a [TimelineHour],
    by_domain: Vec<DomainCells>,
    definition: &'a serde_json::Value,
}

/// One row of reach by recipient domain as published. A domain with fewer
/// recipients than the minimum cell is never named (a personal domain can
/// name a patient): such domains are summed into one `other domains` row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DomainCells {
    pub domain: String,
    pub recipients: Cell,
    pub sent: Cell,
    pub delivered: Cell,
    pub bounced: Cell,
    pub tls_unavailable: Cell,
    pub opened: Cell,
    pub complained: Cell,
}

/// The name of the row that sums the domains too small to name.
pub const OTHER_DOMAINS: &str = "other domains";

pub fn domain_cells(reach: &[crate::ports::DomainReach], min_cell: u64) -> Vec<DomainCells> {
    let cells = |name: &str, r: [u64; 7]| DomainCells {
        domain: name.to_owned(),
        recipients: Cell::of(r[0], min_cell),
        sent: Cell::of(r[1], min_cell),
        delivered: Cell::of(r[2], min_cell),
        bounced: Cell::of(r[3], min_cell),
        tls_unavailable: Cell::of(r[4], min_cell),
        opened: Cell::of(r[5], min_cell),
        complained: Cell::of(r[6], min_cell),
    };
    let counts = |r: &crate::ports::DomainReach| {
        [r.recipients, r.sent, r.delivered, r.bounced, r.tls_unavailable, r.opened, r.complained]
    };
    let (named, small): (Vec<_>, Vec<_>) = reach.iter().partition(|r| r.recipients >= min_cell);
    let mut rows: Vec<DomainCells> = named.iter().map(|r| cells(r.domain.as_str(), counts(r))).collect();
    if !small.is_empty() {
        let mut other = [0u64; 7];
        for r in &small {
            for (sum, n) in other.iter_mut().zip(counts(r)) {
                *sum += n;
            }
        }
        rows.push(cells(OTHER_DOMAINS, other));
    }
    rows
}

impl CampaignReport {
    /// `n` under the small-cell rule of this report.
    pub fn cell(&self, n: u64) -> Cell {
        Cell::of(n, self.min_cell)
    }

    pub fn published(&self) -> PublishedReport<'_> {
        PublishedReport {
            id: &self.id,
            name: &self.name,
            status: self.status,
            paused_reason: &self.paused_reason,
            stalled: &self.stalled,
            launch_at: self.launch_at,
            category: &self.category,
            shards_total: self.shards_total,
            shards_done: self.shards_done,
            evaluated: self.evaluated,
            excluded: super::audience::ExcludedCells::of(&self.excluded, self.min_cell),
            audience: self.cell(self.audience),
            sent: self.cell(self.sent),
            skipped_at_send: self.cell(self.skipped_at_send),
            failed: self.cell(self.failed),
            remaining: self.cell(self.remaining),
            delivered: self.cell(self.delivered),
            bounced_hard: self.cell(self.bounced_hard),
            bounced_soft: self.cell(self.bounced_soft),
            bounced_undetermined: self.cell(self.bounced_undetermined),
            tls_unavailable: self.cell(self.tls_unavailable),
            secure_notices: self.cell(self.secure_notices),
            complained: self.cell(self.complained),
            rejected: self.cell(self.rejected),
            delayed: self.cell(self.delayed),
            rendering_failed: self.cell(self.rendering_failed),
            opened: self.cell(self.opened),
            opened_machine: self.cell(self.opened_machine),
            clicked: self.cell(self.clicked),
            clicked_machine: self.cell(self.clicked_machine),
            links_clicked: self.cell(self.links_clicked),
            unsubscribed: self.cell(self.unsubscribed),
            duplicate_events: self.cell(self.duplicate_events),
            rates: Rates::of(self),
            min_cell: self.min_cell,
            timeline: &self.timeline,
            by_domain: domain_cells(&self.by_domain, self.min_cell),
            definition: &self.definition,
        }
    }
}

impl Serialize for CampaignReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.published().serialize(serializer)
    }
}

/// Every rate of the report, each with one denominator (docs/reports.md);
/// the CLI table and the HTML page show these, never their own.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Rates {
    /// delivered / sent
    pub delivery: Rate,
    /// bounced_hard / sent
    pub hard_bounce: Rate,
    /// (bounced_soft + bounced_undetermined) / sent
    pub soft_bounce: Rate,
    /// complained / delivered
    pub complaint: Rate,
    /// opened (people) / delivered
    pub open: Rate,
    /// clicked (people) / delivered
    pub click: Rate,
    /// clicked / opened (people)
    pub click_to_open: Rate,
    /// unsubscribed / delivered
    pub unsubscribe: Rate,
}

/// A percentage (two decimals) under the small-cell rule: withheld (JSON
/// `null`) while the denominator is zero or a small cell, and only a bound
/// ("below 0.11%") while the numerator is one, so the rate and the exact
/// denominator never give a suppressed count back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Rate {
    Percent(f64),
    Below(f64),
    #[default]
    Withheld,
}

impl Rate {
    pub fn of(part: u64, whole: u64, min_cell: u64) -> Rate {
        match (Cell::of(part, min_cell), Cell::of(whole, min_cell)) {
            (_, Cell::Count(0) | Cell::FewerThan(_)) => Rate::Withheld,
            (Cell::FewerThan(min), Cell::Count(whole)) => percent(min, whole).map_or(Rate::Withheld, Rate::Below),
            (Cell::Count(part), Cell::Count(whole)) => percent(part, whole).map_or(Rate::Withheld, Rate::Percent),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Percent(p) => write!(f, "{p:.2}%"),
            Rate::Below(p) => write!(f, "below {p:.2}%"),
            Rate::Withheld => write!(f, "–"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Percent(p) => serializer.serialize_f64(*p),
            Rate::Below(_) => serializer.serialize_str(&self.to_string()),
            Rate::Withheld => serializer.serialize_none(),
        }
    }
}

/// One count in a breakdown: exact, or suppressed below the minimum cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    FewerThan(u64),
}

impl Cell {
    pub fn of(count: u64, min_cell: u64) -> Cell {
        if count > 0 && count < min_cell { Cell::FewerThan(min_cell) } else { Cell::Count(count) }
    }

    /// The number to chart: a suppressed cell is drawn as zero.
    pub fn chartable(self) -> u64 {
        match self {
            Cell::Count(n) => n,
            Cell::FewerThan(_) => 0,
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "{n}"),
            Cell::FewerThan(min) => write!(f, "fewer than {min}"),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Count(n) => serializer.serialize_u64(*n),
            Cell::FewerThan(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

/// One hour of the campaign (UTC), by what happened in it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineHour {
    /// The hour's start, RFC 3339.
    pub hour: String,
    pub sent: Cell,
    pub delivered: Cell,
    pub bounced: Cell,
    pub complained: Cell,
    pub opened: Cell,
    pub clicked: Cell,
    pub unsubscribed: Cell,
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

impl Rates {
    pub fn of(r: &CampaignReport) -> Rates {
        let rate = |part, whole| Rate::of(part, whole, r.min_cell);
        Rates {
            delivery: rate(r.delivered, r.sent),
            hard_bounce: rate(r.bounced_hard, r.sent),
            soft_bounce: rate(r.bounced_soft + r.bounced_undetermined, r.sent),
            complaint: rate(r.complained, r.delivered),
            open: rate(r.opened, r.delivered),
            click: rate(r.clicked, r.delivered),
            click_to_open: rate(r.clicked, r.opened),
            unsubscribe: rate(r.unsubscribed, r.delivered),
        }
    }
}

/// Sums the campaign's time buckets into hours.
fn timeline(buckets: &[(i64, CampaignCounter, u64)], bucket_seconds: i64, min_cell: u64) -> Vec<TimelineHour> {
    use std::collections::BTreeMap;
    let mut hours: BTreeMap<i64, [u64; 7]> = BTreeMap::new();
    for (bucket, counter, value) in buckets {
        let hour = (bucket * bucket_seconds).div_euclid(3600) * 3600;
        let slot = match counter {
            CampaignCounter::Sent => 0,
            CampaignCounter::Delivered => 1,
            CampaignCounter::BouncedHard | CampaignCounter::BouncedSoft | CampaignCounter::BouncedUndetermined => 2,
            CampaignCounter::Complained => 3,
            CampaignCounter::Opened => 4,
            CampaignCounter::Clicked => 5,
            CampaignCounter::Unsubscribed => 6,
            _ => continue,
        };
        hours.entry(hour).or_default()[slot] += value;
    }
    hours
        .into_iter()
        .map(|(hour, c)| TimelineHour {
            hour: OffsetDateTime::from_unix_timestamp(hour)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
            sent: Cell::of(c[0], min_cell),
            delivered: Cell::of(c[1], min_cell),
            bounced: Cell::of(c[2], min_cell),
            complained: Cell::of(c[3], min_cell),
            opened: Cell::of(c[4], min_cell),
            clicked: Cell::of(c[5], min_cell),
            unsubscribed: Cell::of(c[6], min_cell),
        })
        .collect()
}

pub struct Reports {
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) settings: Arc<Settings>,
    pub(super) lifecycle: Arc<super::CampaignLifecycle>,
}

impl Reports {
    pub async fn campaign_report(&self, id: &CampaignId) -> Result<CampaignReport, AppError> {
        let loaded = self.catalog.load(id).await?;
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let shards = self.campaigns.shards(id).await?;
        let ledger = self.ledger.counts(id).await?;
        let counters = self.campaigns.counters(id).await?;
        let buckets = self.campaigns.window_buckets(id).await?;
        let counter = |c: CampaignCounter| counters.iter().find(|(k, _)| *k == c).map_or(0, |(_, v)| *v);
        let mut excluded = ExclusionCounts::default();
        shards.iter().for_each(|s| excluded.add(&s.excluded));
        let audience: u64 = shards.iter().map(|s| s.emitted).sum();
        let terminal = ledger.sent + ledger.skipped + ledger.failed;
        let min_cell = self.settings.min_cell;
        let bucket_seconds = self.settings.reputation.bucket.as_secs().max(1) as i64;
        let report = CampaignReport {
            id: *id,
            name: loaded.campaign.name.clone(),
            status: record.status,
            paused_reason: record.paused_reason.clone().filter(|_| record.status == CampaignStatus::Paused),
            stalled: self.lifecycle.stalled(id).await?,
            launch_at: loaded.campaign.launch_at,
            category: loaded.campaign.category.clone(),
            shards_total: record.shards,
            shards_done: shards.iter().filter(|s| s.done).count() as u16,
            evaluated: shards.iter().map(|s| s.evaluated).sum(),
            audience,
            excluded,
            sent: ledger.sent,
            skipped_at_send: ledger.skipped,
            failed: ledger.failed,
            remaining: audience.saturating_sub(terminal),
            delivered: counter(CampaignCounter::Delivered),
            bounced_hard: counter(CampaignCounter::BouncedHard),
            bounced_soft: counter(CampaignCounter::BouncedSoft),
            bounced_undetermined: counter(CampaignCounter::BouncedUndetermined),
            tls_unavailable: counter(CampaignCounter::TlsUnavailable),
            secure_notices: counter(CampaignCounter::SecureNotices),
            complained: counter(CampaignCounter::Complained),
            rejected: counter(CampaignCounter::Rejected),
            delayed: counter(CampaignCounter::Delayed),
            rendering_failed: counter(CampaignCounter::RenderingFailed),
            opened: counter(CampaignCounter::Opened),
            opened_machine: counter(CampaignCounter::OpenedMachine),
            clicked: counter(CampaignCounter::Clicked),
            clicked_machine: counter(CampaignCounter::ClickedMachine),
            links_clicked: counter(CampaignCounter::LinksClicked),
            unsubscribed: counter(CampaignCounter::Unsubscribed),
            duplicate_events: counter(CampaignCounter::DuplicateEvents),
            min_cell,
            timeline: timeline(&buckets, bucket_seconds, min_cell),
            by_domain: self.ledger.reach_by_domain(id).await?,
            definition: serde_json::from_str(&record.definition)
                .map_err(|e| AppError::Store(crate::ports::StoreError::corrupt_from("campaign definition", e)))?,
        };
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cells_are_shown_as_fewer_than_the_minimum_and_zero_stays_zero() {
        assert_eq!(Cell::of(0, 11), Cell::Count(0));
        assert_eq!(Cell::of(10, 11), Cell::FewerThan(11));
        assert_eq!(Cell::of(11, 11), Cell::Count(11));
        assert_eq!(serde_json::to_value(Cell::of(3, 11)).unwrap(), "fewer than 11");
        assert_eq!(serde_json::to_value(Cell::of(12, 11)).unwrap(), 12);
    }

    #[test]
    fn buckets_are_summed_into_hours_and_bounces_of_every_kind_together() {
        // Five-minute buckets: 12 per hour. Hour 0 has buckets 0..12.
        let buckets = [
            (0, CampaignCounter::Sent, 20),
            (11, CampaignCounter::Sent, 5),
            (12, CampaignCounter::Sent, 30),
            (3, CampaignCounter::BouncedHard, 6),
            (4, CampaignCounter::BouncedSoft, 6),
            (5, CampaignCounter::DuplicateEvents, 99),
        ];
        let rows = timeline(&buckets, 300, 11);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].hour, "1970-01-01T00:00:00Z");
        assert_eq!((rows[0].sent, rows[0].bounced), (Cell::Count(25), Cell::Count(12)));
        assert_eq!(rows[1].sent, Cell::Count(30));
        assert_eq!(rows[1].bounced, Cell::Count(0));
    }

    #[test]
    fn rates_are_percentages_with_two_decimals_and_absent_without_a_denominator() {
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(0, 0), None);
        assert_eq!(Rate::of(1, 3, 1), Rate::Percent(33.33));
        assert_eq!(Rate::of(0, 0, 1), Rate::Withheld);
    }

    #[test]
    fn a_rate_never_gives_back_a_count_the_small_cell_rule_hides() {
        assert_eq!(Rate::of(3, 10, 11), Rate::Withheld, "a denominator below the minimum hides the rate");
        assert_eq!(Rate::of(3, 1000, 11), Rate::Below(1.1), "a small numerator is only bounded");
        assert_eq!(Rate::of(0, 1000, 11), Rate::Percent(0.0), "zero is not a small cell");
        assert_eq!(Rate::of(500, 1000, 11), Rate::Percent(50.0));
    }

    #[test]
    fn rates_serialise_as_a_number_a_bound_or_null() {
        let json = |r: Rate| serde_json::to_value(r).unwrap();
        assert_eq!(json(Rate::Percent(12.5)), 12.5);
        assert_eq!(json(Rate::Below(1.1)), "below 1.10%");
        assert_eq!(json(Rate::Withheld), serde_json::Value::Null);
    }
}
