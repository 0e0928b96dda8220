//! Port: errors.
//!
//! # Sources are kept, and never displayed
//!
//! Every error an adapter builds from an underlying one (an AWS SDK error, a
//! rusqlite error, an I/O or serde error) keeps it as its `source()`, so an
//! operator can walk the chain and downcast it. The `Display` of these types
//! shows only our own text: an operation name, an error code, an attribute
//! name; never an attribute value. The underlying error is deliberately left
//! out of `Display` (and `Debug` only says whether there is one), because its
//! own text may quote what it was given: rusqlite names the failing
//! constraint's values, serde quotes the offending input, SDK service messages
//! can echo request parameters, and any of those may be PHI or a blind index.
//! Logs, metrics and HTTP responses use `Display`, so they stay PHI-free;
//! whoever walks `source()` does so knowingly.

use std::fmt;

use super::*;

/// An underlying error kept as the `source()` of one of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Debug` for a kept source: whether there is one, never its text.
struct HiddenSource<'a>(&'a Option<BoxError>);

impl fmt::Debug for HiddenSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// A table store failed.
///
/// Match on the variant (`StoreError::Conflict(_)`, `StoreError::Unavailable
/// { .. }`); build with the constructors, which take only PHI-free text.
#[derive(thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer usably (transient).
    #[error("store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A conditional write lost; the text names what was contended. It is an
    /// expected outcome, not a failure with a cause, so it keeps no source.
    #[error("conditional write lost: {0}")]
    Conflict(String),
    /// What is stored (or what we asked to store) cannot be read as it must
    /// be (permanent).
    #[error("stored data is corrupt: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// Unavailable because of `source`.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable { context: context.into(), source: Some(source.into()) }
    }

    /// Unavailable with no underlying error (e.g. retries ran out).
    pub fn unavailable_msg(context: impl Into<String>) -> Self {
        StoreError::Unavailable { context: context.into(), source: None }
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict(what.into())
    }

    /// Corrupt, found by our own checks.
    pub fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into(), source: None }
    }

    /// Corrupt, as `source` (a parse or decode error) found.
    pub fn corrupt_from(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Corrupt { what: what.into(), source: Some(source.into()) }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable { context, source } => {
                f.debug_struct("Unavailable").field("context", context).field("source", &HiddenSource(source)).finish()
            }
            StoreError::Conflict(what) => f.debug_tuple("Conflict").field(what).finish(),
            StoreError::Corrupt { what, source } => {
                f.debug_struct("Corrupt").field("what", what).field("source", &HiddenSource(source)).finish()
            }
        }
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Unavailable { .. } | StoreError::Conflict(_) => ErrorClass::Transient,
            StoreError::Corrupt { .. } => ErrorClass::Permanent,
        }
    }
}

#[derive(thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("receipt handle is no longer valid")]
    StaleReceipt,
}

impl QueueError {
    /// Unavailable because of `source`.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        QueueError::Unavailable { context: context.into(), source: Some(source.into()) }
    }

    /// Unavailable with no underlying error.
    pub fn unavailable_msg(context: impl Into<String>) -> Self {
        QueueError::Unavailable { context: context.into(), source: None }
    }
}

impl fmt::Debug for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Unavailable { context, source } => {
                f.debug_struct("Unavailable").field("context", context).field("source", &HiddenSource(source)).finish()
            }
            QueueError::StaleReceipt => f.write_str("StaleReceipt"),
        }
    }
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::Unavailable { .. } => ErrorClass::Transient,
            QueueError::StaleReceipt => ErrorClass::Permanent,
        }
    }
}

