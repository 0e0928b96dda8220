//! Provider events (delivery, bounce, complaint, open, click …) matched to
//! (campaign, contact) through the send ledger, then counted once per
//! message and kind. Hard bounces, repeated soft bounces and complaints
//! suppress the address; a complaint or an SES subscription change also
//! withdraws all consent. Human opens and clicks move the contact's
//! activity; deliveries, hard bounces and complaints feed the reputation
//! guard. Every counted event also goes to the campaign's timeline and to
//! the metrics.

use std::sync::Arc;

use time::OffsetDateTime;

use super::consent::RequestProof;
use super::{AppError, CampaignLifecycle, ConsentLedger, Counters};
use crate::config::Settings;
use crate::domain::{BounceKind, CampaignCounter, CampaignId, ConsentMethod, ContactId, MailEvent, MailEventKind};
use crate::ports::{
    ActivityStore, CampaignStore, Clock, ContactStore, Engagement, Metric, Metrics, SendLedger, SuppressionList,
    SuppressionReason, Window,
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
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl EventConsumer {
    pub async fn process(&self, event: &MailEvent) -> Result<EventOutcome, AppError> {
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
            self.metrics.count(None, Metric::UnmatchedEvent, 1);
            return Ok(EventOutcome::Unmatched);
        };
        let Some(counter) = counter_for(event.kind, event.machine) else {
            return Ok(EventOutcome::Ignored);
        };
        self.apply(&campaign_id, &contact_id, counter, self.clock.now()).await
    }

    /// Applies one counted event of a known (campaign, contact): from the
    /// provider, or from first-party open and click tracking.
    pub async fn apply(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
        counter: CampaignCounter,
        now: OffsetDateTime,
    ) -> Result<EventOutcome, AppError> {
        let suppress = match counter {
            CampaignCounter::BouncedHard => Some(SuppressionReason::HardBounce),
            CampaignCounter::Complained => Some(SuppressionReason::Complaint),
            _ => None,
        };
        if let Some(reason) = suppress {
            self.suppress_contact(contact_id, reason).await?;
        }
        let withdraw_all = match counter {
            CampaignCounter::Complained => Some(ConsentMethod::Complaint),
            // SES's subscription management: the recipient opted out there.
            CampaignCounter::Unsubscribed => Some(ConsentMethod::Unsubscribe),
            _ => None,
        };
        if let Some(method) = withdraw_all {
            let all = self.settings.categories.clone();
            self.consent_ledger.withdraw(contact_id, &all, method, RequestProof::default()).await?;
        }
        // After the idempotent effects, before counting: a repeat of this
        // event is not counted twice. A failure between marking and counting
        // loses that one count rather than doubling it.
        if !self.ledger.first_event(campaign_id, contact_id, counter).await? {
            self.campaigns.increment(campaign_id, CampaignCounter::DuplicateEvents, 1).await?;
            self.metrics.count(Some(campaign_id), Metric::Counter(CampaignCounter::DuplicateEvents), 1);
            return Ok(EventOutcome::Duplicate);
        }
        self.counters.count(campaign_id, counter, now).await?;
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
                self.lifecycle.guard_reputation(campaign_id).await?
            }
            _ => {}
        }
        Ok(EventOutcome::Applied)
    }

    async fn suppress_contact(&self, contact_id: &ContactId, reason: SuppressionReason) -> Result<(), AppError> {
        if let Some(record) = self.contacts.get(contact_id).await? {
            self.suppression.suppress(&record.email_index, reason).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
