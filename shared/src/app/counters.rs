//! A campaign's counted events: its totals, the time-window buckets behind
//! the timeline and the reputation guard, and the metrics.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::AppError;
use crate::config::ReputationGuard;
use crate::domain::{CampaignCounter, CampaignId};
use crate::ports::{CampaignStore, Metric, Metrics};

/// Counts gathered while a batch of messages is handled, written once per
/// (campaign, counter, time bucket) when the batch is done
/// (`Counters::flush`), not once per message.
#[derive(Debug, Default)]
pub struct BatchCounts(HashMap<(CampaignId, CampaignCounter, i64), u64>);

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
        let mut one = BatchCounts::default();
        self.gather(&mut one, campaign_id, counter, now);
        self.flush(&mut one).await
    }

    /// Notes one count in `batch`, written by `flush`.
    pub fn gather(
        &self,
        batch: &mut BatchCounts,
        campaign_id: &CampaignId,
        counter: CampaignCounter,
        now: OffsetDateTime,
    ) {
        *batch.0.entry((*campaign_id, counter, self.reputation.bucket_of(now))).or_default() += 1;
    }

    /// Writes what `batch` gathered: two writes per (campaign, counter,
    /// time bucket) however many events it counted. Every entry is tried;
    /// the first failure is returned, and the counts it held are lost (a
    /// count is never written twice).
    pub async fn flush(&self, batch: &mut BatchCounts) -> Result<(), AppError> {
        let mut first_failure = None;
        for ((campaign_id, counter, bucket), by) in std::mem::take(&mut batch.0) {
            if let Err(e) = self.write(&campaign_id, counter, bucket, by).await {
                first_failure.get_or_insert(e);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    async fn write(
        &self,
        campaign_id: &CampaignId,
        counter: CampaignCounter,
        bucket: i64,
        by: u64,
    ) -> Result<(), AppError> {
        if counter == CampaignCounter::Settled {
            // Bookkeeping for completion, not an event: no timeline, no metric.
            self.campaigns.increment(campaign_id, counter, by).await?;
            return Ok(());
        }
        if counter != CampaignCounter::Sent {
            // Sends are totalled by the send ledger.
            self.campaigns.increment(campaign_id, counter, by).await?;
        }
        self.campaigns.increment_window(campaign_id, counter, bucket, by).await?;
        self.metrics.count(Some(campaign_id), Metric::Counter(counter), by);
        Ok(())
    }
}
