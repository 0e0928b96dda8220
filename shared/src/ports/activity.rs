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

/// A rolling window for the per-contact limits: a write happens `at`, what
/// counts is at or after `since`, and the row it changes expires at `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub at: OffsetDateTime,
    pub since: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Window {
    /// The window of `length` ending `at`, for a row kept `retention` from now.
    pub fn ending(at: OffsetDateTime, length: std::time::Duration, retention: std::time::Duration) -> Window {
        Window { at, since: at - length, expires_at: at + retention }
    }
}

/// Per-contact engagement, recent soft bounces and the last double opt-in
/// email (for its rate limit); and per recipient domain, whether its mail
/// server was lately found unable to do TLS. Every row carries an
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
    /// Takes the contact's confirmation-email slot for `request`, recording
    /// `window.at`: true if no slot was taken after `window.since`, or if
    /// `request` holds it and its email was not handed over yet (a retry);
    /// false, changing nothing, otherwise. Atomic, so racing requests send
    /// one email.
    async fn claim_confirmation_slot(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
        window: Window,
    ) -> Result<bool, StoreError>;
    /// `request`'s email was handed over: its slot is spent, a retry of the
    /// request no longer gets it.
    async fn confirmation_handed_over(&self, contact: &ContactId, request: &ConsentRequestId)
    -> Result<(), StoreError>;
    /// Gives back the slot `request` holds if its email was not handed over
    /// (the transport failed): the slot is spent only by an email that left.
    async fn release_confirmation_slot(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError>;
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
    /// in `window` (then records it at `window.at`); false, changing
    /// nothing, otherwise. Atomic, so racing senders never exceed `max`.
    async fn claim_marketing_send(
        &self,
        contact: &ContactId,
        campaign: &CampaignId,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError>;
    /// Records one soft bounce at `window.at`; returns how many the contact
    /// has had in `window`, this one included.
    async fn record_soft_bounce(&self, contact: &ContactId, window: Window) -> Result<u32, StoreError>;
    /// Remembers that mail to `domain` could not be delivered over TLS at
    /// `at`, until `expires_at` (a later call moves both).
    async fn remember_tls_gap(
        &self,
        domain: &crate::domain::RecipientDomain,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Whether `domain` is remembered lacking TLS at `now`.
    async fn lacks_tls(&self, domain: &crate::domain::RecipientDomain, now: OffsetDateTime)
    -> Result<bool, StoreError>;
}
