//! The `secure_message` fallback: a message that cannot reach its
//! recipient's server over TLS is kept on the stack, sealed, and the
//! patient gets a notice without PHI linking to a page (`/s/{token}`; the
//! token is signed and holds only IDs). The page shows the message once the
//! patient proves who they are: a one-time code sent to the same address
//! (at most [`CODES_PER_HOUR`], each working [`CODE_MINUTES`]) and their
//! date of birth when the contact has one. [`MAX_FAILURES`] wrong answers
//! lock the message for good; every view and every lockout is audited.

use std::sync::Arc;

use governor::DefaultDirectRateLimiter;
use serde::{Deserialize, Serialize};

use super::{AppError, Auditor};
use crate::config::Settings;
use crate::crypto::{Envelope, Keyring, TokenPurpose};
use crate::domain::{Attribute, Campaign, CampaignId, Contact, ContactId, SECURE_MESSAGE_LIFETIME};
use crate::error::Classify;
use crate::mail::MailingList;
use crate::mail::secure::{Notice, code_message, notice_message};
use crate::ports::{
    Clock, ContactStore, IssuedCode, MailTransport, OutgoingMail, SecureMessage, SecureMessageStore, StoreError,
    TransportErrorKind, Window,
};

/// Codes a message may be sent per hour.
pub const CODES_PER_HOUR: u32 = 3;
/// How long a code works.
pub const CODE_MINUTES: i64 = 10;
/// Wrong codes or dates of birth before the message locks.
pub const MAX_FAILURES: u32 = 5;

/// What is kept for the patient: the message as its text part shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureContent {
    pub subject: String,
    pub text: String,
}

impl std::fmt::Debug for SecureContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecureContent(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Handed to the provider now.
    Sent,
    /// An earlier attempt sent it.
    AlreadySent,
    /// The provider refused the notice too: nothing reaches the patient.
    Refused,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("provider is throttling")]
    Throttled,
    /// The provider may have taken it; not known.
    #[error("notice may have been sent: {0}")]
    Ambiguous(#[source] AppError),
    #[error(transparent)]
    Failed(#[from] AppError),
}

impl From<StoreError> for NoticeError {
    fn from(e: StoreError) -> Self {
        NoticeError::Failed(e.into())
    }
}

/// What the page shows before the patient proves anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageView {
    pub sender_name: String,
    pub state: PageState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    Ready,
    Locked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Sent,
    TooMany,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Shown(SecureContent),
    /// Wrong or expired code, or wrong date of birth (which one is not said).
    Wrong {
        attempts_left: u32,
    },
    Locked,
}

pub struct SecureMessages {
    pub(super) store: Arc<dyn SecureMessageStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) transport: Arc<dyn MailTransport>,
    pub(super) catalog: Arc<super::CampaignCatalog>,
    pub(super) audit: Arc<Auditor>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    /// The sender's: notices and codes share the send rate.
    pub(super) limiter: Arc<DefaultDirectRateLimiter>,
    pub(super) clock: Arc<dyn Clock>,
}

