//! Port: the consent front door's short-lived state.

use super::*;

/// A consent request waiting for the intake worker. Everything a person
/// typed (address, attributes, topics, proof) is sealed under `candidate`,
/// the contact ID the address gets if it is new; the rest is IDs and times.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingIntake {
    pub id: IntakeId,
    pub form_id: String,
    pub candidate: ContactId,
    /// The contact blob (`Envelope::seal`): reused as is for a new address.
    pub sealed_contact: Vec<u8>,
    /// The request (topics, method, proof) as sealed proof.
    pub sealed_request: Vec<u8>,
    pub received_at: OffsetDateTime,
    /// After this the request is gone: a worker finds nothing to do.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingIntake").field("id", &self.id).field("form_id", &self.form_id).finish_non_exhaustive()
    }
}

/// A request counter's key: a keyed hash of what is counted (a client IP or
/// an address, with the form), never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey(String);

impl LimitKey {
    /// `digest` is a keyed hash's hex text.
    pub fn from_digest(digest: String) -> Self {
        Self(digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fixed counting window: requests at or after `start` and before `end`
/// count together; the counter's row may go at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitWindow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl LimitWindow {
    /// The window of `length` (whole seconds, at least one) that holds `at`.
    pub fn holding(at: OffsetDateTime, length: Duration) -> LimitWindow {
        let length = length.as_secs().max(1) as i64;
        let start = at.unix_timestamp().div_euclid(length) * length;
        let from_unix = |t: i64| OffsetDateTime::from_unix_timestamp(t).expect("a time in range");
        LimitWindow { start: from_unix(start), end: from_unix(start + length) }
    }
}

/// Consent requests between the endpoint and the worker, and the per-client
/// request counts. In DynamoDB both live in the activity table (TTL).
#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Stores a request; `Conflict` if its ID is taken.
    async fn put_intake(&self, intake: &PendingIntake) -> Result<(), StoreError>;
    /// The request, unless it was removed or has expired at `now`.
    async fn intake(&self, id: &IntakeId, now: OffsetDateTime) -> Result<Option<PendingIntake>, StoreError>;
    /// Removes a handled request (nothing if it is gone).
    async fn remove_intake(&self, id: &IntakeId) -> Result<(), StoreError>;
    /// Counts one request under each key in `window` and returns each key's
    /// count, this request included. Each count is atomic: racing requests
    /// are all counted.
    async fn count_requests(&self, keys: &[LimitKey], window: LimitWindow) -> Result<Vec<u32>, StoreError>;
}
