//! Port: errors.

use super::*;

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
