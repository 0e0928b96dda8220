//! Provider events (delivery, bounce, complaint, open, click …) matched to
//! (campaign, contact) through the send ledger, then counted once per
//! message and kind (clicks: per message and link). Hard bounces, repeated
//! soft bounces and complaints suppress the address; a complaint withdraws
//! all consent; an SES subscription change withdraws the topics opted out
//! (all of them, and suppresses the address, only with `unsubscribeAll`).
//! A Reject or Rendering Failure settles the ledger row as failed. The
//! delivery state, bounce subtype and delay type are kept on the row.
//! Human opens and clicks move the contact's activity; deliveries, hard
//! bounces and complaints feed the reputation guard. Every counted event
//! also goes to the campaign's timeline and to the metrics.

use std::sync::Arc;

use time::OffsetDateTime;

use super::consent::RequestProof;
use super::{AppError, BatchCounts, CampaignLifecycle, ConsentLedger, Counters};
use crate::config::Settings;
use crate::domain::{
    BounceKind, CampaignCounter, CampaignId, ConsentCategory, ConsentMethod, ContactId, LinkKey, MailEvent,
    MailEventKind, ProviderFailure, SecureNoticeJob, TLS_GAP_MEMORY, TlsFallback, TopicPreferences,
};
use crate::ports::{
    ActivityStore, CampaignStore, Clock, ContactStore, DeliveryReport, DeliveryState, Engagement, EventMark, Metric,
    Metrics, SendLedger, SuppressionList, SuppressionReason, Window,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// No send with this provider message ID: counted in the metrics and
    /// dropped, not retried.
    Unmatched,
    /// The provider delivered this event for this message before: its
    /// effects are repeated (they are idempotent), it is counted only as a
    /// duplicate.
    Duplicate,
    /// Nothing to count (the provider's Send event: sends are counted by
    /// the send ledger).
    Ignored,
}

/// The campaign counter an event moves, `None` for a Send event.
pub fn counter_for(kind: MailEventKind, machine: bool) -> Option<CampaignCounter> {
    Some(match kind {
        MailEventKind::Send => return None,
        MailEventKind::Delivery => CampaignCounter::Delivered,
        MailEventKind::Bounce(BounceKind::Permanent) => CampaignCounter::BouncedHard,
        MailEventKind::Bounce(BounceKind::Transient) => CampaignCounter::BouncedSoft,
        MailEventKind::Bounce(BounceKind::Undetermined) => CampaignCounter::BouncedUndetermined,
        MailEventKind::Bounce(BounceKind::TlsUnavailable) => CampaignCounter::TlsUnavailable,
        MailEventKind::Complaint => CampaignCounter::Complained,
        MailEventKind::Open if machine => CampaignCounter::OpenedMachine,
        MailEventKind::Open => CampaignCounter::Opened,
        MailEventKind::Click if machine => CampaignCounter::ClickedMachine,
        MailEventKind::Click => CampaignCounter::Clicked,
        MailEventKind::Reject => CampaignCounter::Rejected,
        MailEventKind::DeliveryDelay => CampaignCounter::Delayed,
        MailEventKind::RenderingFailure => CampaignCounter::RenderingFailed,
        MailEventKind::Subscription => CampaignCounter::Unsubscribed,
    })
}

