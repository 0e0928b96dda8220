//! Turning a campaign template and one contact into an RFC 5322 message.

pub(crate) mod lint;
pub(crate) mod mime;
pub(crate) mod render;
pub(crate) mod secure;
pub(crate) mod tracking;

pub use lint::{LintContext, lint};
pub use mime::{BuildMessageError, MailingList, MessageParts, build_message, html_document, message_id};
pub use render::{CompiledTemplate, RenderError, Rendered, TemplateError};

/// Text made safe to place in HTML, inside elements and quoted attributes.
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
