//! Secure messages in the activity table (key attribute `contact_id`, S;
//! TTL attribute `expires_at`): the item `secure#{campaign}#{contact}` holds
//! `sealed` (B), `created_at`, `notice_sent` (BOOL), the latest code's
//! `code_hash` (S) and `code_expires_at`, `codes_issued` (L of N: when codes
//! were issued, for the rate limit) and `failures` (N). The key cannot meet a
//! contact's item, whose key is a bare UUID.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::Bindings;
use super::{Item, b, conditional, get_b, get_n, get_time, n, opt_n, opt_s, s, sdk_error, unix};
use crate::domain::{CampaignId, ContactId};
use crate::ports::{IssuedCode, SecureMessage, SecureMessageStore, StoreError, Window};

pub struct DynamoSecureMessageStore {
    client: Client,
    table: String,
}

impl DynamoSecureMessageStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn item(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(key(campaign, contact)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }
}

fn key(campaign: &CampaignId, contact: &ContactId) -> String {
    format!("secure#{campaign}#{contact}")
}

fn times(item: &Item) -> Result<Vec<i64>, StoreError> {
    match item.get("codes_issued") {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::N(t) => t.parse().map_err(|_| StoreError::corrupt("codes_issued is not numbers")),
                _ => Err(StoreError::corrupt("codes_issued is not numbers")),
            })
            .collect(),
        Some(_) => Err(StoreError::corrupt("codes_issued is not a list")),
    }
}

fn message(campaign: &CampaignId, contact: &ContactId, item: &Item) -> Result<SecureMessage, StoreError> {
    let code = match (opt_s(item, "code_hash")?, opt_n::<i64>(item, "code_expires_at")?) {
        (Some(hash), Some(at)) => Some(IssuedCode { hash: hash.to_owned(), expires_at: super::from_unix(at)? }),
        _ => None,
    };
    Ok(SecureMessage {
        campaign: *campaign,
        contact: *contact,
        sealed: get_b(item, "sealed")?,
        created_at: get_time(item, "created_at")?,
        expires_at: get_time(item, "expires_at")?,
        notice_sent: matches!(item.get("notice_sent"), Some(AttributeValue::Bool(true))),
        code,
        failures: opt_n(item, "failures")?.unwrap_or(0),
    })
}

#[async_trait]
impl SecureMessageStore for DynamoSecureMessageStore {
    async fn create(&self, m: &SecureMessage) -> Result<SecureMessage, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("contact_id", s(key(&m.campaign, &m.contact)))
            .item("sealed", b(m.sealed.clone()))
            .item("created_at", n(unix(m.created_at)))
            .item("expires_at", n(unix(m.expires_at)))
            .item("notice_sent", AttributeValue::Bool(false))
            .item("failures", n(0))
            .condition_expression("attribute_not_exists(contact_id)")
            .send()
            .await;
        // Written now, or by an earlier attempt: either way, answer the stored one.
        conditional("PutItem", result)?;
        let item = self.item(&m.campaign, &m.contact).await?;
        item.map(|i| message(&m.campaign, &m.contact, &i))
            .transpose()?
            .ok_or_else(|| StoreError::corrupt("secure message not stored"))
    }

    async fn get(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<SecureMessage>, StoreError> {
        self.item(campaign, contact).await?.map(|i| message(campaign, contact, &i)).transpose()
    }

    async fn notice_sent(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(key(campaign, contact)))
            .update_expression("SET notice_sent = :yes")
            .condition_expression("attribute_exists(contact_id)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        conditional("UpdateItem", result).map(|_| ())
    }

    async fn issue_code(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        code: &IssuedCode,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.item(campaign, contact).await? else { return Ok(false) };
        let issued = times(&item)?;
        let mut recent: Vec<i64> = issued.iter().copied().filter(|t| *t >= unix(window.since)).collect();
        if recent.len() >= max as usize {
            return Ok(false);
        }
        recent.push(unix(window.at));
        let as_list = |list: &[i64]| AttributeValue::L(list.iter().map(|t| n(*t)).collect());
        // Written only over the list read: a racing request loses and is refused.
        let guard = if item.contains_key("codes_issued") {
            "codes_issued = :read"
        } else {
            "attribute_not_exists(codes_issued)"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(key(campaign, contact)))
            .update_expression("SET code_hash = :hash, code_expires_at = :expires, codes_issued = :issued")
            .condition_expression(guard)
            .values([(":hash", s(code.hash.clone())), (":expires", n(unix(code.expires_at)))])
            .expression_attribute_values(":issued", as_list(&recent));
        if item.contains_key("codes_issued") {
            update = update.expression_attribute_values(":read", as_list(&issued));
        }
        conditional("UpdateItem", update.send().await)
    }

    async fn record_failure(&self, campaign: &CampaignId, contact: &ContactId) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(key(campaign, contact)))
            .update_expression("ADD failures :one")
            .condition_expression("attribute_exists(contact_id)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        get_n(&out.attributes.unwrap_or_default(), "failures")
    }

    async fn spend_code(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(key(campaign, contact)))
            .update_expression("SET failures = :zero REMOVE code_hash, code_expires_at")
            .condition_expression("attribute_exists(contact_id)")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        conditional("UpdateItem", result).map(|_| ())
    }
}
