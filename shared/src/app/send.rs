//! Sending one job exactly once.
//!
//! 1. Claim (campaign, contact) in the send ledger (conditional write).
//! 2. Hold the job if the campaign is paused; re-check consent and
//!    suppression now: either may have changed since fan-out.
//! 3. Render, build MIME, wait for the rate limiter, hand to the transport.
//! 4. Settle the claim as sent / failed; release it on a transient failure.
//!
//! A claim whose lease lapsed (the holder crashed) is taken over with a new
//! attempt number. The one ambiguous window is a crash after the provider
//! accepted the message and before step 4; see `docs/architecture.md`.

use std::sync::Arc;

use governor::DefaultDirectRateLimiter;
use time::OffsetDateTime;

use super::catalog::LoadedCampaign;
use super::secure_message::{NoticeError, NoticeOutcome, SecureContent};
use super::{AppError, Auditor, BatchCounts, CampaignCatalog, Counters};
use crate::config::Settings;
use crate::crypto::{Envelope, Keyring, TokenPurpose};
use crate::domain::{
    CampaignCounter, CampaignId, CampaignStatus, ConsentStatus, SecureNoticeJob, SendJob, SkipReason, TlsFallback,
    hipaa_authorized,
};
use crate::error::Classify;
use crate::mail::{MailingList, MessageParts, build_message, message_id, tracking};
use crate::ports::{
    ActivityStore, CampaignStore, ClaimOutcome, Clock, ConsentStore, ContactStore, LedgerState, MailTransport, Metric,
    Metrics, OutgoingMail, SendLedger, StoreError, SuppressionList, TransportErrorKind, Window,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Consent or suppression stopped it; recorded with the reason.
    Skipped(SkipReason),
    /// The provider refused it for good; recorded.
    Failed(String),
    /// Already settled by an earlier delivery of the same job.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Another sender holds the claim (or a lost answer is awaiting its
    /// Send event); try again once the lease has run out.
    #[error("another sender holds this job's claim")]
    Busy { retry_after: std::time::Duration },
    #[error("provider is throttling")]
    Throttled,
    #[error("transient failure: {0}")]
    Transient(#[source] AppError),
    #[error("permanent failure: {0}")]
    Permanent(#[source] AppError),
    /// The provider accepted the message (or may have) but the ledger could
    /// not record it.
    #[error("sent but not recorded: {0}")]
    Unsettled(#[source] AppError),
}

impl From<AppError> for SendError {
    fn from(e: AppError) -> Self {
        if e.is_transient() { SendError::Transient(e) } else { SendError::Permanent(e) }
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl SendOutcome {
    /// Whether the contact's attributes were decrypted for this job.
    pub fn opened_contact(&self) -> bool {
        matches!(self, SendOutcome::Sent | SendOutcome::Failed(_))
    }
}

/// Sends one job exactly once, at this process's share of the account rate.
pub struct Sender {
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) activity: Arc<dyn ActivityStore>,
    pub(super) transport: Arc<dyn MailTransport>,
    pub(super) metrics: Arc<dyn Metrics>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) audit: Arc<Auditor>,
    pub(super) counters: Arc<Counters>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    /// This process's share of `SendRatePerSecond`.
    pub(super) limiter: Arc<DefaultDirectRateLimiter>,
    /// Recipient domains known to lack TLS, read through a short cache.
    pub(super) tls_gaps: super::tls_gaps::TlsGapCache,
    /// The `secure_message` fallback.
    pub(super) secure: Arc<super::SecureMessages>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Sender {
    /// One audit entry for a batch of sends: every attribute of `count`
    /// contacts of the campaign was decrypted to render their messages.
    pub async fn record_batch(&self, campaign: &crate::domain::CampaignId, count: usize) -> Result<(), AppError> {
        if count == 0 {
            return Ok(());
        }
        let reason = format!("campaign {campaign}: {count} messages rendered");
        let attributes = self.settings.schema.names();
        self.audit.record(super::audit::SENDER_ACTOR, "send.batch", None, attributes, reason).await?;
        Ok(())
    }

    /// Writes the timeline counts a batch gathered (`process_counting`).
    /// The timeline only: counts lost to a failure here lose no mail, and
    /// the report's totals come from the send ledger.
    pub async fn record_counts(&self, counts: &mut BatchCounts) {
        if let Err(e) = self.counters.flush(counts).await {
            tracing::warn!(error = %e, "sends not counted in the timeline");
        }
    }

    /// The rendered HTML with the campaign's opted-in first-party tracking.
    fn with_tracking(
        &self,
        loaded: &LoadedCampaign,
        contact: &crate::domain::ContactId,
        html: &str,
        expires: OffsetDateTime,
    ) -> String {
        let tracking = loaded.campaign.tracking;
        if !self.settings.first_party_tracking {
            return html.to_owned();
        }
        let campaign = loaded.campaign.id.as_bytes();
        let tokens = &self.keyring.tokens;
        let base = &self.settings.public_base_url;
        let mut html = html.to_owned();
        if tracking.clicks {
            html = tracking::rewrite_links(&html, &loaded.links, |link| {
                base.join(&format!(
                    "/t/c/{}",
                    tokens.sign_tracking(TokenPurpose::TrackClick, contact, campaign, link, expires)
                ))
            });
        }
        if tracking.opens {
            let pixel = tokens.sign_tracking(TokenPurpose::TrackOpen, contact, campaign, 0, expires);
            html = tracking::add_open_pixel(&html, &base.join(&format!("/t/o/{pixel}")));
        }
        html
    }

    /// No TLS to the recipient: the row settled `failed: tls_unavailable`
    /// (`retry-failed` resends it once the server is fixed), counted apart,
    /// nothing suppressed.
    async fn tls_unavailable(
        &self,
        campaign: &CampaignId,
        settled: Result<(), StoreError>,
    ) -> Result<SendOutcome, SendError> {
        settled?;
        // The report's count only: the ledger already says why.
        if let Err(e) = self.campaigns.increment(campaign, CampaignCounter::TlsUnavailable, 1).await {
            tracing::warn!(error = %e, campaign_id = %campaign, "TLS failure not counted in the report");
        }
        self.metrics.count(Some(campaign), Metric::Counter(CampaignCounter::TlsUnavailable), 1);
        Ok(SendOutcome::Failed("tls_unavailable".into()))
    }

    /// The message cannot travel over TLS to this recipient: per the
    /// campaign's (or the stack's) `tls_fallback`, a secure message's notice
    /// goes out first; either way the row settles `failed: tls_unavailable`.
    async fn fall_back<F, Fut>(
        &self,
        loaded: &LoadedCampaign,
        contact: &crate::domain::Contact,
        rendered: &crate::mail::Rendered,
        unsubscribe_url: &str,
        settle: &F,
    ) -> Result<SendOutcome, SendError>
    where
        F: Fn(LedgerState) -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let campaign = &loaded.campaign;
        if campaign.tls_fallback.unwrap_or(self.settings.tls_fallback) == TlsFallback::SecureMessage {
            let content = SecureContent { subject: rendered.subject.clone(), text: rendered.text.clone() };
            self.notice(campaign, contact, &content, unsubscribe_url).await?;
        }
        let settled = settle(LedgerState::Failed { reason: "tls_unavailable".into() }).await;
        self.tls_unavailable(&campaign.id, settled).await
    }

    /// Sends the secure message's notice (once) and counts it.
    async fn notice(
        &self,
        campaign: &crate::domain::Campaign,
        contact: &crate::domain::Contact,
        content: &SecureContent,
        unsubscribe_url: &str,
    ) -> Result<NoticeOutcome, SendError> {
        let outcome = match self.secure.deliver(campaign, contact, content, Some(unsubscribe_url)).await {
            Ok(outcome) => outcome,
            Err(NoticeError::Throttled) => return Err(SendError::Throttled),
            Err(NoticeError::Ambiguous(e)) => return Err(SendError::Unsettled(e)),
            Err(NoticeError::Failed(e)) => return Err(e.into()),
        };
        if outcome == NoticeOutcome::Sent {
            if let Err(e) = self.campaigns.increment(&campaign.id, CampaignCounter::SecureNotices, 1).await {
                tracing::warn!(error = %e, campaign_id = %campaign.id, "secure notice not counted in the report");
            }
            self.metrics.count(Some(&campaign.id), Metric::Counter(CampaignCounter::SecureNotices), 1);
        }
        Ok(outcome)
    }

    /// Why the contact's consent no longer lets `campaign` reach them, read
    /// fresh: its topic pending, withdrawn or never granted, or (marketing
    /// with PHI) no HIPAA authorization in force. Fan-out checked it; a send
    /// and a secure message's notice check it again now.
    async fn consent_refuses(
        &self,
        campaign: &crate::domain::Campaign,
        contact: &crate::domain::ContactId,
        now: OffsetDateTime,
    ) -> Result<Option<SkipReason>, SendError> {
        let grants = self.consent.grants(contact).await?;
        let reason = match grants.iter().find(|g| g.category == campaign.category) {
            Some(g) if g.allows_send(now) => None,
            Some(g) if g.status == ConsentStatus::Pending => Some(SkipReason::ConsentPending),
            Some(_) => Some(SkipReason::ConsentWithdrawn),
            None => Some(SkipReason::NoConsent),
        };
        Ok(reason.or_else(|| {
            (campaign.needs_hipaa_authorization() && !hipaa_authorized(&grants, now))
                .then_some(SkipReason::NoHipaaAuthorization)
        }))
    }

    /// A message SES gave up on for lack of TLS, after it was sent: its
    /// secure message and notice (`SecureNoticeJob`, from the event consumer).
    pub async fn secure_notice(&self, job: &SecureNoticeJob) -> Result<SendOutcome, SendError> {
        let loaded = self.catalog.load(&job.notice_campaign_id).await?;
        let campaign = &loaded.campaign;
        let Some(record) = self.contacts.get(&job.notice_contact_id).await? else {
            return Ok(SendOutcome::Skipped(SkipReason::ContactErased));
        };
        if let Some(reason) = self.suppression.reason(&record.email_index).await? {
            return Ok(SendOutcome::Skipped(SkipReason::Suppressed(reason)));
        }
        let now = self.clock.now();
        if let Some(reason) = self.consent_refuses(campaign, &record.id, now).await? {
            return Ok(SendOutcome::Skipped(reason));
        }
        let (email, profile) = self
            .envelope
            .open(&record.id, &record.sealed, None)
            .await
            .map_err(|e| SendError::from(AppError::from(e)))?;
        let contact = crate::domain::Contact { id: record.id, external_id: record.external_id, email, profile };
        let expires = now + self.settings.unsubscribe_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::Unsubscribe, &contact.id, campaign.id.as_bytes(), expires);
        let unsubscribe_url = self.settings.public_base_url.join(&format!("/u/{token}"));
        let Ok(rendered) =
            loaded.template.render(&contact, &unsubscribe_url, self.settings.postal_address.as_deref(), now.date())
        else {
            return Ok(SendOutcome::Failed("render_failed".into()));
        };
        let content = SecureContent { subject: rendered.subject, text: rendered.text };
        Ok(match self.notice(campaign, &contact, &content, &unsubscribe_url).await? {
            NoticeOutcome::Sent => SendOutcome::Sent,
            NoticeOutcome::AlreadySent => SendOutcome::AlreadyDone,
            NoticeOutcome::Refused => SendOutcome::Failed("notice_refused".into()),
        })
    }

    /// Sends one job and writes its timeline count at once.
    pub async fn process(&self, job: &SendJob) -> Result<SendOutcome, SendError> {
        let mut counts = BatchCounts::default();
        let outcome = self.process_counting(job, &mut counts).await;
        self.record_counts(&mut counts).await;
        outcome
    }

    /// Sends one job; a send (and a job settled either way) is counted in
    /// `counts`, which the caller writes once for its whole batch
    /// (`record_counts`).
    pub async fn process_counting(&self, job: &SendJob, counts: &mut BatchCounts) -> Result<SendOutcome, SendError> {
        let now = self.clock.now();
        let outcome = self.process_at(job, now).await;
        if let Ok(SendOutcome::Sent) = outcome {
            self.counters.gather(counts, &job.campaign_id, CampaignCounter::Sent, now);
        }
        if let Ok(SendOutcome::Sent | SendOutcome::Skipped(_) | SendOutcome::Failed(_)) = outcome {
            self.counters.gather(counts, &job.campaign_id, CampaignCounter::Settled, now);
        }
        outcome
    }

    async fn process_at(&self, job: &SendJob, now: OffsetDateTime) -> Result<SendOutcome, SendError> {
        let loaded = self.catalog.load(&job.campaign_id).await?;
        // Held past the visibility timeout by the acceptance grace, so a lost
        // answer is settled by the provider's Send event before any re-send.
        let lease = self.settings.throughput.visibility_timeout() + self.settings.acceptance_grace;
        let attempt = match self.ledger.claim(&job.campaign_id, &job.contact_id, now, lease).await? {
            ClaimOutcome::Claimed { attempt } => attempt,
            ClaimOutcome::Busy => {
                let retry_after = match self.ledger.state(&job.campaign_id, &job.contact_id).await? {
                    Some(LedgerState::Claimed { lease_until, .. }) => {
                        std::time::Duration::try_from(lease_until - now).unwrap_or_default()
                    }
                    _ => std::time::Duration::ZERO,
                };
                return Err(SendError::Busy { retry_after: retry_after + std::time::Duration::from_secs(1) });
            }
            ClaimOutcome::Done(_) => return Ok(SendOutcome::AlreadyDone),
        };
        match self.send_claimed(job, &loaded, attempt, now).await {
            Ok(outcome) => Ok(outcome),
            // Accepted by the provider but not recorded: keep the claim, so
            // only its lease lapsing can lead to a second hand-over.
            Err(e @ SendError::Unsettled(_)) => Err(e),
            Err(e) => {
                // Known not sent: give the claim up so the retry need not wait for the lease.
                if let Err(release) = self.ledger.release(&job.campaign_id, &job.contact_id, attempt).await {
                    tracing::warn!(error = %release, campaign_id = %job.campaign_id, "could not release claim");
                }
                Err(e)
            }
        }
    }

    async fn send_claimed(
        &self,
        job: &SendJob,
        loaded: &LoadedCampaign,
        attempt: u32,
        now: OffsetDateTime,
    ) -> Result<SendOutcome, SendError> {
        let campaign = &loaded.campaign;
        let settle = |state: LedgerState| async move {
            self.ledger.settle(&job.campaign_id, &job.contact_id, attempt, &state).await
        };
        let skip = |reason: SkipReason| async move {
            settle(LedgerState::Skipped { reason: reason.as_str().to_owned() }).await?;
            Ok::<_, SendError>(SendOutcome::Skipped(reason))
        };

        // Read fresh for every job, so a pause holds the very next one.
        let status = self.campaigns.get(&job.campaign_id).await?.map(|r| r.status);
        if status == Some(CampaignStatus::Paused) {
            return skip(SkipReason::CampaignPaused).await;
        }
        if status == Some(CampaignStatus::Cancelled) {
            return skip(SkipReason::Cancelled).await;
        }
        let Some(record) = self.contacts.get(&job.contact_id).await? else {
            return skip(SkipReason::ContactErased).await;
        };
        if let Some(reason) = self.suppression.reason(&record.email_index).await? {
            return skip(SkipReason::Suppressed(reason)).await;
        }
        if let Some(reason) = self.consent_refuses(campaign, &job.contact_id, now).await? {
            return skip(reason).await;
        }
        // Checked at fan-out; claimed now, atomically, so campaigns sending
        // at the same time cannot pass the cap together.
        if let Some(cap) = self.settings.frequency_cap
            && campaign.counts_toward_frequency_cap()
        {
            let window = Window::ending(now, cap.window, cap.window);
            let claimed = self.activity.claim_marketing_send(&record.id, &campaign.id, cap.max, window).await?;
            if !claimed {
                return skip(SkipReason::FrequencyCap).await;
            }
        }

        let (email, profile) = match self.envelope.open(&record.id, &record.sealed, None).await {
            Ok(opened) => opened,
            Err(e) if !e.is_transient() => {
                settle(LedgerState::Failed { reason: "contact_unreadable".into() }).await?;
                return Ok(SendOutcome::Failed("contact_unreadable".into()));
            }
            Err(e) => return Err(SendError::Transient(e.into())),
        };
        let domain = email.domain();
        // From here the row also keeps the recipient's domain (reach by domain).
        let settle = |state: LedgerState| {
            let domain = &domain;
            async move { self.ledger.settle_with(&job.campaign_id, &job.contact_id, attempt, &state, Some(domain)).await }
        };
        let contact = crate::domain::Contact { id: record.id, external_id: record.external_id, email, profile };
        let expires = now + self.settings.unsubscribe_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::Unsubscribe, &contact.id, campaign.id.as_bytes(), expires);
        let unsubscribe_url = self.settings.public_base_url.join(&format!("/u/{token}"));
        let message_id = message_id(&format!("{}.{}", campaign.id, contact.id), &campaign.sender);
        let rendered = loaded
            .template
            .render(&contact, &unsubscribe_url, self.settings.postal_address.as_deref(), now.date())
            .ok();
        let Some(rendered) = rendered else {
            settle(LedgerState::Failed { reason: "render_failed".into() }).await?;
            return Ok(SendOutcome::Failed("render_failed".into()));
        };
        // Its server was lately found unable to do TLS: not tried again.
        if self.tls_gaps.lacks_tls(self.activity.as_ref(), &domain, now).await? {
            return self.fall_back(loaded, &contact, &rendered, &unsubscribe_url, &settle).await;
        }
        let built = build_message(MessageParts {
            from: &campaign.sender,
            to: &contact.email,
            subject: &rendered.subject,
            message_id: &message_id,
            list: Some(MailingList {
                unsubscribe_url: &unsubscribe_url,
                category: campaign.category.as_str(),
                campaign_id: campaign.id.to_string(),
            }),
            text: rendered.text.clone(),
            html: self.with_tracking(loaded, &contact.id, &rendered.html, expires),
            tls_optional: false,
        })
        .ok();
        let Some(raw) = built else {
            settle(LedgerState::Failed { reason: "render_failed".into() }).await?;
            return Ok(SendOutcome::Failed("render_failed".into()));
        };
        let mail = OutgoingMail {
            key: format!("{}-{}", campaign.id, contact.id),
            message_id,
            from: campaign.sender.address.as_str().to_owned(),
            to: contact.email.as_str().to_owned(),
            raw,
            // One tracker only: SES tracks when the stack does not track itself.
            provider_tracking: if self.settings.first_party_tracking {
                Default::default()
            } else {
                loaded.campaign.tracking
            },
            tls_optional: false,
        };

        self.limiter.until_ready().await;
        match self.transport.send(&mail).await {
            Ok(provider_message_id) => {
                let sent = LedgerState::Sent { provider_message_id };
                let mut last = None;
                for _ in 0..3 {
                    match settle(sent.clone()).await {
                        // Counted in the timeline once per batch (`record_sent`).
                        Ok(()) => return Ok(SendOutcome::Sent),
                        Err(e) if e.is_transient() => last = Some(e),
                        Err(e) => return Err(SendError::Unsettled(e.into())),
                    }
                }
                let last = last.unwrap_or_else(|| StoreError::unavailable_msg("settling the send"));
                Err(SendError::Unsettled(last.into()))
            }
            Err(e) if e.kind == TransportErrorKind::Permanent => {
                settle(LedgerState::Failed { reason: "provider_rejected".into() }).await?;
                Ok(SendOutcome::Failed("provider_rejected".into()))
            }
            Err(e) if e.kind == TransportErrorKind::TlsUnavailable => {
                self.fall_back(loaded, &contact, &rendered, &unsubscribe_url, &settle).await
            }
            Err(e) if e.kind == TransportErrorKind::Throttled => {
                self.metrics.count(Some(&campaign.id), Metric::Throttled, 1);
                Err(SendError::Throttled)
            }
            // Maybe accepted: keep the claim; the Send event or the lease decides.
            Err(e) if e.kind == TransportErrorKind::Ambiguous => Err(SendError::Unsettled(e.into())),
            Err(e) => Err(SendError::Transient(e.into())),
        }
    }
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
