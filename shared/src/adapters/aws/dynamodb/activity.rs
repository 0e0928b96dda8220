//! Contact activity table: `contact_id` (S) as the key, `last_open_at` and
//! `last_click_at` (N, unix seconds), `soft_bounces` (L of N: recent soft
//! bounce times), `last_confirmation_at` (N: the last double opt-in email)
//! and `expires_at` (N, the table's TTL attribute).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::{from_unix, is_condition_failed, n, opt_n, s, sdk_error, unix};
use crate::domain::ContactId;
use crate::ports::{Activity, ActivityStore, Engagement, StoreError};

pub struct DynamoActivityStore {
    client: Client,
    table: String,
}

impl DynamoActivityStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl ActivityStore for DynamoActivityStore {
    async fn record_engagement(
        &self,
        contact: &ContactId,
        kind: Engagement,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let field = match kind {
            Engagement::Open => "last_open_at",
            Engagement::Click => "last_click_at",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .update_expression("SET #field = :at, #expires = :expires")
            // Never move a time back: an older event arriving late changes nothing.
            .condition_expression("attribute_not_exists(#field) OR #field < :at")
            .expression_attribute_names("#field", field)
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":at", n(unix(at)))
            .expression_attribute_values(":expires", n(unix(expires_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn activity(&self, contact: &ContactId) -> Result<Option<Activity>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        let time = |name: &str| opt_n::<i64>(&item, name)?.map(from_unix).transpose();
        Ok(Some(Activity { last_open: time("last_open_at")?, last_click: time("last_click_at")? }))
    }

    async fn claim_confirmation_slot(
        &self,
        contact: &ContactId,
        at: OffsetDateTime,
        not_since: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .update_expression("SET #last = :at, #expires = :expires")
            .condition_expression("attribute_not_exists(#last) OR #last <= :not_since")
            .expression_attribute_names("#last", "last_confirmation_at")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":at", n(unix(at)))
            .expression_attribute_values(":not_since", n(unix(not_since)))
            .expression_attribute_values(":expires", n(unix(expires_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn record_soft_bounce(
        &self,
        contact: &ContactId,
        at: OffsetDateTime,
        since: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .update_expression(
                "SET #bounces = list_append(if_not_exists(#bounces, :empty), :this), #expires = :expires",
            )
            .expression_attribute_names("#bounces", "soft_bounces")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":this", AttributeValue::L(vec![n(unix(at))]))
            .expression_attribute_values(":expires", n(unix(expires_at)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let times = match out.attributes().and_then(|a| a.get("soft_bounces")) {
            Some(AttributeValue::L(list)) => list,
            _ => return Err(StoreError::Corrupt("activity item has no soft_bounces list".into())),
        };
        let since = unix(since);
        let recent = times
            .iter()
            .filter(|v| matches!(v, AttributeValue::N(t) if t.parse::<i64>().is_ok_and(|t| t >= since)))
            .count();
        Ok(recent as u32)
    }
}
