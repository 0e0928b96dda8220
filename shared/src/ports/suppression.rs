//! Port: suppression.

use super::*;

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
    /// The suppressed ones among `indexes` (fan-out reads a page this way).
    /// The default asks one by one.
    async fn suppressed_among(&self, indexes: &[String]) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for index in indexes {
            if self.reason(index).await?.is_some() {
                out.insert(index.clone());
            }
        }
        Ok(out)
    }
}