/// Applies provider events and first-party opens and clicks.
pub struct EventConsumer {
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) activity: Arc<dyn ActivityStore>,
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) metrics: Arc<dyn Metrics>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) counters: Arc<Counters>,
    pub(super) lifecycle: Arc<CampaignLifecycle>,
    /// Where a secure message's notice job goes (the `secure_message` fallback).
    pub(super) send_queue: Arc<dyn crate::ports::Queue>,
    pub(super) catalog: Arc<super::CampaignCatalog>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl EventConsumer {
    /// Applies one event and writes its counts at once.
    pub async fn process(&self, event: &MailEvent) -> Result<EventOutcome, AppError> {
        let mut counts = BatchCounts::default();
        let outcome = self.process_counting(event, &mut counts).await;
        self.record_counts(&mut counts).await?;
        outcome
    }

    /// Writes the counts a batch of events gathered.
    pub async fn record_counts(&self, counts: &mut BatchCounts) -> Result<(), AppError> {
        self.counters.flush(counts).await
    }

    /// Applies one event; its counts go to `counts`, which the caller writes
    /// once for its whole batch (`record_counts`).
    pub async fn process_counting(
        &self,
        event: &MailEvent,
        counts: &mut BatchCounts,
    ) -> Result<EventOutcome, AppError> {
        let matched = match self.ledger.find_by_provider_id(&event.provider_message_id).await? {
            Some(found) => Some(found),
            // A message whose answer was lost is known only by its tags: the
            // provider's word that it accepted it settles the open claim.
            None => match event.tagged {
                Some((campaign, contact)) => {
                    let settled =
                        self.ledger.record_acceptance(&campaign, &contact, &event.provider_message_id).await?;
                    if settled {
                        tracing::info!(campaign_id = %campaign, contact_id = %contact, "claim settled by the provider's event");
                    }
                    settled.then_some((campaign, contact))
                }
                None => None,
            },
        };
        let Some((campaign_id, contact_id)) = matched else {
            // The provider's message ID and the kind only: the event itself
            // carries the recipient, the subject and, for opens and clicks,
            // an IP address and a user agent.
            tracing::warn!(
                provider_message_id = event.provider_message_id.as_str(),
                kind = ?event.kind,
                "provider event for no known send: counted as unmatched and dropped"
            );
            self.metrics.count(None, Metric::UnmatchedEvent, 1);
            return Ok(EventOutcome::Unmatched);
        };
        let Some(counter) = counter_for(event.kind, event.machine) else {
            return Ok(EventOutcome::Ignored);
        };
        let now = self.clock.now();
        // The effects on the row, the consent and the address are idempotent,
        // so a repeated event repeats them harmlessly before it is counted once.
        if let Some(failure) = &event.detail.failure {
            self.fail_message(&campaign_id, &contact_id, event, failure).await?;
        }
        if let Some(report) = delivery_report(event) {
            if event.kind == MailEventKind::Delivery {
                // A delivery has no other effect: its report and its mark go
                // in one write where the ledger can (docs/benchmarks.md).
                let mark = counter.into();
                if !self.ledger.record_delivery_marked(&campaign_id, &contact_id, &report, now, &mark).await? {
                    return self.duplicate(&campaign_id).await;
                }
                self.counters.gather(counts, &campaign_id, counter, now);
                return Ok(EventOutcome::Applied);
            }
            self.ledger.record_delivery(&campaign_id, &contact_id, &report, now).await?;
        }
        // Later sends to this domain are not tried (the sender reads it).
        if let Some(domain) = &event.detail.tls_gap_domain {
            self.activity.remember_tls_gap(domain, now, now + TLS_GAP_MEMORY).await?;
        }
        if event.kind == MailEventKind::Bounce(BounceKind::TlsUnavailable) {
            let campaign = &self.catalog.load(&campaign_id).await?.campaign;
            if campaign.tls_fallback.unwrap_or(self.settings.tls_fallback) == TlsFallback::SecureMessage {
                // A repeat of the event queues it again: the notice goes once.
                let job = SecureNoticeJob { notice_campaign_id: campaign_id, notice_contact_id: contact_id };
                self.send_queue.send_batch(&[job.to_body()]).await?;
            }
        }
        if event.kind == MailEventKind::Subscription {
            let preferences = event.detail.preferences.clone().unwrap_or_default();
            if !self.apply_preferences(&contact_id, &preferences).await? {
                return Ok(EventOutcome::Ignored);
            }
        }
        self.apply_mark_counting(&campaign_id, &contact_id, counter, event.detail.link.clone(), now, counts).await
    }

    /// Settles a message the provider accepted and then could not send as
    /// failed, naming the error type and the template (never its text).
    async fn fail_message(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
        event: &MailEvent,
        failure: &ProviderFailure,
    ) -> Result<(), AppError> {
        let what = if event.kind == MailEventKind::Reject { "provider_reject" } else { "rendering_failure" };
        let template = failure.template.clone().unwrap_or_else(|| format!("campaign {campaign_id}"));
        let reason = format!("{what}: {}; template {template}", failure.error_type);
        if self.ledger.fail_sent(campaign_id, contact_id, &reason).await? {
            tracing::warn!(
                campaign_id = %campaign_id,
                contact_id = %contact_id,
                provider_message_id = event.provider_message_id.as_str(),
                error_type = failure.error_type,
                template,
                "the provider could not send the message: settled as failed"
            );
        }
        Ok(())
    }

    /// Applies SES subscription management's new preferences: each topic
    /// opted out is withdrawn; everything is withdrawn and the address
    /// suppressed only with `unsubscribeAll`. A topic opted in at SES grants
    /// nothing: consent comes from the patient's confirmed request only.
    /// Returns whether anything was opted out.
    async fn apply_preferences(
        &self,
        contact_id: &ContactId,
        preferences: &TopicPreferences,
    ) -> Result<bool, AppError> {
        let topics: Vec<ConsentCategory> = if preferences.unsubscribe_all {
            self.suppress_contact(contact_id, SuppressionReason::UnsubscribeAll).await?;
            self.settings.categories.clone()
        } else {
            let mut topics = Vec::new();
            for name in &preferences.opted_out {
                match ConsentCategory::from_ses_topic(name).filter(|c| self.settings.categories.contains(c)) {
                    Some(category) if !topics.contains(&category) => topics.push(category),
                    Some(_) => {}
                    // A topic name is the operator's word, never the patient's.
                    None => tracing::warn!(contact_id = %contact_id, topic = name.as_str(),
                        "SES topic opted out is not a consent category: ignored"),
                }
            }
            topics
        };
        if topics.is_empty() {
            return Ok(preferences.unsubscribe_all);
        }
        self.consent_ledger.withdraw(contact_id, &topics, ConsentMethod::Unsubscribe, RequestProof::default()).await?;
        Ok(true)
    }

    /// Applies one counted event of a known (campaign, contact): from the
    /// provider, or from first-party open tracking.
    pub async fn apply(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
        counter: CampaignCounter,
        now: OffsetDateTime,
    ) -> Result<EventOutcome, AppError> {
        self.apply_mark(campaign_id, contact_id, counter, None, now).await
    }

    /// `apply`, with the link of a click: a click is a duplicate only for
    /// the same message and link. The first click on any link of a message
    /// also counts the message as clicked (`clicked`, engagement); each
    /// further link of it counts in `links_clicked` only.
    pub async fn apply_mark(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
        counter: CampaignCounter,
        link: Option<LinkKey>,
        now: OffsetDateTime,
    ) -> Result<EventOutcome, AppError> {
        let mut counts = BatchCounts::default();
        let outcome = self.apply_mark_counting(campaign_id, contact_id, counter, link, now, &mut counts).await;
        self.record_counts(&mut counts).await?;
        outcome
    }

    /// `apply_mark`, its counts gathered in `counts`. A hard bounce or a
    /// complaint writes what was gathered at once: the reputation guard
    /// judges the campaign's window right after it.
    async fn apply_mark_counting(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
        counter: CampaignCounter,
        link: Option<LinkKey>,
        now: OffsetDateTime,
        counts: &mut BatchCounts,
    ) -> Result<EventOutcome, AppError> {
        let link = link.filter(|_| matches!(counter, CampaignCounter::Clicked | CampaignCounter::ClickedMachine));
        let suppress = match counter {
            CampaignCounter::BouncedHard => Some(SuppressionReason::HardBounce),
            CampaignCounter::Complained => Some(SuppressionReason::Complaint),
            _ => None,
        };
        if let Some(reason) = suppress {
            self.suppress_contact(contact_id, reason).await?;
        }
        if counter == CampaignCounter::Complained {
            let all = self.settings.categories.clone();
            self.consent_ledger.withdraw(contact_id, &all, ConsentMethod::Complaint, RequestProof::default()).await?;
        }
        // After the idempotent effects, before counting: a repeat of this
        // event is not counted twice. A failure between marking and counting
        // loses that one count rather than doubling it.
        let mark = match &link {
            Some(link) => EventMark::link(counter, link.clone()),
            None => counter.into(),
        };
        if !self.ledger.first_mark(campaign_id, contact_id, &mark).await? {
            return self.duplicate(campaign_id).await;
        }
        if link.is_some() {
            if counter == CampaignCounter::Clicked {
                self.counters.gather(counts, campaign_id, CampaignCounter::LinksClicked, now);
            }
            // Another link of a message already counted as clicked.
            if !self.ledger.first_event(campaign_id, contact_id, counter).await? {
                return Ok(EventOutcome::Applied);
            }
        }
        self.counters.gather(counts, campaign_id, counter, now);
        let expires = now + self.settings.retention;
        match counter {
            CampaignCounter::Opened => {
                self.activity.record_engagement(contact_id, Engagement::Open, now, expires).await?
            }
            CampaignCounter::Clicked => {
                self.activity.record_engagement(contact_id, Engagement::Click, now, expires).await?
            }
            CampaignCounter::BouncedSoft => {
                let window = Window { at: now, since: now - self.settings.soft_bounce_window, expires_at: expires };
                let recent = self.activity.record_soft_bounce(contact_id, window).await?;
                if recent >= self.settings.soft_bounce_limit {
                    self.suppress_contact(contact_id, SuppressionReason::RepeatedSoftBounce).await?;
                }
            }
            // Deliveries only grow the window's denominators: they cannot trip it.
            CampaignCounter::BouncedHard | CampaignCounter::Complained => {
                self.counters.flush(counts).await?;
                self.lifecycle.guard_reputation(campaign_id).await?
            }
            _ => {}
        }
        Ok(EventOutcome::Applied)
    }

    /// An event counted before: only the duplicates are counted.
    async fn duplicate(&self, campaign_id: &CampaignId) -> Result<EventOutcome, AppError> {
        self.campaigns.increment(campaign_id, CampaignCounter::DuplicateEvents, 1).await?;
        self.metrics.count(Some(campaign_id), Metric::Counter(CampaignCounter::DuplicateEvents), 1);
        Ok(EventOutcome::Duplicate)
    }

    async fn suppress_contact(&self, contact_id: &ContactId, reason: SuppressionReason) -> Result<(), AppError> {
        if let Some(record) = self.contacts.get(contact_id).await? {
            self.suppression.suppress(&record.email_index, reason).await?;
        }
        Ok(())
    }
}

/// What a delivery, bounce or delay event tells the ledger row.
fn delivery_report(event: &MailEvent) -> Option<DeliveryReport> {
    let state = match event.kind {
        MailEventKind::Delivery => DeliveryState::Delivered,
        MailEventKind::Bounce(kind) => DeliveryState::Bounced(kind),
        MailEventKind::DeliveryDelay => DeliveryState::Delayed,
        _ => return None,
    };
    Some(DeliveryReport {
        state,
        bounce_subtype: event.detail.bounce_subtype.clone(),
        delay_type: event.detail.delay_type.clone(),
    })
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
