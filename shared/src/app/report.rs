//! A campaign's report: audience, outcomes, engagement and rates, and a
//! timeline by hour. Totals are exact; the timeline is a breakdown, so
//! its counts below the minimum cell size are shown as "fewer than N" (a
//! small cell in an hour could single a patient out). Nothing in it names
//! or describes a contact.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use std::sync::Arc;

use super::{AppError, CampaignCatalog};
use crate::config::Settings;
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, ConsentCategory, ExclusionCounts};
use crate::ports::{CampaignStore, SendLedger};

/// Counts below this are suppressed in breakdowns.

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CampaignReport {
    pub id: CampaignId,
    pub name: String,
    pub status: CampaignStatus,
    /// Why it is paused, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// Jobs that ran out of retries and how they come back, while that lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<super::recovery::Stalled>,
    /// When fan-out starts (or started), for a scheduled campaign.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub launch_at: Option<time::OffsetDateTime>,
    pub category: ConsentCategory,
    pub shards_total: u16,
    pub shards_done: u16,
    /// Contacts looked at by fan-out.
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
    pub rates: Rates,
    /// The smallest count the timeline shows as a number.
    pub min_cell: u64,
    pub timeline: Vec<TimelineHour>,
}

/// Percentages (two decimals); absent while the denominator is zero.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rates {
    /// delivered / sent
    pub delivery: Option<f64>,
    /// bounced_hard / sent
    pub hard_bounce: Option<f64>,
    /// (bounced_soft + bounced_undetermined) / sent
    pub soft_bounce: Option<f64>,
    /// complained / delivered
    pub complaint: Option<f64>,
    /// opened (people) / delivered
    pub open: Option<f64>,
    /// clicked (people) / delivered
    pub click: Option<f64>,
    /// clicked / opened (people)
    pub click_to_open: Option<f64>,
    /// unsubscribed / delivered
    pub unsubscribe: Option<f64>,
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
    fn of(r: &CampaignReport) -> Rates {
        Rates {
            delivery: percent(r.delivered, r.sent),
            hard_bounce: percent(r.bounced_hard, r.sent),
            soft_bounce: percent(r.bounced_soft + r.bounced_undetermined, r.sent),
            complaint: percent(r.complained, r.delivered),
            open: percent(r.opened, r.delivered),
            click: percent(r.clicked, r.delivered),
            click_to_open: percent(r.clicked, r.opened),
            unsubscribe: percent(r.unsubscribed, r.delivered),
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
        let mut report = CampaignReport {
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
            rates: Rates::default(),
            min_cell,
            timeline: timeline(&buckets, bucket_seconds, min_cell),
        };
        report.rates = Rates::of(&report);
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
    }
}
