//! Port: campaigns.

use super::*;

/// A campaign as stored: the definition as JSON (no PHI), status and shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    pub id: CampaignId,
    pub definition: String,
    pub status: CampaignStatus,
    pub shards: u16,
    pub created_at: OffsetDateTime,
    /// Why the campaign was last paused (kept after a resume; meaningful
    /// while `status` is `Paused`).
    pub paused_reason: Option<String>,
}

/// Where a page of the campaign list starts: just after this campaign, in
/// newest-first order. Written as `{created_at:012}#{campaign_id}` (the
/// same text sorts as the list does), so it is opaque to callers and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignCursor {
    pub created_at: i64,
    pub id: CampaignId,
}

impl CampaignCursor {
    pub fn of(record: &CampaignRecord) -> CampaignCursor {
        CampaignCursor { created_at: record.created_at.unix_timestamp(), id: record.id }
    }

    /// None for anything but a cursor this type wrote.
    pub fn parse(text: &str) -> Option<CampaignCursor> {
        let (at, id) = text.split_once('#')?;
        if at.len() != 12 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(CampaignCursor { created_at: at.parse().ok()?, id: CampaignId::parse(id).ok()? })
    }
}

impl std::fmt::Display for CampaignCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:012}#{}", self.created_at, self.id)
    }
}

/// One page of campaigns, newest first, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignPage {
    pub campaigns: Vec<CampaignRecord>,
    pub next: Option<CampaignCursor>,
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    async fn create(&self, record: &CampaignRecord) -> Result<(), StoreError>;
    async fn get(&self, id: &CampaignId) -> Result<Option<CampaignRecord>, StoreError>;
    /// At most `limit` campaigns, newest first (creation time, then ID),
    /// after `after`; `next` is set when more may follow.
    async fn list(&self, after: Option<CampaignCursor>, limit: usize) -> Result<CampaignPage, StoreError>;
    /// Moves `from` → `to`; returns false (and changes nothing) if the status was not `from`.
    async fn transition(&self, id: &CampaignId, from: CampaignStatus, to: CampaignStatus) -> Result<bool, StoreError>;
    async fn save_shard(&self, id: &CampaignId, progress: &ShardProgress) -> Result<(), StoreError>;
    async fn shards(&self, id: &CampaignId) -> Result<Vec<ShardProgress>, StoreError>;
    async fn increment(&self, id: &CampaignId, counter: CampaignCounter, by: u64) -> Result<(), StoreError>;
    async fn counters(&self, id: &CampaignId) -> Result<Vec<(CampaignCounter, u64)>, StoreError>;
    /// Moves a `FanningOut` or `Sending` campaign to `Paused` and records
    /// why; returns false (and changes nothing) from any other status.
    async fn pause(&self, id: &CampaignId, reason: &str) -> Result<bool, StoreError>;
    /// Adds to `counter` in the time bucket `bucket` (for sliding windows).
    async fn increment_window(
        &self,
        id: &CampaignId,
        counter: CampaignCounter,
        bucket: i64,
        by: u64,
    ) -> Result<(), StoreError>;
    /// Each of `counters` summed over the buckets `from_bucket` and later
    /// (counters with nothing there are left out).
    async fn window(
        &self,
        id: &CampaignId,
        counters: &[CampaignCounter],
        from_bucket: i64,
    ) -> Result<Vec<(CampaignCounter, u64)>, StoreError>;
    /// Every non-empty (bucket, counter, value) of the campaign, in bucket order.
    async fn window_buckets(&self, id: &CampaignId) -> Result<Vec<(i64, CampaignCounter, u64)>, StoreError>;
}
