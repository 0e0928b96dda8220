//! Every library error says whether trying again can help, so callers decide
//! between a retry (queue redelivery, back-off) and a recorded terminal state.

/// Whether an operation that failed may succeed if tried again unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying: throttling, timeouts, a store briefly unavailable.
    Transient,
    /// Retrying unchanged fails again: bad input, a missing record, a refused key.
    Permanent,
}

/// Implemented by every error type in this crate.
pub trait Classify {
    fn class(&self) -> ErrorClass;

    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}
