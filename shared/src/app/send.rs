//! Sending one job exactly once.
//!
//! 1. Claim (campaign, contact) in the send ledger (conditional write).
//! 2. Re-check consent and suppression now: either may have changed since fan-out.
//! 3. Render, build MIME, wait for the rate limiter, hand to the transport.
//! 4. Settle the claim as sent / failed; release it on a transient failure.
//!
//! A claim whose lease lapsed (the holder crashed) is taken over with a new
//! attempt number. The one ambiguous window is a crash after the provider
//! accepted the message and before step 4; see `docs/architecture.md`.

use time::OffsetDateTime;

use super::{App, AppError};
use crate::crypto::TokenPurpose;
use crate::domain::{ConsentStatus, SendJob, today_utc};
use crate::error::Classify;
use crate::mail::{MessageParts, build_message};
use crate::ports::{ClaimOutcome, LedgerState, OutgoingMail, StoreError, TransportErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Consent or suppression stopped it; recorded with the reason.
    Skipped(String),
    /// The provider refused it for good; recorded.
    Failed(String),
    /// Already settled by an earlier delivery of the same job.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("another sender holds this job's claim")]
    Busy,
    #[error("provider is throttling")]
    Throttled,
    #[error("transient failure: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl From<AppError> for SendError {
    fn from(e: AppError) -> Self {
        if e.is_transient() { SendError::Transient(e.to_string()) } else { SendError::Permanent(e.to_string()) }
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl App {
    pub async fn process_send(&self, job: &SendJob) -> Result<SendOutcome, SendError> {
        let loaded = self.load_campaign(&job.campaign_id).await?;
        let campaign = &loaded.campaign;
        let now = OffsetDateTime::now_utc();
        let lease = self.settings.throughput.visibility_timeout();
        let attempt = match self.ports.ledger.claim(&job.campaign_id, &job.contact_id, now, lease).await? {
            ClaimOutcome::Claimed { attempt } => attempt,
            ClaimOutcome::Busy => return Err(SendError::Busy),
            ClaimOutcome::Done(_) => return Ok(SendOutcome::AlreadyDone),
        };
        let settle = |state: LedgerState| async move {
            self.ports.ledger.settle(&job.campaign_id, &job.contact_id, attempt, &state).await
        };

        let Some(record) = self.ports.contacts.get(&job.contact_id).await? else {
            settle(LedgerState::Skipped { reason: "contact_erased".into() }).await?;
            return Ok(SendOutcome::Skipped("contact_erased".into()));
        };
        if let Some(reason) = self.ports.suppression.reason(&record.email_index).await? {
            let reason = format!("suppressed_{}", reason.as_str());
            settle(LedgerState::Skipped { reason: reason.clone() }).await?;
            return Ok(SendOutcome::Skipped(reason));
        }
        let grants = self.ports.consent.grants(&job.contact_id).await?;
        let consent_reason = match grants.iter().find(|g| g.category == campaign.category) {
            Some(g) if g.allows_send(now) => None,
            Some(g) if g.status == ConsentStatus::Pending => Some("consent_pending"),
            Some(_) => Some("consent_withdrawn"),
            None => Some("no_consent"),
        };
        if let Some(reason) = consent_reason {
            settle(LedgerState::Skipped { reason: reason.into() }).await?;
            return Ok(SendOutcome::Skipped(reason.into()));
        }

        let (email, profile) = match self.envelope.open(&record.id, &record.sealed, None).await {
            Ok(opened) => opened,
            Err(e) if !e.is_transient() => {
                settle(LedgerState::Failed { reason: "contact_unreadable".into() }).await?;
                return Ok(SendOutcome::Failed("contact_unreadable".into()));
            }
            Err(e) => {
                self.ports.ledger.release(&job.campaign_id, &job.contact_id, attempt).await?;
                return Err(SendError::Transient(e.to_string()));
            }
        };
        let contact = crate::domain::Contact { id: record.id, external_id: record.external_id, email, profile };
        let expires = now + self.settings.unsubscribe_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::Unsubscribe, &contact.id, campaign.id.as_bytes(), expires);
        let unsubscribe_url = self.settings.public_base_url.join(&format!("/u/{token}"));
        let built =
            loaded.template.render(&contact, &unsubscribe_url, today_utc()).map_err(|e| e.to_string()).and_then(
                |rendered| {
                    let message_id = format!("<{}.{}@carepost>", campaign.id, contact.id);
                    build_message(MessageParts {
                        from: &campaign.sender,
                        to: &contact.email,
                        subject: &rendered.subject,
                        message_id: &message_id,
                        unsubscribe_url: Some(&unsubscribe_url),
                        text: rendered.text,
                        html: rendered.html,
                    })
                    .map(|raw| (message_id, raw))
                    .map_err(|e| e.to_string())
                },
            );
        let (message_id, raw) = match built {
            Ok(built) => built,
            Err(_) => {
                settle(LedgerState::Failed { reason: "render_failed".into() }).await?;
                return Ok(SendOutcome::Failed("render_failed".into()));
            }
        };
        let mail = OutgoingMail {
            key: format!("{}-{}", campaign.id, contact.id),
            message_id,
            from: campaign.sender.address.as_str().to_owned(),
            to: contact.email.as_str().to_owned(),
            raw,
        };

        self.limiter.until_ready().await;
        match self.ports.transport.send(&mail).await {
            Ok(provider_message_id) => {
                settle(LedgerState::Sent { provider_message_id }).await?;
                Ok(SendOutcome::Sent)
            }
            Err(e) if e.kind == TransportErrorKind::Permanent => {
                settle(LedgerState::Failed { reason: "provider_rejected".into() }).await?;
                Ok(SendOutcome::Failed("provider_rejected".into()))
            }
            Err(e) => {
                self.ports.ledger.release(&job.campaign_id, &job.contact_id, attempt).await?;
                if e.kind == TransportErrorKind::Throttled {
                    Err(SendError::Throttled)
                } else {
                    Err(SendError::Transient(e.message))
                }
            }
        }
    }
}