impl SecureMessages {
    /// Keeps `content` for `contact` and sends the notice, once per
    /// campaign and contact whatever the retries.
    pub async fn deliver(
        &self,
        campaign: &Campaign,
        contact: &Contact,
        content: &SecureContent,
        unsubscribe_url: Option<&str>,
    ) -> Result<NoticeOutcome, NoticeError> {
        let now = self.clock.now();
        let plain = serde_json::to_vec(content).map_err(|_| StoreError::corrupt("secure message content"))?;
        let sealed = self.envelope.seal_secure_message(&contact.id, &plain).await.map_err(AppError::from)?;
        let stored = self
            .store
            .create(&SecureMessage {
                campaign: campaign.id,
                contact: contact.id,
                sealed,
                created_at: now,
                expires_at: now + SECURE_MESSAGE_LIFETIME,
                notice_sent: false,
                code: None,
                failures: 0,
            })
            .await?;
        if stored.notice_sent {
            return Ok(NoticeOutcome::AlreadySent);
        }
        let token = self.keyring.tokens.sign(
            TokenPurpose::SecureMessage,
            &contact.id,
            campaign.id.as_bytes(),
            stored.expires_at,
        );
        let page_url = self.settings.public_base_url.join(&format!("/s/{token}"));
        let key = format!("{}.{}", campaign.id, contact.id);
        let raw = notice_message(Notice {
            from: &campaign.sender,
            to: &contact.email,
            key: &key,
            page_url: &page_url,
            days: SECURE_MESSAGE_LIFETIME.as_secs() / 86_400,
            list: unsubscribe_url.map(|url| MailingList {
                unsubscribe_url: url,
                category: campaign.category.as_str(),
                campaign_id: campaign.id.to_string(),
            }),
            postal_address: self.settings.postal_address.as_deref(),
        })
        .map_err(|_| StoreError::corrupt("the notice cannot be built"))?;
        let mail = OutgoingMail {
            key: format!("notice-{}-{}", campaign.id, contact.id),
            message_id: crate::mail::message_id(&format!("notice.{key}"), &campaign.sender),
            from: campaign.sender.address.as_str().to_owned(),
            to: contact.email.as_str().to_owned(),
            raw,
            provider_tracking: Default::default(),
            tls_optional: true,
        };
        self.limiter.until_ready().await;
        match self.transport.send(&mail).await {
            Ok(_) => {
                self.store.notice_sent(&campaign.id, &contact.id).await?;
                Ok(NoticeOutcome::Sent)
            }
            Err(e) => match e.kind {
                TransportErrorKind::Throttled => Err(NoticeError::Throttled),
                TransportErrorKind::Ambiguous => Err(NoticeError::Ambiguous(e.into())),
                TransportErrorKind::Permanent | TransportErrorKind::TlsUnavailable => {
                    tracing::warn!(campaign_id = %campaign.id, contact_id = %contact.id, error = %e, "secure message notice refused");
                    Ok(NoticeOutcome::Refused)
                }
                _ => Err(NoticeError::Failed(e.into())),
            },
        }
    }

