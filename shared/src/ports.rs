//! Ports: one trait per outside system. Each has an embedded adapter
//! (`adapters::embedded`) and an AWS adapter, and one contract test suite
//! (`tests/contracts` in this crate) that both must pass.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::domain::{
    AuditEntry, CampaignCounter, CampaignId, CampaignStatus, ConsentEntry, ConsentGrant, ConsentStatus, ContactId,
    ExternalId, ProviderMessageId, ShardProgress,
};
use crate::error::{Classify, ErrorClass};

// ---------------------------------------------------------------- errors

/// A table store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("conditional write lost: {0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => ErrorClass::Transient,
            StoreError::Corrupt(_) => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("receipt handle is no longer valid")]
    StaleReceipt,
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::Unavailable(_) => ErrorClass::Transient,
            QueueError::StaleReceipt => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyProviderError {
    #[error("key service unavailable: {0}")]
    Unavailable(String),
    #[error("key service refused: {0}")]
    Refused(String),
}

impl Classify for KeyProviderError {
    fn class(&self) -> ErrorClass {
        match self {
            KeyProviderError::Unavailable(_) => ErrorClass::Transient,
            KeyProviderError::Refused(_) => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// The provider asked us to slow down; retry after a back-off.
    Throttled,
    Transient,
    /// The request reached the provider and its answer was lost (timeout,
    /// 5xx): it may have been accepted. Never retried blindly; the provider's
    /// Send event or the acceptance grace settles it.
    Ambiguous,
    /// This message will never be accepted as it is.
    Permanent,
}

#[derive(Debug, thiserror::Error)]
#[error("mail transport {kind:?}: {message}")]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl Classify for TransportError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            TransportErrorKind::Throttled | TransportErrorKind::Transient | TransportErrorKind::Ambiguous => {
                ErrorClass::Transient
            }
            TransportErrorKind::Permanent => ErrorClass::Permanent,
        }
    }
}

// ---------------------------------------------------------------- keys

/// Context bound to a wrapped key; IDs and purposes only, never PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionContext(Vec<(String, String)>);

impl EncryptionContext {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        v.sort();
        Self(v)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// A canonical byte form, used as AAD by the key file adapter.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out
    }
}

/// A fresh 256-bit data key: the plaintext for use now, the wrapped form to store.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub wrapped: Vec<u8>,
}

/// The customer's key service: KMS in AWS, a local key file when embedded.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyProviderError>;
    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, KeyProviderError>;
}

// ---------------------------------------------------------------- contacts

/// A contact as stored: IDs and the email's blind index in the clear, every
/// attribute sealed (see `crypto::envelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub id: ContactId,
    pub external_id: Option<ExternalId>,
    pub email_index: String,
    pub sealed: Vec<u8>,
    pub updated_at: OffsetDateTime,
}

/// One of `total` disjoint parts of the contact table (a parallel-scan segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u16,
    pub total: u16,
}

/// One page of a shard scan. `next` is an opaque cursor (its form belongs to
/// the adapter); `None` means the shard is exhausted. A page may be empty
/// while `next` is still set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    pub records: Vec<ContactRecord>,
    pub next: Option<String>,
}

#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Inserts or replaces the record with this ID. Fails with `Conflict` if
    /// another contact already holds the email index or external ID.
    async fn put(&self, record: &ContactRecord) -> Result<(), StoreError>;
    async fn get(&self, id: &ContactId) -> Result<Option<ContactRecord>, StoreError>;
    async fn find_by_email_index(&self, email_index: &str) -> Result<Option<ContactRecord>, StoreError>;
    async fn find_by_external_id(&self, external_id: &ExternalId) -> Result<Option<ContactRecord>, StoreError>;
    /// Up to `limit` records of one shard, from `cursor` (`None`: the start).
    /// Across all shards and pages every contact appears exactly once.
    async fn scan_shard(&self, shard: ShardSpec, cursor: Option<&str>, limit: usize) -> Result<ScanPage, StoreError>;
    /// Removes the contact and frees its email index and external ID (erasure);
    /// returns false if there was no such contact.
    async fn delete(&self, id: &ContactId) -> Result<bool, StoreError>;
}

// ---------------------------------------------------------------- consent

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The contact's latest ledger entry, the one a new entry chains onto.
    async fn head(&self, contact: &ContactId) -> Result<Option<ConsentEntry>, StoreError>;
    /// Appends `entry` only if it directly follows the current head (else
    /// `Conflict`), and sets the state of its categories, in one atomic write.
    async fn append(&self, entry: &ConsentEntry, new_status: ConsentStatus) -> Result<(), StoreError>;
    async fn grants(&self, contact: &ContactId) -> Result<Vec<ConsentGrant>, StoreError>;
    async fn history(&self, contact: &ContactId) -> Result<Vec<ConsentEntry>, StoreError>;
}

