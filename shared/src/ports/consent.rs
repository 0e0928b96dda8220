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
    /// The grants in `categories` of each of `contacts` at once (fan-out
    /// reads a page this way); a contact with none is absent. The default
    /// asks one by one.
    async fn grants_of(
        &self,
        contacts: &[ContactId],
        categories: &[ConsentCategory],
    ) -> Result<std::collections::HashMap<ContactId, Vec<ConsentGrant>>, StoreError> {
        let mut out = std::collections::HashMap::with_capacity(contacts.len());
        for contact in contacts {
            let mut grants = self.grants(contact).await?;
            grants.retain(|g| categories.contains(&g.category));
            if !grants.is_empty() {
                out.insert(*contact, grants);
            }
        }
        Ok(out)
    }
    async fn history(&self, contact: &ContactId) -> Result<Vec<ConsentEntry>, StoreError>;
}
