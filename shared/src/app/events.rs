//! Provider events (delivery, bounce, complaint, open, click …) matched to
//! (campaign, contact) through the send ledger, then counted; hard bounces
//! and complaints suppress the address, a complaint also withdraws all consent.
//! Deliveries, hard bounces and complaints also feed the reputation guard.

use super::consent::RequestProof;
use super::{App, AppError};
use crate::domain::{BounceKind, CampaignCounter, ConsentMethod, MailEvent, MailEventKind};
use crate::ports::SuppressionReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// No send with this provider message ID: logged and dropped, not retried.
    Unmatched,
    /// The provider delivered this event for this message before: its
    /// effects are repeated (they are idempotent), it is not counted again.
    Duplicate,
    Ignored,
}

impl App {
    pub async fn process_mail_event(&self, event: &MailEvent) -> Result<EventOutcome, AppError> {
        let matched = match self.ports.ledger.find_by_provider_id(&event.provider_message_id).await? {
            Some(found) => Some(found),
            // A message whose answer was lost is known only by its tags: the
            // provider's word that it accepted it settles the open claim.
            None => match event.tagged {
                Some((campaign, contact)) => {
                    let settled =
                        self.ports.ledger.record_acceptance(&campaign, &contact, &event.provider_message_id).await?;
                    if settled {
                        tracing::info!(campaign_id = %campaign, contact_id = %contact, "claim settled by the provider's event");
                    }
                    settled.then_some((campaign, contact))
                }
                None => None,
            },
        };
        let Some((campaign_id, contact_id)) = matched else {
            return Ok(EventOutcome::Unmatched);
        };
        let counter = match event.kind {
            MailEventKind::Delivery => CampaignCounter::Delivered,
            MailEventKind::Bounce(BounceKind::Permanent) => CampaignCounter::BouncedHard,
            MailEventKind::Bounce(_) => CampaignCounter::BouncedSoft,
            MailEventKind::Complaint => CampaignCounter::Complained,
            MailEventKind::Open => CampaignCounter::Opened,
            MailEventKind::Click => CampaignCounter::Clicked,
            MailEventKind::Reject => CampaignCounter::Rejected,
            MailEventKind::DeliveryDelay => CampaignCounter::Delayed,
            MailEventKind::Send | MailEventKind::RenderingFailure | MailEventKind::Subscription => {
                return Ok(EventOutcome::Ignored);
            }
        };
        let suppress = match event.kind {
            MailEventKind::Bounce(BounceKind::Permanent) => Some(SuppressionReason::HardBounce),
            MailEventKind::Complaint => Some(SuppressionReason::Complaint),
            _ => None,
        };
        if let Some(reason) = suppress
            && let Some(record) = self.ports.contacts.get(&contact_id).await?
        {
            self.ports.suppression.suppress(&record.email_index, reason).await?;
            if reason == SuppressionReason::Complaint {
                let all = self.settings.categories.clone();
                self.withdraw_consent(&contact_id, &all, ConsentMethod::Complaint, RequestProof::default()).await?;
            }
        }
        // After the idempotent effects, before counting: a repeat of this
        // event is not counted twice. A failure between marking and counting
        // loses that one count rather than doubling it.
        if !self.ports.ledger.first_event(&campaign_id, &contact_id, counter).await? {
            return Ok(EventOutcome::Duplicate);
        }
        self.ports.campaigns.increment(&campaign_id, counter, 1).await?;
        if matches!(counter, CampaignCounter::Delivered | CampaignCounter::BouncedHard | CampaignCounter::Complained) {
            self.guard_reputation(&campaign_id, counter).await?;
        }
        Ok(EventOutcome::Applied)
    }
}
