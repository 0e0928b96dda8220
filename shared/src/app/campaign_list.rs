//! The campaign list (`GET /v1/campaigns`): newest first, a page at a time,
//! each with its status and fan-out progress. Cheap per campaign (its
//! meta item and its shards), so a page never counts a campaign's ledger.

use serde::Serialize;
use time::OffsetDateTime;

use super::AppError;
use super::report::Reports;
use crate::domain::{CampaignId, CampaignStatus};
use crate::ports::{CampaignCursor, CampaignRecord};

/// The most campaigns one page holds.
pub const MAX_PAGE: usize = 100;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CampaignSummary {
    pub id: CampaignId,
    pub name: String,
    pub category: String,
    pub status: CampaignStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    pub shards_total: u16,
    pub shards_done: u16,
    /// Contacts looked at by fan-out so far.
    pub evaluated: u64,
    /// Contacts given a send job so far, under the small-cell rule.
    pub audience: super::report::Cell,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignSummary>,
    /// The `after` of the next page, while more may follow.
    pub next: Option<String>,
}

/// The few fields of a stored definition a list shows (read leniently: a
/// campaign whose segment no longer fits the schema is still listed).
#[derive(serde::Deserialize)]
struct Headline {
    name: String,
    category: String,
    #[serde(default)]
    launch_at: Option<String>,
}

impl Reports {
    pub async fn list(&self, after: Option<CampaignCursor>, limit: usize) -> Result<CampaignList, AppError> {
        let page = self.campaigns.list(after, limit.clamp(1, MAX_PAGE)).await?;
        let mut campaigns = Vec::with_capacity(page.campaigns.len());
        for record in &page.campaigns {
            campaigns.push(self.summary(record).await?);
        }
        Ok(CampaignList { campaigns, next: page.next.map(|c| c.to_string()) })
    }

    async fn summary(&self, record: &CampaignRecord) -> Result<CampaignSummary, AppError> {
        let headline: Headline = serde_json::from_str(&record.definition)
            .map_err(|e| AppError::Store(crate::ports::StoreError::corrupt(e.to_string())))?;
        let shards = self.campaigns.shards(&record.id).await?;
        Ok(CampaignSummary {
            id: record.id,
            name: headline.name,
            category: headline.category,
            status: record.status,
            created_at: record.created_at,
            launch_at: headline.launch_at,
            paused_reason: record.paused_reason.clone().filter(|_| record.status == CampaignStatus::Paused),
            shards_total: record.shards,
            shards_done: shards.iter().filter(|s| s.done).count() as u16,
            evaluated: shards.iter().map(|s| s.evaluated).sum(),
            audience: super::report::Cell::of(shards.iter().map(|s| s.emitted).sum(), self.settings.min_cell),
        })
    }
}