#[derive(thiserror::Error)]
pub enum KeyProviderError {
    #[error("key service unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("key service refused: {context}")]
    Refused {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl KeyProviderError {
    /// Unavailable (transient) with no underlying error.
    pub fn unavailable(context: impl Into<String>) -> Self {
        KeyProviderError::Unavailable { context: context.into(), source: None }
    }

    /// Refused (permanent) with no underlying error.
    pub fn refused(context: impl Into<String>) -> Self {
        KeyProviderError::Refused { context: context.into(), source: None }
    }

    /// The same error, keeping `source` as its cause.
    pub fn with_source(self, source: impl Into<BoxError>) -> Self {
        let source = Some(source.into());
        match self {
            KeyProviderError::Unavailable { context, .. } => KeyProviderError::Unavailable { context, source },
            KeyProviderError::Refused { context, .. } => KeyProviderError::Refused { context, source },
        }
    }
}

impl fmt::Debug for KeyProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, context, source) = match self {
            KeyProviderError::Unavailable { context, source } => ("Unavailable", context, source),
            KeyProviderError::Refused { context, source } => ("Refused", context, source),
        };
        f.debug_struct(name).field("context", context).field("source", &HiddenSource(source)).finish()
    }
}

impl Classify for KeyProviderError {
    fn class(&self) -> ErrorClass {
        match self {
            KeyProviderError::Unavailable { .. } => ErrorClass::Transient,
            KeyProviderError::Refused { .. } => ErrorClass::Permanent,
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
    /// The message cannot travel over TLS (the relay offers no STARTTLS, the
    /// handshake failed, or TLS to the recipient's server is unavailable).
    /// Not sent and not the address's fault: never suppresses.
    TlsUnavailable,
}

/// A mail transport failed. `message` is PHI-free text of ours (operation,
/// code); the underlying error, if any, is the `source()`.
#[derive(thiserror::Error)]
#[error("mail transport {kind:?}: {message}")]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
    #[source]
    source: Option<BoxError>,
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// The same error, keeping `source` as its cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &HiddenSource(&self.source))
            .finish()
    }
}

impl Classify for TransportError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            TransportErrorKind::Throttled | TransportErrorKind::Transient | TransportErrorKind::Ambiguous => {
                ErrorClass::Transient
            }
            TransportErrorKind::Permanent | TransportErrorKind::TlsUnavailable => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// An underlying error whose text holds what must never be displayed.
    #[derive(Debug, thiserror::Error)]
    #[error("UNIQUE constraint failed: ada@example.org")]
    struct Leaky;

    fn assert_kept_and_hidden(e: &(dyn std::error::Error + 'static)) {
        let source = e.source().expect("the underlying error is the source");
        assert!(source.downcast_ref::<Leaky>().is_some(), "the source is the very error, downcastable");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("ada@example.org"), "{shown}");
            assert!(!shown.contains("UNIQUE"), "{shown}");
        }
    }

    #[test]
    fn a_store_error_keeps_its_source_and_does_not_display_it() {
        let e = StoreError::unavailable("sqlite insert contacts", Leaky);
        assert_eq!(e.to_string(), "store unavailable: sqlite insert contacts");
        assert_kept_and_hidden(&e);
        assert_eq!(e.class(), ErrorClass::Transient);

        let e = StoreError::corrupt_from("contact row", Leaky);
        assert_eq!(e.to_string(), "stored data is corrupt: contact row");
        assert_kept_and_hidden(&e);
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    #[test]
    fn errors_of_the_other_ports_keep_their_source_too() {
        assert_kept_and_hidden(&QueueError::unavailable("sqs SendMessage: timeout", Leaky));
        assert_kept_and_hidden(
            &KeyProviderError::refused("kms Decrypt: InvalidCiphertextException").with_source(Leaky),
        );
        assert_kept_and_hidden(&TransportError::new(TransportErrorKind::Transient, "smtp: refused").with_source(Leaky));
    }

    #[test]
    fn errors_built_without_a_source_have_none() {
        assert!(StoreError::corrupt("x").source().is_none());
        assert!(StoreError::conflict("x").source().is_none());
        assert!(StoreError::unavailable_msg("x").source().is_none());
        assert_eq!(StoreError::conflict("x").class(), ErrorClass::Transient);
        assert!(matches!(StoreError::conflict("x"), StoreError::Conflict(_)));
    }
}
