//! Envelope encryption, the email blind index, signed tokens and sealed
//! client-held state, on aws-lc-rs.
//! The format is documented in `docs/encryption.md`.

pub(crate) mod blind_index;
pub mod envelope;
pub(crate) mod keyring;
pub(crate) mod sealed_state;
pub(crate) mod tokens;

pub use blind_index::BlindIndexer;
pub use envelope::{CacheLimits, Envelope, OpenError, SealError};
pub use keyring::Keyring;
pub use sealed_state::{OpenStateError, StateSealer};
pub use tokens::{TokenError, TokenPurpose, TokenSigner, VerifiedToken, VerifiedTracking};
