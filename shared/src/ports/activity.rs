//! Port: activity.

use super::*;

/// What a contact's mail did lately, for behavioural segments. Times only:
/// which campaign was opened or clicked is not kept here, because a
/// condition-specific campaign's name would reveal PHI by context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub last_open: Option<OffsetDateTime>,
    pub last_click: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    Open,
    Click,
}

/// Per-contact engagement, recent soft bounces and the last double opt-in
/// email (for its rate limit). Every row carries an
/// expiry (the retention period from its last change); DynamoDB's TTL or
/// the embedded sweeper removes it after that.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Moves the contact's last open or click forward to `at` (never back).
    async fn record_engagement(
        &self,
        contact: &ContactId,
        kind: Engagement,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn activity(&self, contact: &ContactId) -> Result<Option<Activity>, StoreError>;
    /// Takes the contact's confirmation-email slot: records `at` and returns
    /// true if no confirmation was sent after `not_since`; false (changing
    /// nothing) otherwise. Atomic, so racing submissions send one email.
    async fn claim_confirmation_slot(
        &self,
        contact: &ContactId,
        at: OffsetDateTime,
        not_since: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// How many marketing campaigns the contact was sent (claimed below) at
    /// or after `since`, `except` not counted.
    async fn marketing_sends_since(
        &self,
        contact: &ContactId,
        since: OffsetDateTime,
        except: &CampaignId,
    ) -> Result<u32, StoreError>;
    /// Takes a frequency-cap slot for `campaign`: true if this campaign
    /// already holds one, or if fewer than `max` other campaigns were claimed
    /// at or after `since` (then records it at `at`); false, changing
    /// nothing, otherwise. Atomic, so racing senders never exceed `max`.
    async fn claim_marketing_send(
        &self,
        contact: &ContactId,
        campaign: &CampaignId,
        at: OffsetDateTime,
        since: OffsetDateTime,
        max: u32,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Records one soft bounce at `at`; returns how many the contact has had
    /// at or after `since`, this one included.
    async fn record_soft_bounce(
        &self,
        contact: &ContactId,
        at: OffsetDateTime,
        since: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<u32, StoreError>;
}
