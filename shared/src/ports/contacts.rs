//! Port: contacts.

use super::*;

/// A contact as stored: IDs and the email's blind index in the clear, every
/// attribute sealed (see `crypto::envelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub id: ContactId,
    pub external_id: Option<ExternalId>,
    pub email_index: BlindIndex,
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
    async fn find_by_email_index(&self, email_index: &BlindIndex) -> Result<Option<ContactRecord>, StoreError>;
    async fn find_by_external_id(&self, external_id: &ExternalId) -> Result<Option<ContactRecord>, StoreError>;
    /// Up to `limit` records of one shard, from `cursor` (`None`: the start).
    /// Across all shards and pages every contact appears exactly once.
    async fn scan_shard(&self, shard: ShardSpec, cursor: Option<&str>, limit: usize) -> Result<ScanPage, StoreError>;
    /// Removes the contact and frees its email index and external ID (erasure);
    /// returns false if there was no such contact.
    async fn delete(&self, id: &ContactId) -> Result<bool, StoreError>;
    /// Replaces the sealed attributes if they are still `expected` (key
    /// rotation re-seals under the new key); returns false, changing nothing,
    /// if the contact was updated or erased meanwhile. `updated_at` is kept.
    async fn replace_sealed(&self, id: &ContactId, expected: &[u8], sealed: &[u8]) -> Result<bool, StoreError>;
}