    /// The message a page token is for, and the campaign's sender.
    async fn find(&self, token: &str) -> Result<(CampaignId, ContactId, SecureMessage, String), AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::SecureMessage, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        let campaign = CampaignId::from_bytes(verified.subject);
        let message = self.store.get(&campaign, &verified.contact_id).await?.ok_or(AppError::BadToken)?;
        if message.expires_at <= self.clock.now() {
            return Err(AppError::BadToken);
        }
        let sender = match self.catalog.load(&campaign).await {
            Ok(loaded) => loaded.campaign.sender.name.clone(),
            Err(AppError::NotFound(_)) => return Err(AppError::BadToken),
            Err(e) => return Err(e),
        };
        Ok((campaign, verified.contact_id, message, sender))
    }

    pub async fn page(&self, token: &str) -> Result<PageView, AppError> {
        let (_, _, message, sender_name) = self.find(token).await?;
        let state = if message.failures >= MAX_FAILURES { PageState::Locked } else { PageState::Ready };
        Ok(PageView { sender_name, state })
    }

    /// Emails a new one-time code to the contact's address.
    pub async fn send_code(&self, token: &str) -> Result<CodeOutcome, AppError> {
        let (campaign, contact, message, _) = self.find(token).await?;
        if message.failures >= MAX_FAILURES {
            return Ok(CodeOutcome::Locked);
        }
        let now = self.clock.now();
        let code = format!("{:06}", rand::random_range(0..1_000_000u32));
        let issued = IssuedCode { hash: code_hash(&campaign, &contact, &code), expires_at: now + code_lifetime() };
        let window = Window::ending(now, std::time::Duration::from_secs(3600), SECURE_MESSAGE_LIFETIME);
        if !self.store.issue_code(&campaign, &contact, &issued, CODES_PER_HOUR, window).await? {
            return Ok(CodeOutcome::TooMany);
        }
        let record = self.contacts.get(&contact).await?.ok_or(AppError::BadToken)?;
        let (email, _) = self.envelope.open(&contact, &record.sealed, Some(&[])).await.map_err(AppError::from)?;
        let loaded = self.catalog.load(&campaign).await?;
        let sender = &loaded.campaign.sender;
        let key = format!("{campaign}.{contact}.{}", now.unix_timestamp());
        let raw = code_message(sender, &email, &key, &code, CODE_MINUTES)
            .map_err(|_| StoreError::corrupt("the code email cannot be built"))?;
        let mail = OutgoingMail {
            key: format!("code-{campaign}-{contact}-{}", now.unix_timestamp()),
            message_id: crate::mail::message_id(&format!("code.{key}"), sender),
            from: sender.address.as_str().to_owned(),
            to: email.as_str().to_owned(),
            raw,
            provider_tracking: Default::default(),
            tls_optional: true,
        };
        self.limiter.until_ready().await;
        self.transport.send(&mail).await.map_err(AppError::from)?;
        Ok(CodeOutcome::Sent)
    }

    /// Checks the code and date of birth; shows the message, or counts a failure.
    pub async fn open(&self, token: &str, code: &str, date_of_birth: &str) -> Result<Opened, AppError> {
        let (campaign, contact, message, _) = self.find(token).await?;
        if message.failures >= MAX_FAILURES {
            return Ok(Opened::Locked);
        }
        let now = self.clock.now();
        let code_ok = message.code.as_ref().is_some_and(|issued| {
            issued.expires_at > now && constant_time_eq(&issued.hash, &code_hash(&campaign, &contact, code.trim()))
        });
        let record = self.contacts.get(&contact).await?.ok_or(AppError::BadToken)?;
        let (_, profile) = self
            .envelope
            .open(&contact, &record.sealed, Some(&[Attribute::DateOfBirth]))
            .await
            .map_err(AppError::from)?;
        // Without a date of birth on file, the code alone proves the address.
        let dob_ok = match profile.date_of_birth {
            Some(on_file) => crate::domain::parse_date("date_of_birth", date_of_birth.trim()).ok() == Some(on_file),
            None => true,
        };
        if !(code_ok && dob_ok) {
            let failures = self.store.record_failure(&campaign, &contact).await?;
            if failures >= MAX_FAILURES {
                self.audit
                    .record("patient", "secure_message.locked", Some(contact), vec![], format!("campaign {campaign}"))
                    .await?;
                return Ok(Opened::Locked);
            }
            return Ok(Opened::Wrong { attempts_left: MAX_FAILURES - failures });
        }
        self.store.spend_code(&campaign, &contact).await?;
        let plain = self.envelope.open_secure_message(&contact, &message.sealed).await.map_err(AppError::from)?;
        let content: SecureContent =
            serde_json::from_slice(&plain).map_err(|_| AppError::Store(StoreError::corrupt("secure message")))?;
        self.audit
            .record(
                "patient",
                "secure_message.view",
                Some(contact),
                vec!["secure_message".into(), "date_of_birth".into()],
                format!("campaign {campaign}"),
            )
            .await?;
        Ok(Opened::Shown(content))
    }
}

fn code_lifetime() -> time::Duration {
    time::Duration::minutes(CODE_MINUTES)
}

/// The stored form of a code: bound to its message, so a hash says nothing
/// without it.
fn code_hash(campaign: &CampaignId, contact: &ContactId, code: &str) -> String {
    crate::forms::sha256_hex(&format!("{campaign}:{contact}:{code}"))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a failure to deliver a notice is worth retrying.
pub fn notice_retryable(e: &NoticeError) -> bool {
    match e {
        NoticeError::Throttled => true,
        NoticeError::Ambiguous(_) => false,
        NoticeError::Failed(e) => e.is_transient(),
    }
}

#[cfg(test)]
#[path = "secure_message_tests.rs"]
mod tests;
