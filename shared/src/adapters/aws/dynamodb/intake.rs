//! Consent intake in the activity table (whose key attribute is
//! `contact_id`, S, and whose TTL attribute is `expires_at`): a waiting
//! request is the item `intake#{id}` (`form_id`, `candidate`,
//! `sealed_contact` and `sealed_request` as B, `received_at`); a request
//! counter is `limit#{key}#{window start}` with `hits` (N). Neither key can
//! collide with a contact's item, whose key is a bare UUID.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use time::OffsetDateTime;

use super::Bindings;
use super::{b, conditional, get_b, get_n, get_s, get_time, n, s, sdk_error, unix};
use crate::domain::{ContactId, IntakeId};
use crate::ports::{IntakeStore, LimitKey, LimitWindow, PendingIntake, StoreError};

pub struct DynamoIntakeStore {
    client: Client,
    table: String,
}

impl DynamoIntakeStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn count_one(&self, key: &LimitKey, window: LimitWindow) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(format!("limit#{}#{}", key.as_str(), unix(window.start))))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .values([(":one", n(1)), (":expires", n(unix(window.end)))])
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let attributes = out.attributes.unwrap_or_default();
        get_n(&attributes, "hits")
    }
}

fn intake_key(id: &IntakeId) -> String {
    format!("intake#{id}")
}

#[async_trait]
impl IntakeStore for DynamoIntakeStore {
    async fn put_intake(&self, intake: &PendingIntake) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("contact_id", s(intake_key(&intake.id)))
            .item("form_id", s(intake.form_id.clone()))
            .item("candidate", s(intake.candidate.to_string()))
            .item("sealed_contact", b(intake.sealed_contact.clone()))
            .item("sealed_request", b(intake.sealed_request.clone()))
            .item("received_at", n(unix(intake.received_at)))
            .item("expires_at", n(unix(intake.expires_at)))
            .condition_expression("attribute_not_exists(contact_id)")
            .send()
            .await;
        if conditional("PutItem", result)? { Ok(()) } else { Err(StoreError::conflict("intake ID taken")) }
    }

    async fn intake(&self, id: &IntakeId, now: OffsetDateTime) -> Result<Option<PendingIntake>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(intake_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        // TTL removes items up to days late: an expired one is gone already.
        let expires_at = get_time(&item, "expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        let candidate = ContactId::parse(get_s(&item, "candidate")?)
            .map_err(|e| StoreError::corrupt_from("intake candidate", e))?;
        Ok(Some(PendingIntake {
            id: *id,
            form_id: get_s(&item, "form_id")?.to_owned(),
            candidate,
            sealed_contact: get_b(&item, "sealed_contact")?,
            sealed_request: get_b(&item, "sealed_request")?,
            received_at: get_time(&item, "received_at")?,
            expires_at,
        }))
    }

    async fn remove_intake(&self, id: &IntakeId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("contact_id", s(intake_key(id)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }

    async fn count_requests(&self, keys: &[LimitKey], window: LimitWindow) -> Result<Vec<u32>, StoreError> {
        // One atomic counter per key (DynamoDB has no batched update), asked at once.
        futures::future::try_join_all(keys.iter().map(|key| self.count_one(key, window))).await
    }
}
