//! Contact upsert and load: seal on the way in, open on the way out.

use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{Attribute, Contact, ContactId, EmailAddress, ExternalId, InvalidField, ProfileInput, today_utc};
use crate::ports::{ContactRecord, StoreError};

pub struct UpsertOutcome {
    pub contact_id: ContactId,
    pub created: bool,
}

impl App {
    /// Creates or updates the contact with this external ID. A contact that
    /// signed up through a form (found by email) is adopted on first upsert.
    pub async fn upsert_contact(
        &self,
        actor: &str,
        external_id: ExternalId,
        email: &str,
        profile: &ProfileInput,
    ) -> Result<UpsertOutcome, AppError> {
        let email = EmailAddress::parse(email).map_err(|e| InvalidField::new("email", e.to_string()))?;
        let email_index = self.keyring.blind_index.index(&email);
        let existing = match self.ports.contacts.find_by_external_id(&external_id).await? {
            Some(record) => Some(record),
            None => self.ports.contacts.find_by_email_index(&email_index).await?.filter(|r| r.external_id.is_none()),
        };
        let (id, base, created) = match existing {
            Some(record) => {
                let (_, profile) = self.envelope.open(&record.id, &record.sealed, None).await?;
                let reason = "an update merges the stored attributes".to_owned();
                self.record_access(actor, "contact.update", Some(record.id), self.settings.schema.names(), reason)
                    .await?;
                (record.id, profile, false)
            }
            None => (ContactId::new_random(), Default::default(), true),
        };
        let profile = self.settings.schema.apply(profile, base, today_utc())?;
        let sealed = self.envelope.seal(&id, &email, &profile).await?;
        let record = ContactRecord {
            id,
            external_id: Some(external_id),
            email_index,
            sealed,
            updated_at: OffsetDateTime::now_utc(),
        };
        self.ports.contacts.put(&record).await.map_err(|e| match e {
            StoreError::Conflict(_) => AppError::Conflict("another contact already uses this email".into()),
            other => other.into(),
        })?;
        Ok(UpsertOutcome { contact_id: id, created })
    }

    /// Loads and opens a contact; `only` limits which attributes are decrypted.
    pub async fn load_contact(&self, id: &ContactId, only: Option<&[Attribute]>) -> Result<Option<Contact>, AppError> {
        let Some(record) = self.ports.contacts.get(id).await? else { return Ok(None) };
        let (email, profile) = self.envelope.open(&record.id, &record.sealed, only).await?;
        Ok(Some(Contact { id: record.id, external_id: record.external_id, email, profile }))
    }
}

impl App {
    /// Erases a contact (by contact ID, or by external ID): the address is
    /// suppressed for good (by its blind index), every topic and any HIPAA
    /// authorization withdrawn, a tombstone appended to the consent ledger
    /// (which stays, as evidence), and the contact's record, with all its
    /// sealed PHI, email index and external ID, deleted. Idempotent.
    pub async fn erase_contact(
        &self,
        actor: &str,
        id_or_external: &str,
        proof: super::consent::RequestProof,
    ) -> Result<ContactId, AppError> {
        let record = match ContactId::parse(id_or_external) {
            Ok(id) => self.ports.contacts.get(&id).await?,
            Err(_) => match ExternalId::parse(id_or_external) {
                Ok(external) => self.ports.contacts.find_by_external_id(&external).await?,
                Err(_) => None,
            },
        }
        .ok_or(AppError::NotFound("contact"))?;
        let id = record.id;
        self.ports.suppression.suppress(&record.email_index, crate::ports::SuppressionReason::Erased).await?;
        let mut everything = self.settings.categories.clone();
        everything.push(crate::domain::ConsentCategory::hipaa_authorization());
        self.withdraw_consent(&id, &everything, crate::domain::ConsentMethod::Admin, proof).await?;
        let history = self.ports.consent.history(&id).await?;
        if history.last().is_none_or(|e| e.evidence.kind != crate::domain::ConsentEntryKind::Erased) {
            let tombstone = crate::domain::ConsentEvidence {
                contact_id: id,
                kind: crate::domain::ConsentEntryKind::Erased,
                categories: Vec::new(),
                at: OffsetDateTime::now_utc(),
                method: crate::domain::ConsentMethod::Admin,
                form_id: None,
                consent_text_sha256: None,
                request_id: None,
                expires_at: None,
                sealed_proof: Vec::new(),
            };
            self.append_consent(tombstone, crate::domain::ConsentStatus::Withdrawn).await?;
        }
        self.ports.contacts.delete(&id).await?;
        self.record_access(actor, "contact.erase", Some(id), Vec::new(), "erasure: PHI deleted, tombstone kept".into())
            .await?;
        Ok(id)
    }
}
