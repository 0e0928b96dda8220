//! Port: consent.

use super::*;

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
