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
                let attributes = Attribute::ALL.iter().map(|a| a.as_str().to_owned()).collect();
                let reason = "an update merges the stored attributes".to_owned();
                self.record_access(actor, "contact.update", Some(record.id), attributes, reason).await?;
                (record.id, profile, false)
            }
            None => (ContactId::new_random(), Default::default(), true),
        };
        let profile = profile.apply_to(base, today_utc())?;
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
