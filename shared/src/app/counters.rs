//! A campaign's counted events: its totals, the time-window buckets behind
//! the timeline and the reputation guard, and the metrics.

use std::sync::Arc;

use time::OffsetDateTime;

use super::AppError;
use crate::config::ReputationGuard;
use crate::domain::{CampaignCounter, CampaignId};
use crate::ports::{CampaignStore, Metric, Metrics};

pub struct Counters {
    campaigns: Arc<dyn CampaignStore>,
    metrics: Arc<dyn Metrics>,
    /// The width of a time bucket comes from the guard's window.
    reputation: ReputationGuard,
}

impl Counters {
    pub fn new(campaigns: Arc<dyn CampaignStore>, metrics: Arc<dyn Metrics>, reputation: ReputationGuard) -> Counters {
        Counters { campaigns, metrics, reputation }
    }

    /// Adds one to the campaign's total, its timeline bucket and the metrics.
    pub async fn count(
        &self,
        campaign_id: &CampaignId,
        counter: CampaignCounter,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        if counter != CampaignCounter::Sent {
            // Sends are totalled by the send ledger.
            self.campaigns.increment(campaign_id, counter, 1).await?;
        }
        let bucket = self.reputation.bucket_of(now);
        self.campaigns.increment_window(campaign_id, counter, bucket, 1).await?;
        self.metrics.count(Some(campaign_id), Metric::Counter(counter), 1);
        Ok(())
    }
}
