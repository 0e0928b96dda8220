//! Parse-don't-validate types. A value of one of these types is known good:
//! each has private fields and is built only through `parse` / `TryFrom`.

/// `TryFrom<String>` through the type's `parse(&str)` and `From<T> for
/// String` from its one field: what a text newtype needs for serde's
/// `#[serde(try_from = "String", into = "String")]`.
macro_rules! text_conversions {
    (@try_from $name:ty, $err:ty) => {
        impl TryFrom<String> for $name {
            type Error = $err;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
    };
    ($name:ty, $err:ty) => {
        $crate::domain::text_conversions!(@try_from $name, $err);

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}
pub(crate) use text_conversions;

pub mod audit;
pub mod blind_index;
pub mod campaign;
pub mod chain;
pub mod consent;
pub mod contact;
pub mod email;
pub mod engagement;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod journey;
pub mod origin;
pub mod policy;
pub mod retry;
pub mod schema;
pub mod scrub;
pub mod segment;
pub mod sensitive;
pub mod skip;
pub mod url;

pub use audit::*;
pub use blind_index::{BlindIndex, InvalidBlindIndex};
pub use campaign::*;
pub use chain::{ChainError, GENESIS_HASH};
pub use consent::*;
pub use contact::*;
pub use email::*;
pub use events::*;
pub use ids::*;
pub use jobs::*;
pub use origin::{InvalidOrigin, Origin};
pub use policy::{
    DEFAULT_MIN_CELL, FrequencyCap, ReputationGuard, SECURE_MESSAGE_LIFETIME, TLS_GAP_MEMORY, TlsFallback,
};
pub use retry::{Decision, JobResult, RetryPolicy};
pub use schema::{AttributeClass, AttributeDef, AttributeKey, AttributeType, ContactSchema, ParseContactSchemaError};
pub use scrub::{ParseErrorKind, ScrubbedError};
pub use segment::*;
pub use sensitive::{REDACTED, Sensitive};
pub use skip::{SkipReason, SuppressionReason};
pub use url::*;
