//! One-click unsubscribe (RFC 8058) from the signed link in every campaign
//! email: the campaign's category, or everything.

use std::sync::Arc;

use super::consent::RequestProof;
use super::{AppError, CampaignCatalog, ConsentLedger, Counters, Preferences};
use crate::config::Settings;
use crate::crypto::{Keyring, TokenPurpose};
use crate::domain::{CampaignCounter, CampaignId, ConsentMethod};
use crate::ports::{Clock, ContactStore, SuppressionList, SuppressionReason};

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

pub struct Unsubscribe {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) counters: Arc<Counters>,
    pub(super) preferences: Arc<Preferences>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Unsubscribe {
    /// What a valid unsubscribe link is for, to show on its page.
    pub async fn target(&self, token: &str) -> Result<UnsubscribeTarget, AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::Unsubscribe, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        let loaded = self.catalog.load(&CampaignId::from_bytes(verified.subject)).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::BadToken,
            other => other,
        })?;
        Ok(UnsubscribeTarget {
            campaign_name: loaded.campaign.name.clone(),
            category: loaded.campaign.category.to_string(),
            preferences_url: self.preferences.url(&verified.contact_id),
        })
    }

    /// Withdraws consent; idempotent (a second POST changes nothing).
    pub async fn apply(&self, token: &str, scope: UnsubscribeScope, proof: RequestProof) -> Result<(), AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::Unsubscribe, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        let campaign_id = CampaignId::from_bytes(verified.subject);
        let loaded = self.catalog.load(&campaign_id).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::BadToken,
            other => other,
        })?;
        let categories = match scope {
            UnsubscribeScope::Campaign => vec![loaded.campaign.category.clone()],
            UnsubscribeScope::All => self.settings.categories.clone(),
        };
        if scope == UnsubscribeScope::All
            && let Some(record) = self.contacts.get(&verified.contact_id).await?
        {
            self.suppression.suppress(&record.email_index, SuppressionReason::UnsubscribeAll).await?;
        }
        let changed =
            self.consent_ledger.withdraw(&verified.contact_id, &categories, ConsentMethod::Unsubscribe, proof).await?;
        if changed.contains(&loaded.campaign.category) {
            self.counters.count(&campaign_id, CampaignCounter::Unsubscribed, self.clock.now()).await?;
        }
        Ok(())
    }
}
