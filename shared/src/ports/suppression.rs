//! Port: suppression.

use super::*;

pub use crate::domain::SuppressionReason;

/// Addresses that must never be mailed again, keyed by the email's blind index.
#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// Adds the entry; an existing entry keeps its first reason.
    async fn suppress(&self, email_index: &BlindIndex, reason: SuppressionReason) -> Result<(), StoreError>;
    async fn reason(&self, email_index: &BlindIndex) -> Result<Option<SuppressionReason>, StoreError>;
    /// The suppressed ones among `indexes` (fan-out reads a page this way).
    /// The default asks one by one.
    async fn suppressed_among(
        &self,
        indexes: &[BlindIndex],
    ) -> Result<std::collections::HashSet<BlindIndex>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for index in indexes {
            if self.reason(index).await?.is_some() {
                out.insert(index.clone());
            }
        }
        Ok(out)
    }
}
