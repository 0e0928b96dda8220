//! Turning a campaign template and one contact into an RFC 5322 message.

pub mod lint;
pub mod mime;
pub mod render;
pub mod tracking;

pub use lint::lint;
pub use mime::{MessageParts, build_message};
pub use render::{CompiledTemplate, RenderError, Rendered, TemplateError};
