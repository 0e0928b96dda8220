//! Runtimes that drive the use cases: the embedded stack (one process, one
//! port, in-process queue workers). The Lambda functions live in `functions/`.

pub mod embedded;
pub mod workers;

pub use embedded::{EmbeddedConfig, EmbeddedStack, StackError, TransportChoice};
