//! Port: send ledger.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerState {
    /// A sender holds the claim until `lease_until`.
    Claimed {
        attempt: u32,
        lease_until: OffsetDateTime,
    },
    Sent {
        provider_message_id: ProviderMessageId,
    },
    /// Not sent and never will be for this campaign: consent gone, suppressed.
    /// `reason` is a `SkipReason`'s stored text (`SkipReason::as_str`).
    Skipped {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This caller now holds the claim; `attempt` > 1 means an earlier holder
    /// let its lease lapse (it may have crashed after the provider accepted).
    Claimed { attempt: u32 },
    /// Another sender holds an unexpired claim: try again later.
    Busy,
    /// Already in a terminal state: acknowledge the job, do nothing.
    Done(LedgerState),
}

/// Terminal outcomes that can be undone, so their jobs can run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopenable {
    /// `Failed` rows: `carepost campaign retry-failed`.
    Failed,
    /// `Skipped` with `HELD_REASON`: jobs that met a paused campaign.
    Held,
}

/// The skip reason of a job held because its campaign was paused.
pub const HELD_REASON: &str = crate::domain::SkipReason::CampaignPaused.as_str();
/// The `Skipped` reason of a send job of a cancelled campaign.
pub const CANCELLED_REASON: &str = crate::domain::SkipReason::Cancelled.as_str();

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCounts {
    pub claimed: u64,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// Exactly-once bookkeeping per (campaign, contact).
#[async_trait]
pub trait SendLedger: Send + Sync {
    async fn claim(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Records the outcome of the claim held as `attempt`; `Conflict` if that
    /// claim is no longer ours.
    async fn settle(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        state: &LedgerState,
    ) -> Result<(), StoreError>;
    /// Gives up a claim known not to have been sent (transient failure).
    async fn release(&self, campaign: &CampaignId, contact: &ContactId, attempt: u32) -> Result<(), StoreError>;
    async fn state(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerState>, StoreError>;
    async fn find_by_provider_id(&self, id: &ProviderMessageId) -> Result<Option<(CampaignId, ContactId)>, StoreError>;
    async fn counts(&self, campaign: &CampaignId) -> Result<LedgerCounts, StoreError>;
    /// Records that the provider reported `event` for this message; true
    /// the first time, false for a repeat (providers deliver events at least
    /// once, and a repeat must not be counted again).
    async fn first_event(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        event: CampaignCounter,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` contacts of `campaign` in the `which` state whose ID
    /// sorts after `after`, in ID order.
    async fn reopenable(
        &self,
        campaign: &CampaignId,
        which: Reopenable,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;
    /// Up to `limit` contacts of `campaign`, after `after` in ID order, whose
    /// rows are neither terminal nor held: released, or claimed, with the
    /// last lease ended before `lapsed_before`. Past the longest back-off
    /// such a row has no job left in the queue (it was dead-lettered).
    async fn stranded(
        &self,
        campaign: &CampaignId,
        lapsed_before: OffsetDateTime,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;
    /// Makes a `which` row claimable again (as if released); returns false
    /// (and changes nothing) if the row is not in that state.
    async fn reopen(&self, campaign: &CampaignId, contact: &ContactId, which: Reopenable) -> Result<bool, StoreError>;

    /// The provider reports it accepted this (campaign, contact) message (its
    /// Send event): a claim still open, whatever its attempt, becomes `Sent`.
    /// Returns whether it changed anything. Safe against races: `settle` is
    /// conditional on the attempt read here.
    async fn record_acceptance(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        provider_message_id: &ProviderMessageId,
    ) -> Result<bool, StoreError> {
        match self.state(campaign, contact).await? {
            Some(LedgerState::Claimed { attempt, .. }) => {
                let sent = LedgerState::Sent { provider_message_id: provider_message_id.clone() };
                match self.settle(campaign, contact, attempt, &sent).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::Conflict(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(false),
        }
    }
}
