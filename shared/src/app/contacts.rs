//! Contact upsert and load: seal on the way in, open on the way out.

use std::sync::Arc;

use super::{AppError, Auditor, ConsentLedger};
use crate::config::Settings;
use crate::crypto::{Envelope, Keyring};
use crate::domain::{Attribute, Contact, ContactId, EmailAddress, ExternalId, InvalidField, ProfileInput};
use crate::ports::{Clock, ConsentStore, ContactRecord, ContactStore, StoreError, SuppressionList};

pub struct UpsertOutcome {
    pub contact_id: ContactId,
    pub created: bool,
}

/// An administrator's (or an integration's) work on contacts: upsert, read,
/// list (`contact_views.rs`) and erase.
pub struct ContactAdmin {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) audit: Arc<Auditor>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl ContactAdmin {
    /// Creates or updates the contact with this external ID. A contact that
    /// signed up through a form (found by email) is adopted on first upsert.
    pub async fn upsert(
        &self,
        actor: &str,
        external_id: ExternalId,
        email: &str,
        profile: &ProfileInput,
    ) -> Result<UpsertOutcome, AppError> {
        let email = EmailAddress::parse(email).map_err(|e| InvalidField::new("email", e.to_string()))?;
        let email_index = self.keyring.blind_index.index(&email);
        let existing = match self.contacts.find_by_external_id(&external_id).await? {
            Some(record) => Some(record),
            None => self.contacts.find_by_email_index(&email_index).await?.filter(|r| r.external_id.is_none()),
        };
        let (id, base, created) = match existing {
            Some(record) => {
                let (_, profile) = self.envelope.open(&record.id, &record.sealed, None).await?;
                let reason = "an update merges the stored attributes".to_owned();
                self.audit
                    .record(actor, "contact.update", Some(record.id), self.settings.schema.names(), reason)
                    .await?;
                (record.id, profile, false)
            }
            None => (ContactId::new_random(), Default::default(), true),
        };
        let now = self.clock.now();
        let profile = self.settings.schema.apply(profile, base, now.date())?;
        let sealed = self.envelope.seal(&id, &email, &profile).await?;
        let record = ContactRecord { id, external_id: Some(external_id), email_index, sealed, updated_at: now };
        self.contacts.put(&record).await.map_err(|e| match e {
            StoreError::Conflict(_) => AppError::Conflict("another contact already uses this email".into()),
            other => other.into(),
        })?;
        Ok(UpsertOutcome { contact_id: id, created })
    }

    /// Loads and opens a contact; `only` limits which attributes are decrypted.
    pub async fn load(&self, id: &ContactId, only: Option<&[Attribute]>) -> Result<Option<Contact>, AppError> {
        let Some(record) = self.contacts.get(id).await? else { return Ok(None) };
        let (email, profile) = self.envelope.open(&record.id, &record.sealed, only).await?;
        Ok(Some(Contact { id: record.id, external_id: record.external_id, email, profile }))
    }

    /// Erases a contact (by contact ID, or by external ID): the address is
    /// suppressed for good (by its blind index), every topic and any HIPAA
    /// authorization withdrawn, a tombstone appended to the consent ledger
    /// (which stays, as evidence), and the contact's record, with all its
    /// sealed PHI, email index and external ID, deleted. Idempotent.
    /// The contact named by its contact ID or by its external ID, if any.
    async fn find(&self, id_or_external: &str) -> Result<Option<crate::ports::ContactRecord>, AppError> {
        Ok(match ContactId::parse(id_or_external) {
            Ok(id) => self.contacts.get(&id).await?,
            Err(_) => match ExternalId::parse(id_or_external) {
                Ok(external) => self.contacts.find_by_external_id(&external).await?,
                Err(_) => None,
            },
        })
    }

    /// The ID of the contact named by its contact ID or its external ID.
    pub async fn resolve(&self, id_or_external: &str) -> Result<Option<ContactId>, AppError> {
        Ok(self.find(id_or_external).await?.map(|r| r.id))
    }

    pub async fn erase(
        &self,
        actor: &str,
        id_or_external: &str,
        proof: super::consent::RequestProof,
    ) -> Result<ContactId, AppError> {
        let record = self.find(id_or_external).await?.ok_or(AppError::NotFound("contact"))?;
        let id = record.id;
        self.suppression.suppress(&record.email_index, crate::ports::SuppressionReason::Erased).await?;
        let mut everything = self.settings.categories.clone();
        everything.push(crate::domain::ConsentCategory::hipaa_authorization());
        self.consent_ledger.withdraw(&id, &everything, crate::domain::ConsentMethod::Admin, proof).await?;
        let history = self.consent.history(&id).await?;
        if history.last().is_none_or(|e| e.evidence.kind != crate::domain::ConsentEntryKind::Erased) {
            let tombstone = crate::domain::ConsentEvidence::without_proof(
                id,
                crate::domain::ConsentEntryKind::Erased,
                Vec::new(),
                self.clock.now(),
                crate::domain::ConsentMethod::Admin,
            );
            self.consent_ledger.append(tombstone, crate::domain::ConsentStatus::Withdrawn).await?;
        }
        self.contacts.delete(&id).await?;
        self.audit
            .record(actor, "contact.erase", Some(id), Vec::new(), "erasure: PHI deleted, tombstone kept".into())
            .await?;
        Ok(id)
    }
}
