//! Port: mail.

use super::*;

/// A message ready for the provider: the full RFC 5322 bytes and the envelope.
#[derive(Clone)]
pub struct OutgoingMail {
    /// Stable for a (campaign, contact) or a confirmation; providers that
    /// can deduplicate use it.
    pub key: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub raw: Vec<u8>,
    /// What the provider itself may track for this message (SES's open
    /// pixel and link rewriting): off unless the campaign opted in and the
    /// stack does not already track first-party. Transports that cannot
    /// track ignore it.
    pub provider_tracking: crate::domain::Tracking,
    /// No PHI in it (a secure message's notice or code): SES sends it
    /// through the notice configuration set, which does not require TLS.
    pub tls_optional: bool,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail").field("key", &self.key).finish_non_exhaustive()
    }
}

#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError>;
}
