//! Port: audit log.

use super::*;

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
