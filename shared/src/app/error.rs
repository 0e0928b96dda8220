use crate::crypto::envelope::{OpenError, SealError};
use crate::crypto::keyring::KeyringError;
use crate::domain::InvalidField;
use crate::error::{Classify, ErrorClass};
use crate::ports::{KeyProviderError, QueueError, StoreError, TransportError};

/// What a use case can fail with. HTTP maps these to status codes without
/// ever echoing the inner text of an infrastructure error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input: {0}")]
    Invalid(#[from] InvalidField),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("link is invalid or expired")]
    BadToken,
    /// The request came from a page this form does not accept posts from.
    #[error("origin not allowed for this form")]
    OriginNotAllowed,
    /// No browser Origin and no valid server-to-server signature.
    #[error("a request without an Origin must be signed by the form's server")]
    Unauthenticated,
    /// Too many requests from one client or for one address.
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    KeyProvider(#[from] KeyProviderError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl Classify for AppError {
    fn class(&self) -> ErrorClass {
        match self {
            AppError::Invalid(_)
            | AppError::NotFound(_)
            | AppError::BadToken
            | AppError::OriginNotAllowed
            | AppError::Unauthenticated
            | AppError::RateLimited { .. } => ErrorClass::Permanent,
            AppError::Conflict(_) => ErrorClass::Transient,
            AppError::Store(e) => e.class(),
            AppError::Queue(e) => e.class(),
            AppError::KeyProvider(e) => e.class(),
            AppError::Open(e) => e.class(),
            AppError::Seal(e) => e.class(),
            AppError::Keyring(e) => e.class(),
            AppError::Transport(e) => e.class(),
        }
    }
}