// ---------------------------------------------------------------- suppression

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    UnsubscribeAll,
    /// `soft_bounce_limit` soft bounces within `soft_bounce_window`.
    RepeatedSoftBounce,
    /// The contact was erased; the address must never be mailed again.
    Erased,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::UnsubscribeAll => "unsubscribe_all",
            SuppressionReason::RepeatedSoftBounce => "repeated_soft_bounce",
            SuppressionReason::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard_bounce" => Some(Self::HardBounce),
            "complaint" => Some(Self::Complaint),
            "unsubscribe_all" => Some(Self::UnsubscribeAll),
            "repeated_soft_bounce" => Some(Self::RepeatedSoftBounce),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// Addresses that must never be mailed again, keyed by the email's blind index.
#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// Adds the entry; an existing entry keeps its first reason.
    async fn suppress(&self, email_index: &str, reason: SuppressionReason) -> Result<(), StoreError>;
    async fn reason(&self, email_index: &str) -> Result<Option<SuppressionReason>, StoreError>;
}

// ---------------------------------------------------------------- activity

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

// ---------------------------------------------------------------- metrics

/// What is measured per campaign. Names are CloudWatch metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// One of the campaign's event counters moved.
    Counter(CampaignCounter),
    /// The provider asked us to slow down.
    Throttled,
    /// A send job failed its last receive and goes to the dead-letter queue.
    DeadLettered,
    /// A provider event matched no send (no campaign to attribute it to).
    UnmatchedEvent,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Counter(c) => match c {
                CampaignCounter::Sent => "Sent",
                CampaignCounter::Delivered => "Delivered",
                CampaignCounter::BouncedHard => "BouncedHard",
                CampaignCounter::BouncedSoft => "BouncedSoft",
                CampaignCounter::BouncedUndetermined => "BouncedUndetermined",
                CampaignCounter::Complained => "Complained",
                CampaignCounter::Opened => "Opened",
                CampaignCounter::OpenedMachine => "OpenedMachine",
                CampaignCounter::Clicked => "Clicked",
                CampaignCounter::ClickedMachine => "ClickedMachine",
                CampaignCounter::Unsubscribed => "Unsubscribed",
                CampaignCounter::Rejected => "Rejected",
                CampaignCounter::Delayed => "Delayed",
                CampaignCounter::RenderingFailed => "RenderingFailed",
                CampaignCounter::DuplicateEvents => "DuplicateEvents",
            },
            Metric::Throttled => "Throttled",
            Metric::DeadLettered => "DeadLettered",
            Metric::UnmatchedEvent => "UnmatchedEvents",
        }
    }
}

/// Counts for dashboards and alarms, dimensioned by campaign ID only (a
/// random ID: never PHI). Best effort: a metric that cannot be written is
/// dropped, never an error for the caller.
pub trait Metrics: Send + Sync {
    fn count(&self, campaign: Option<&CampaignId>, metric: Metric, value: u64);
}

// ---------------------------------------------------------------- campaigns

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

#[async_trait]
pub trait CampaignStore: Send + Sync {
    async fn create(&self, record: &CampaignRecord) -> Result<(), StoreError>;
    async fn get(&self, id: &CampaignId) -> Result<Option<CampaignRecord>, StoreError>;
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

// ---------------------------------------------------------------- audit log

/// The PHI-access audit log: one append-only hash chain.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `entry` if it follows the current last entry (next sequence
    /// number, previous hash); `Conflict` if another writer got there first
    /// (read `last` again and chain anew). Nothing is ever updated or deleted.
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    async fn last(&self) -> Result<Option<AuditEntry>, StoreError>;
    /// Up to `limit` entries after sequence number `after`, in order.
    async fn entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

// ---------------------------------------------------------------- send ledger

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
pub const HELD_REASON: &str = "campaign_paused";

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

// ---------------------------------------------------------------- queues

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub body: String,
    pub receipt_handle: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

/// A queue with SQS semantics: at-least-once, visibility timeout, receive
/// count, and a dead-letter queue after `MaxReceiveCount` receives.
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Makes a received message visible again after `timeout` (back-off).
    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError>;
    /// Approximate number of messages: (visible or in flight, in the dead-letter queue).
    async fn depth(&self) -> Result<(u64, u64), QueueError>;
}

// ---------------------------------------------------------------- mail

/// A message ready for the provider: the full RFC 5322 bytes and the envelope.
#[derive(Clone)]
pub struct OutgoingMail {
    /// Stable for a (campaign, contact) or a confirmation; providers that
    /// can deduplicate use it.
    pub key: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail").field("key", &self.key).finish_non_exhaustive()
    }
}

#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError>;
}

// ---------------------------------------------------------------- secrets

/// Small named secrets stored wrapped by the key provider (the blind-index
/// and token root secret).
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` unless `name` exists; returns what is stored afterwards.
    async fn put_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}
