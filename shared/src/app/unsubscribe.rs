//! One-click unsubscribe (RFC 8058) from the signed link in every campaign
//! email: the campaign's category, or everything.

use time::OffsetDateTime;

use super::consent::RequestProof;
use super::{App, AppError};
use crate::crypto::TokenPurpose;
use crate::domain::{CampaignCounter, CampaignId, ConsentMethod};
use crate::ports::SuppressionReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeScope {
    /// The category of the campaign the email came from.
    Campaign,
    /// Every category, and the address is suppressed.
    All,
}

pub struct UnsubscribeTarget {
    pub campaign_name: String,
    pub category: String,
    /// The contact's preference center.
    pub preferences_url: String,
}

impl App {
    /// What a valid unsubscribe link is for, to show on its page.
    pub async fn unsubscribe_target(&self, token: &str) -> Result<UnsubscribeTarget, AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::Unsubscribe, token, OffsetDateTime::now_utc())
            .map_err(|_| AppError::BadToken)?;
        let loaded = self.load_campaign(&CampaignId::from_bytes(verified.subject)).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::BadToken,
            other => other,
        })?;
        Ok(UnsubscribeTarget {
            campaign_name: loaded.campaign.name.clone(),
            category: loaded.campaign.category.to_string(),
            preferences_url: self.preferences_url(&verified.contact_id),
        })
    }

    /// Withdraws consent; idempotent (a second POST changes nothing).
    pub async fn unsubscribe(&self, token: &str, scope: UnsubscribeScope, proof: RequestProof) -> Result<(), AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::Unsubscribe, token, OffsetDateTime::now_utc())
            .map_err(|_| AppError::BadToken)?;
        let campaign_id = CampaignId::from_bytes(verified.subject);
        let loaded = self.load_campaign(&campaign_id).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::BadToken,
            other => other,
        })?;
        let categories = match scope {
            UnsubscribeScope::Campaign => vec![loaded.campaign.category.clone()],
            UnsubscribeScope::All => self.settings.categories.clone(),
        };
        if scope == UnsubscribeScope::All
            && let Some(record) = self.ports.contacts.get(&verified.contact_id).await?
        {
            self.ports.suppression.suppress(&record.email_index, SuppressionReason::UnsubscribeAll).await?;
        }
        let changed =
            self.withdraw_consent(&verified.contact_id, &categories, ConsentMethod::Unsubscribe, proof).await?;
        if changed.contains(&loaded.campaign.category) {
            self.count_event(&campaign_id, CampaignCounter::Unsubscribed, OffsetDateTime::now_utc()).await?;
        }
        Ok(())
    }
}
