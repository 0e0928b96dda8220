//! Port: secure messages, for recipients whose server cannot do TLS (the
//! `secure_message` fallback). One per (campaign, contact): the message
//! sealed with the envelope, whether its notice left, the one-time codes
//! issued (hashed), failed proofs and the lockout.

use super::*;

/// A stored secure message.
#[derive(Clone, PartialEq, Eq)]
pub struct SecureMessage {
    pub campaign: CampaignId,
    pub contact: ContactId,
    /// `Envelope::seal_secure_message` of its subject and body.
    pub sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub notice_sent: bool,
    /// The latest one-time code: its hash and when it stops working.
    pub code: Option<IssuedCode>,
    /// Failed proofs (wrong code or date of birth) since the last success.
    pub failures: u32,
}

#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub hash: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// No content, no code hash: only IDs, times and counts.
impl std::fmt::Debug for SecureMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureMessage")
            .field("campaign", &self.campaign)
            .field("contact", &self.contact)
            .field("expires_at", &self.expires_at)
            .field("notice_sent", &self.notice_sent)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait SecureMessageStore: Send + Sync {
    /// Stores `message` unless one exists for its campaign and contact;
    /// answers the stored one (this or the earlier).
    async fn create(&self, message: &SecureMessage) -> Result<SecureMessage, StoreError>;
    async fn get(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<SecureMessage>, StoreError>;
    /// Its notice was handed to the provider.
    async fn notice_sent(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError>;
    /// Replaces the code with `code` if fewer than `max` codes were issued
    /// within `window` (then recorded at `window.at`); false, changing
    /// nothing, otherwise.
    async fn issue_code(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        code: &IssuedCode,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError>;
    /// One more failed proof; answers the failures so far.
    async fn record_failure(&self, campaign: &CampaignId, contact: &ContactId) -> Result<u32, StoreError>;
    /// A successful proof: the code is spent and the failures forgiven.
    async fn spend_code(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError>;
}
