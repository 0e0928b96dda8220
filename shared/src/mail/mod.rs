//! Turning a campaign template and one contact into an RFC 5322 message.

pub(crate) mod lint;
pub(crate) mod mime;
pub(crate) mod render;
pub(crate) mod tracking;

pub use lint::lint;
pub use mime::{MessageParts, build_message};
pub use render::{CompiledTemplate, RenderError, Rendered, TemplateError};
