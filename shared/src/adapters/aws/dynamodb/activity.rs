//! Contact activity table: `contact_id` (S) as the key, `last_open_at` and
//! `last_click_at` (N, unix seconds), `soft_bounces` (L of N: recent soft
//! bounce times), `last_confirmation_at` (N: when the confirmation-email
//! slot was taken), `confirmation_request` (S: by which consent request) and
//! `confirmation_handed_over` (BOOL: its email left),
//! `marketing_sends` (M: campaign ID → unix seconds, the frequency cap's
//! claims within the window, guarded by `marketing_version`) and `expires_at`
//! (N, the table's TTL attribute).
//!
//! A recipient domain lately found unable to do TLS is an item of its own,
//! keyed `tls-gap#<domain>` (contact IDs are UUIDs, so the two never meet),
//! with `seen_at` and `expires_at` (N).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::Bindings;
use super::{conditional, from_unix, is_condition_failed, n, opt_n, s, sdk_error, unix};
use crate::domain::{CampaignId, ConsentRequestId, ContactId, RecipientDomain};
use crate::ports::{Activity, ActivityStore, Engagement, StoreError, Window};

pub struct DynamoActivityStore {
    client: Client,
    table: String,
}

impl DynamoActivityStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// A conditional update of the contact's confirmation slot, whose
    /// attributes the expressions name `#last`, `#request`, `#sent` (and
    /// `#expires`); `:request` is the request, `values` the other values.
    /// False if the condition failed.
    async fn update_slot(
        &self,
        (contact, request): (&ContactId, &ConsentRequestId),
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .update_expression(update)
            .condition_expression(condition)
            .names(&[
                ("#last", "last_confirmation_at"),
                ("#request", "confirmation_request"),
                ("#sent", "confirmation_handed_over"),
            ])
            .expression_attribute_values(":request", s(request.to_string()));
        if update.contains("#expires") {
            call = call.expression_attribute_names("#expires", "expires_at");
        }
        for (name, value) in values {
            call = call.expression_attribute_values(*name, value.clone());
        }
        conditional("UpdateItem", call.send().await)
    }

    /// The contact's frequency-cap claims (campaign ID, unix time) and their version.
    async fn marketing_sends(&self, contact: &ContactId) -> Result<(Vec<(String, i64)>, u64), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .consistent_read(true)
            .projection_expression("marketing_sends, marketing_version")
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item else { return Ok((Vec::new(), 0)) };
        let version = opt_n::<u64>(&item, "marketing_version")?.unwrap_or(0);
        let sends = match item.get("marketing_sends") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .map(|(c, t)| match t {
                    AttributeValue::N(t) => t.parse::<i64>().map(|t| (c.clone(), t)).map_err(|_| ()),
                    _ => Err(()),
                })
                .collect::<Result<Vec<_>, ()>>()
                .map_err(|()| StoreError::corrupt("activity item's marketing_sends is not a map of times"))?,
            None => Vec::new(),
            Some(_) => return Err(StoreError::corrupt("activity item's marketing_sends is not a map")),
        };
        Ok((sends, version))
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
            .values([(":at", n(unix(at))), (":expires", n(unix(expires_at)))])
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
        request: &ConsentRequestId,
        window: Window,
    ) -> Result<bool, StoreError> {
        let Window { at, since: not_since, expires_at } = window;
        self.update_slot(
            (contact, request),
            "SET #last = :at, #request = :request, #sent = :false, #expires = :expires",
            "attribute_not_exists(#last) OR #last <= :not_since OR (#request = :request AND #sent = :false)",
            &[
                (":at", n(unix(at))),
                (":false", AttributeValue::Bool(false)),
                (":not_since", n(unix(not_since))),
                (":expires", n(unix(expires_at))),
            ],
        )
        .await
    }

    async fn confirmation_handed_over(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError> {
        let values = [(":true", AttributeValue::Bool(true))];
        let condition = "attribute_exists(#last) AND #request = :request";
        self.update_slot((contact, request), "SET #sent = :true", condition, &values).await.map(|_| ())
    }

    async fn release_confirmation_slot(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError> {
        let values = [(":false", AttributeValue::Bool(false))];
        let condition = "#request = :request AND #sent = :false";
        self.update_slot((contact, request), "REMOVE #last, #request, #sent", condition, &values).await.map(|_| ())
    }

    async fn marketing_sends_since(
        &self,
        contact: &ContactId,
        since: OffsetDateTime,
        except: &CampaignId,
    ) -> Result<u32, StoreError> {
        let (sends, _) = self.marketing_sends(contact).await?;
        let except = except.to_string();
        Ok(sends.iter().filter(|(c, at)| *c != except && *at >= unix(since)).count() as u32)
    }

    async fn claim_marketing_send(
        &self,
        contact: &ContactId,
        campaign: &CampaignId,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError> {
        let Window { at, since, expires_at } = window;
        let campaign = campaign.to_string();
        // Optimistic: read the claims and their version, write them back only
        // if no other sender wrote in between; retry on a lost race.
        for _ in 0..8 {
            let (mut sends, version) = self.marketing_sends(contact).await?;
            if sends.iter().any(|(c, _)| *c == campaign) {
                return Ok(true);
            }
            sends.retain(|(_, t)| *t >= unix(since));
            if sends.len() >= max as usize {
                return Ok(false);
            }
            sends.push((campaign.clone(), unix(at)));
            let map = sends.into_iter().map(|(c, t)| (c, n(t))).collect();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("contact_id", s(contact.to_string()))
                .update_expression(
                    "SET #sends = :sends, #version = :next, #expires = if_not_exists(#expires, :expires)",
                )
                .names(&[("#sends", "marketing_sends"), ("#version", "marketing_version"), ("#expires", "expires_at")])
                .values([(":sends", AttributeValue::M(map)), (":next", n(version + 1))])
                .expression_attribute_values(":expires", n(unix(expires_at)));
            update = if version == 0 {
                update.condition_expression("attribute_not_exists(#version)")
            } else {
                update.condition_expression("#version = :seen").expression_attribute_values(":seen", n(version))
            };
            match update.send().await {
                Ok(_) => return Ok(true),
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(sdk_error("UpdateItem", e)),
            }
        }
        Err(StoreError::conflict("the frequency-cap claims kept changing; try again"))
    }

    async fn record_soft_bounce(&self, contact: &ContactId, window: Window) -> Result<u32, StoreError> {
        let Window { at, since, expires_at } = window;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(contact.to_string()))
            .update_expression(
                "SET #bounces = list_append(if_not_exists(#bounces, :empty), :this), #expires = :expires",
            )
            .names(&[("#bounces", "soft_bounces"), ("#expires", "expires_at")])
            .values([
                (":empty", AttributeValue::L(Vec::new())),
                (":this", AttributeValue::L(vec![n(unix(at))])),
                (":expires", n(unix(expires_at))),
            ])
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let times = match out.attributes().and_then(|a| a.get("soft_bounces")) {
            Some(AttributeValue::L(list)) => list,
            _ => return Err(StoreError::corrupt("activity item has no soft_bounces list")),
        };
        let since = unix(since);
        let recent = times
            .iter()
            .filter(|v| matches!(v, AttributeValue::N(t) if t.parse::<i64>().is_ok_and(|t| t >= since)))
            .count();
        Ok(recent as u32)
    }

    async fn remember_tls_gap(
        &self,
        domain: &RecipientDomain,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(tls_gap_key(domain)))
            .update_expression("SET #seen = :seen, #expires = :expires")
            .names(&[("#seen", "seen_at"), ("#expires", "expires_at")])
            .values([(":seen", n(unix(at))), (":expires", n(unix(expires_at)))])
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
    }

    async fn lacks_tls(&self, domain: &RecipientDomain, now: OffsetDateTime) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(tls_gap_key(domain)))
            .projection_expression("expires_at")
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        // TTL removes an expired item only eventually: the expiry decides.
        let expires = match &out.item {
            Some(item) => opt_n::<i64>(item, "expires_at")?,
            None => None,
        };
        Ok(expires.is_some_and(|at| at > unix(now)))
    }
}

fn tls_gap_key(domain: &RecipientDomain) -> String {
    format!("tls-gap#{}", domain.as_str())
}
