//! The preference center (`/preferences/{token}`): a patient chooses which
//! topics to receive, or unsubscribes from everything. The signed link
//! reached them by email, which proves the mailbox, so ticking a topic
//! grants it without another confirmation. The page shows topics only,
//! never the address or any other PHI.

use std::sync::Arc;

use super::consent::RequestProof;
use super::{AppError, ConsentLedger};
use crate::config::Settings;
use crate::crypto::{Keyring, TokenPurpose};
use crate::domain::{
    ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ContactId, InvalidField,
};
use crate::ports::{Clock, ConsentStore, ContactStore, SuppressionList, SuppressionReason};

/// The form ID recorded with choices made in the preference center.
pub const PREFERENCES_FORM: &str = "preference-center";

/// One topic as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicChoice {
    pub category: ConsentCategory,
    /// Receiving it now (or waiting for the double opt-in).
    pub subscribed: bool,
}

/// What the patient submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceChange {
    /// Exactly these topics, none other.
    Topics(Vec<String>),
    /// Nothing at all, and the address suppressed.
    UnsubscribeAll,
}

/// The patient's preference center, and withdrawal on their behalf by an administrator.
pub struct Preferences {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Preferences {
    /// A preference-center link for the contact, valid as long as an unsubscribe link.
    pub fn url(&self, contact: &ContactId) -> String {
        let expires = self.clock.now() + self.settings.unsubscribe_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::Preferences, contact, &[0; 16], expires);
        self.settings.public_base_url.join(&format!("/preferences/{token}"))
    }

    fn preferences_contact(&self, token: &str) -> Result<ContactId, AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::Preferences, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        Ok(verified.contact_id)
    }

    /// The topics and whether the contact receives each.
    pub async fn topics(&self, token: &str) -> Result<Vec<TopicChoice>, AppError> {
        let contact = self.preferences_contact(token)?;
        let grants = self.consent.grants(&contact).await?;
        Ok(self
            .settings
            .categories
            .iter()
            .map(|category| TopicChoice {
                category: category.clone(),
                subscribed: grants.iter().any(|g| &g.category == category && g.status != ConsentStatus::Withdrawn),
            })
            .collect())
    }

    /// Applies the patient's choice: withdraws unticked topics, grants ticked ones.
    pub async fn update(&self, token: &str, change: PreferenceChange, proof: RequestProof) -> Result<(), AppError> {
        let contact = self.preferences_contact(token)?;
        let wanted = match change {
            PreferenceChange::UnsubscribeAll => {
                if let Some(record) = self.contacts.get(&contact).await? {
                    self.suppression.suppress(&record.email_index, SuppressionReason::UnsubscribeAll).await?;
                }
                Vec::new()
            }
            PreferenceChange::Topics(names) => {
                let mut wanted = Vec::new();
                for name in names {
                    let category = ConsentCategory::parse(name.trim())
                        .ok()
                        .filter(|c| self.settings.categories.contains(c))
                        .ok_or_else(|| {
                            InvalidField::new("categories", format!("unknown category '{}'", name.trim()))
                        })?;
                    if !wanted.contains(&category) {
                        wanted.push(category);
                    }
                }
                wanted
            }
        };
        let grants = self.consent.grants(&contact).await?;
        let now = self.clock.now();
        let dropped: Vec<ConsentCategory> =
            self.settings.categories.iter().filter(|c| !wanted.contains(c)).cloned().collect();
        self.consent_ledger.withdraw(&contact, &dropped, ConsentMethod::Unsubscribe, proof.clone()).await?;
        let added: Vec<ConsentCategory> = wanted
            .into_iter()
            .filter(|c| {
                !grants.iter().any(|g| &g.category == c && g.status == ConsentStatus::Active && g.allows_send(now))
            })
            .collect();
        if !added.is_empty() {
            let evidence = ConsentEvidence {
                contact_id: contact,
                kind: ConsentEntryKind::Granted,
                categories: added,
                at: now,
                method: ConsentMethod::WebForm,
                form_id: Some(PREFERENCES_FORM.into()),
                consent_text_sha256: None,
                request_id: None,
                expires_at: None,
                imported: None,
                sealed_proof: self.consent_ledger.seal_proof(&contact, &proof).await?,
            };
            self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
        }
        Ok(())
    }

    /// Withdrawal by an administrator (a patient's call or letter): the given
    /// topics, or every topic with the address suppressed. Returns the
    /// topics that were in force.
    pub async fn withdraw_by_admin(
        &self,
        contact: &ContactId,
        change: PreferenceChange,
        proof: RequestProof,
    ) -> Result<Vec<ConsentCategory>, AppError> {
        let record = self.contacts.get(contact).await?.ok_or(AppError::NotFound("contact"))?;
        let topics = match change {
            PreferenceChange::UnsubscribeAll => {
                self.suppression.suppress(&record.email_index, SuppressionReason::UnsubscribeAll).await?;
                self.settings.categories.clone()
            }
            PreferenceChange::Topics(names) => {
                if names.is_empty() {
                    return Err(InvalidField::new("categories", "name at least one category, or set all").into());
                }
                let mut topics = Vec::new();
                for name in names {
                    topics.push(
                        ConsentCategory::parse(name.trim())
                            .ok()
                            .filter(|c| self.settings.categories.contains(c))
                            .ok_or_else(|| {
                                InvalidField::new("categories", format!("unknown category '{}'", name.trim()))
                            })?,
                    );
                }
                topics
            }
        };
        self.consent_ledger.withdraw(contact, &topics, ConsentMethod::Admin, proof).await
    }
}
