//! Runtimes that drive the use cases: the embedded stack (one process, one
//! port, in-process queue workers) and the Lambda glue (`aws`, `lambda`)
//! that the functions in `functions/` call.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod deferred;
pub(crate) mod driver;
pub mod embedded;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod serve;
pub(crate) mod workers;

pub use embedded::{EmbeddedConfig, EmbeddedStack, StackError, TransportChoice};
pub use serve::ServerLimits;
