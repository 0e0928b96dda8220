//! Send ledger table: `campaign_id` (S) + `contact_id` (S), with `state` (S:
//! `claimed`, `released`, `sent`, `skipped`, `failed`), `attempt` (N),
//! `lease_until` (N, unix seconds, only while claimed), `provider_message_id`
//! (S, once sent; indexed by `by_provider_message_id`), `reason` (S),
//! `updated_at` (N), `events` (SS: the provider events already counted, a
//! click as `clicked#<link key>`), `delivery` (S: `delayed`, `delivered`,
//! `bounced_permanent` …, the highest-ranked provider report),
//! `bounce_subtype` and `delay_type` (S, SES's words) and `expires_at` (N,
//! the table's TTL attribute: the retention period after the claim, again
//! after the settle and after each provider report).
//!
//! Same semantics as the embedded ledger, built from conditional writes: a
//! first claim is a put on an absent item; a takeover (lapsed lease or a
//! released claim) is an update conditional on the state and attempt that
//! were read, so of two racing takers exactly one wins; settling and
//! releasing are conditional on the caller's attempt still holding the claim.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use super::Bindings;
use super::{Item, conditional, from_unix, get_n, get_s, is_condition_failed, n, opt_n, opt_s, s, sdk_error, unix};
use crate::domain::{CampaignId, ContactId, ProviderMessageId, RecipientDomain};
use crate::ports::{
    ClaimOutcome, DeliveryRecord, DeliveryReport, DeliveryState, DomainReach, EventMark, HELD_REASON, LedgerCounts,
    LedgerRow, LedgerState, ReachRow, Reopenable, SendLedger, StoreError, tally_reach,
};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

/// The index from a provider's message ID back to the ledger row.
pub(crate) const BY_PROVIDER_MESSAGE_ID: &str = "by_provider_message_id";

const CLAIMED: &str = "claimed";
const RELEASED: &str = "released";

pub struct DynamoSendLedger {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoSendLedger {
    /// An UpdateItem on one ledger row.
    fn row_update(&self, campaign: impl ToString, contact: impl ToString) -> UpdateItemFluentBuilder {
        let request = self.client.update_item().table_name(&self.table);
        request.key("campaign_id", s(campaign.to_string())).key("contact_id", s(contact.to_string()))
    }

    /// The UpdateItem that keeps a delivery report on its row: with the
    /// state only where it ranks at least as high as the stored one; with
    /// `mark` added to the row's counted events.
    fn delivery_update(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
        with_state: bool,
        mark: Option<&str>,
    ) -> UpdateItemFluentBuilder {
        let mut sets = vec!["#expires = :expires"];
        let mut request = self
            .row_update(campaign, contact)
            .names(&[("#pk", "campaign_id"), ("#expires", "expires_at")])
            .expression_attribute_values(":expires", n(self.expires_at(now)));
        if let Some(subtype) = &report.bounce_subtype {
            sets.push("#subtype = :subtype");
            request = request
                .expression_attribute_names("#subtype", "bounce_subtype")
                .expression_attribute_values(":subtype", s(subtype));
        }
        if let Some(delay) = &report.delay_type {
            sets.push("#delay = :delay");
            request = request
                .expression_attribute_names("#delay", "delay_type")
                .expression_attribute_values(":delay", s(delay));
        }
        if with_state {
            sets.push("#delivery = :delivery");
            let replaces = report.state.replaces();
            let placeholders: Vec<String> = (0..replaces.len()).map(|i| format!(":r{i}")).collect();
            for (placeholder, state) in placeholders.iter().zip(&replaces) {
                request = request.expression_attribute_values(placeholder, s(state.as_str()));
            }
            request = request
                .expression_attribute_names("#delivery", "delivery")
                .expression_attribute_values(":delivery", s(report.state.as_str()))
                .condition_expression(format!(
                    "attribute_exists(#pk) AND (attribute_not_exists(#delivery) OR #delivery IN ({}))",
                    placeholders.join(", ")
                ));
        } else {
            request = request.condition_expression("attribute_exists(#pk)");
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if let Some(mark) = mark {
            expression.push_str(" ADD #events :event");
            request = request.expression_attribute_names("#events", "events").expression_attribute_values(
                ":event",
                aws_sdk_dynamodb::types::AttributeValue::Ss(vec![mark.to_owned()]),
            );
        }
        request.update_expression(expression)
    }
    /// Rows expire (DynamoDB TTL) the default 400 days after their last change.
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table, retention: crate::config::DEFAULT_RETENTION }
    }

    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    fn expires_at(&self, now: OffsetDateTime) -> i64 {
        unix(now + self.retention)
    }

    async fn read(&self, campaign: &str, contact: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("campaign_id", s(campaign))
            .key("contact_id", s(contact))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// An update that applies only while `attempt` holds the claim.
    async fn update_held(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        update: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .row_update(campaign, contact)
            .update_expression(update)
            .condition_expression("#state = :claimed AND #attempt = :attempt")
            .names(&[("#state", "state"), ("#attempt", "attempt")])
            .expression_attribute_values(":claimed", s(CLAIMED))
            .expression_attribute_values(":attempt", n(attempt));
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::conflict("claim is no longer held")),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }
}

/// The row's state; `None` for a released claim (as if never claimed).
fn to_state(item: &Item) -> Result<Option<LedgerState>, StoreError> {
    let reason = || opt_s(item, "reason").map(|r| r.unwrap_or_default().to_owned());
    Ok(match get_s(item, "state")? {
        CLAIMED => Some(LedgerState::Claimed {
            attempt: get_n(item, "attempt")?,
            lease_until: from_unix(opt_n(item, "lease_until")?.unwrap_or(0))?,
        }),
        RELEASED => None,
        "sent" => Some(LedgerState::Sent {
            provider_message_id: ProviderMessageId::new(opt_s(item, "provider_message_id")?.unwrap_or_default()),
        }),
        "skipped" => Some(LedgerState::Skipped { reason: reason()? }),
        "failed" => Some(LedgerState::Failed { reason: reason()? }),
        _ => return Err(StoreError::corrupt("ledger item has an unknown state")),
    })
}

/// The filter selecting `which` rows, with its placeholders and values.
fn reopenable_filter(
    which: Reopenable,
) -> (&'static str, Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>) {
    match which {
        Reopenable::Failed => ("#state = :state", vec![(":state", s("failed"))]),
        Reopenable::Held => {
            ("#state = :state AND #reason = :reason", vec![(":state", s("skipped")), (":reason", s(HELD_REASON))])
        }
    }
}

/// The end of a lease taken at `now`, rounded up to whole seconds so it
/// never lapses before `now + lease`.
fn lease_end(now: OffsetDateTime, lease: Duration) -> i64 {
    let until = now + lease.max(Duration::from_secs(1));
    unix(until) + i64::from(until.nanosecond() > 0)
}

impl DynamoSendLedger {
    /// Up to `limit` contacts of `campaign` after `after`, in ID order,
    /// whose rows pass `filter` (a filter applies after each page is read,
    /// so this keeps paging until enough match).
    async fn contacts_where(
        &self,
        campaign: &CampaignId,
        filter: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .filter_expression(filter)
            .projection_expression("#sk")
            .names(&[("#pk", "campaign_id"), ("#sk", "contact_id"), ("#state", "state")])
            .expression_attribute_values(":pk", s(campaign.to_string()))
            .consistent_read(true);
        // A key condition may not compare with an empty string.
        request = match after {
            Some(after) => request
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_values(":after", s(after.to_string())),
            None => request.key_condition_expression("#pk = :pk"),
        };
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        let mut pages = request.into_paginator().items().send();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(item) = pages.try_next().await.map_err(|e| sdk_error("Query", e))? else { break };
            out.push(
                ContactId::parse(get_s(&item, "contact_id")?)
                    .map_err(|e| StoreError::corrupt_from("ledger item has an invalid contact id", e))?,
            );
        }
        Ok(out)
    }
}

#[async_trait]
impl SendLedger for DynamoSendLedger {
    async fn claim(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let (campaign_key, contact_key) = (campaign.to_string(), contact.to_string());
        let lease_until = lease_end(now, lease);
        let first = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("campaign_id", s(campaign_key.clone()))
            .item("contact_id", s(contact_key.clone()))
            .item("state", s(CLAIMED))
            .item("attempt", n(1))
            .item("lease_until", n(lease_until))
            .item("updated_at", n(unix(now)))
            .item("expires_at", n(self.expires_at(now)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "campaign_id")
            .send()
            .await;
        match first {
            Ok(_) => return Ok(ClaimOutcome::Claimed { attempt: 1 }),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(sdk_error("PutItem", e)),
        }

        // The row exists: held, lapsed, released or settled.
        let Some(item) = self.read(&campaign_key, &contact_key).await? else {
            // Rows are never deleted; a row we just collided with is there.
            return Err(StoreError::unavailable_msg("ledger row not readable after a lost conditional put"));
        };
        let state = get_s(&item, "state")?.to_owned();
        let attempt: u32 = get_n(&item, "attempt")?;
        match to_state(&item)? {
            Some(LedgerState::Claimed { lease_until: held, .. }) if held > now => return Ok(ClaimOutcome::Busy),
            Some(LedgerState::Claimed { .. }) | None => {}
            Some(done) => return Ok(ClaimOutcome::Done(done)),
        }
        let next = attempt + 1;
        let takeover = self
            .row_update(campaign_key, contact_key)
            .update_expression(
                "SET #state = :claimed, #attempt = :next, #lease = :lease, #updated = :now, #expires = :expires",
            )
            .condition_expression("#state = :old_state AND #attempt = :old_attempt")
            .names(&[
                ("#state", "state"),
                ("#attempt", "attempt"),
                ("#lease", "lease_until"),
                ("#updated", "updated_at"),
                ("#expires", "expires_at"),
            ])
            .values([
                (":expires", n(self.expires_at(now))),
                (":claimed", s(CLAIMED)),
                (":next", n(next)),
                (":lease", n(lease_until)),
                (":now", n(unix(now))),
                (":old_state", s(state)),
                (":old_attempt", n(attempt)),
            ])
            .send()
            .await;
        match takeover {
            Ok(_) => Ok(ClaimOutcome::Claimed { attempt: next }),
            // Another sender took it over (or settled it) since we read it.
            Err(e) if is_condition_failed(&e) => Ok(ClaimOutcome::Busy),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn settle_with(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        state: &LedgerState,
        domain: Option<&RecipientDomain>,
    ) -> Result<(), StoreError> {
        let at = OffsetDateTime::now_utc();
        let (now, expires) = (n(unix(at)), n(self.expires_at(at)));
        let (name, detail_name, detail, stale) = match state {
            LedgerState::Sent { provider_message_id } => {
                ("sent", "provider_message_id", provider_message_id.as_str().to_owned(), "reason")
            }
            LedgerState::Skipped { reason } => ("skipped", "reason", reason.clone(), "provider_message_id"),
            LedgerState::Failed { reason } => ("failed", "reason", reason.clone(), "provider_message_id"),
            LedgerState::Claimed { .. } => return Err(StoreError::corrupt("cannot settle into claimed")),
        };
        let mut names = vec![
            ("#detail", detail_name),
            ("#updated", "updated_at"),
            ("#expires", "expires_at"),
            ("#lease", "lease_until"),
            ("#stale", stale),
        ];
        let mut values = vec![(":state", s(name)), (":detail", s(detail)), (":now", now), (":expires", expires)];
        let update = match domain {
            Some(domain) => {
                names.push(("#domain", "recipient_domain"));
                values.push((":domain", s(domain.as_str())));
                "SET #state = :state, #detail = :detail, #updated = :now, #expires = :expires, #domain = :domain \
                 REMOVE #lease, #stale"
            }
            None => {
                "SET #state = :state, #detail = :detail, #updated = :now, #expires = :expires REMOVE #lease, #stale"
            }
        };
        self.update_held(campaign, contact, attempt, update, &names, values).await
    }

    async fn reach_by_domain(&self, campaign: &CampaignId) -> Result<Vec<DomainReach>, StoreError> {
        // Report time only; the same partition `counts` reads, no index.
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .filter_expression("attribute_exists(#domain)")
            .projection_expression("#domain, #state, #reason, #delivery, #events")
            .names(&[
                ("#pk", "campaign_id"),
                ("#domain", "recipient_domain"),
                ("#state", "state"),
                ("#reason", "reason"),
                ("#delivery", "delivery"),
                ("#events", "events"),
            ])
            .expression_attribute_values(":pk", s(campaign.to_string()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.try_next().await.map_err(|e| sdk_error("Query", e))? {
            items.push(item);
        }
        let mut rows = Vec::with_capacity(items.len());
        for item in &items {
            let events = match item.get("events") {
                Some(aws_sdk_dynamodb::types::AttributeValue::Ss(set)) => set.as_slice(),
                _ => &[],
            };
            let delivery = DeliveryState::parse_stored(opt_s(item, "delivery")?)?;
            rows.push(ReachRow {
                domain: get_s(item, "recipient_domain")?,
                state: get_s(item, "state")?,
                reason: opt_s(item, "reason")?,
                delivery,
                opened: events.iter().any(|e| e == "opened"),
                complained: events.iter().any(|e| e == "complained"),
            });
        }
        tally_reach(rows)
    }

    async fn release(&self, campaign: &CampaignId, contact: &ContactId, attempt: u32) -> Result<(), StoreError> {
        let now = n(unix(OffsetDateTime::now_utc()));
        self.update_held(
            campaign,
            contact,
            attempt,
            // The lease end stays: it tells reconciliation when the job's
            // back-off has run out (`stranded`).
            "SET #state = :released, #updated = :now",
            &[("#updated", "updated_at")],
            vec![(":released", s(RELEASED)), (":now", now)],
        )
        .await
    }

    async fn state(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerState>, StoreError> {
        match self.read(&campaign.to_string(), &contact.to_string()).await? {
            Some(item) => to_state(&item),
            None => Ok(None),
        }
    }

    async fn row(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerRow>, StoreError> {
        let Some(item) = self.read(&campaign.to_string(), &contact.to_string()).await? else { return Ok(None) };
        let Some(state) = to_state(&item)? else { return Ok(None) };
        let marks = match item.get("events") {
            Some(aws_sdk_dynamodb::types::AttributeValue::Ss(marks)) => marks.as_slice(),
            _ => &[],
        };
        Ok(Some(LedgerRow::from_marks(state, marks.iter().map(String::as_str))))
    }

    async fn find_by_provider_id(&self, id: &ProviderMessageId) -> Result<Option<(CampaignId, ContactId)>, StoreError> {
        if id.as_str().is_empty() {
            // DynamoDB refuses empty key values; nothing is stored under one.
            return Ok(None);
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_PROVIDER_MESSAGE_ID)
            .key_condition_expression("#pmid = :pmid")
            .expression_attribute_names("#pmid", "provider_message_id")
            .expression_attribute_values(":pmid", s(id.as_str()))
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        out.items()
            .first()
            .map(|item| {
                Ok((
                    CampaignId::parse(get_s(item, "campaign_id")?)
                        .map_err(|e| StoreError::corrupt_from("ledger item has an invalid campaign id", e))?,
                    ContactId::parse(get_s(item, "contact_id")?)
                        .map_err(|e| StoreError::corrupt_from("ledger item has an invalid contact id", e))?,
                ))
            })
            .transpose()
    }

    async fn counts(&self, campaign: &CampaignId) -> Result<LedgerCounts, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .projection_expression("#state")
            .names(&[("#pk", "campaign_id"), ("#state", "state")])
            .expression_attribute_values(":pk", s(campaign.to_string()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut counts = LedgerCounts::default();
        while let Some(item) = pages.try_next().await.map_err(|e| sdk_error("Query", e))? {
            match get_s(&item, "state")? {
                CLAIMED | RELEASED => counts.claimed += 1,
                "sent" => counts.sent += 1,
                "skipped" => counts.skipped += 1,
                "failed" => counts.failed += 1,
                _ => return Err(StoreError::corrupt("ledger item has an unknown state")),
            }
        }
        Ok(counts)
    }

    async fn reopenable(
        &self,
        campaign: &CampaignId,
        which: Reopenable,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        let (filter, values) = reopenable_filter(which);
        let names: &[(&str, &str)] = if which == Reopenable::Held { &[("#reason", "reason")] } else { &[] };
        self.contacts_where(campaign, filter, names, values, after, limit).await
    }

    async fn stranded(
        &self,
        campaign: &CampaignId,
        lapsed_before: OffsetDateTime,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        self.contacts_where(
            campaign,
            "(#state = :released OR #state = :claimed) AND \
             (#lease < :before OR (attribute_not_exists(#lease) AND #updated < :before))",
            &[("#lease", "lease_until"), ("#updated", "updated_at")],
            vec![(":released", s(RELEASED)), (":claimed", s(CLAIMED)), (":before", n(unix(lapsed_before)))],
            after,
            limit,
        )
        .await
    }

    async fn reopen(&self, campaign: &CampaignId, contact: &ContactId, which: Reopenable) -> Result<bool, StoreError> {
        let (filter, values) = reopenable_filter(which);
        let mut request = self
            .row_update(campaign, contact)
            .update_expression("SET #state = :released, #updated = :now REMOVE #reason, #lease")
            .condition_expression(filter)
            .names(&[("#state", "state"), ("#reason", "reason"), ("#updated", "updated_at"), ("#lease", "lease_until")])
            .expression_attribute_values(":released", s(RELEASED))
            .expression_attribute_values(":now", n(unix(OffsetDateTime::now_utc())));
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        conditional("UpdateItem", request.send().await)
    }

    async fn first_mark(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        event: &EventMark,
    ) -> Result<bool, StoreError> {
        let key = event.key();
        let result = self
            .row_update(campaign, contact)
            .update_expression("ADD #events :event")
            .condition_expression("attribute_exists(#pk) AND NOT contains(#events, :name)")
            .names(&[("#pk", "campaign_id"), ("#events", "events")])
            .values([(":event", aws_sdk_dynamodb::types::AttributeValue::Ss(vec![key.clone()])), (":name", s(key))])
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn fail_sent(&self, campaign: &CampaignId, contact: &ContactId, reason: &str) -> Result<bool, StoreError> {
        let at = OffsetDateTime::now_utc();
        // The provider message ID stays: later events still match the row.
        let result = self
            .row_update(campaign, contact)
            .update_expression("SET #state = :failed, #reason = :reason, #updated = :now, #expires = :expires")
            .condition_expression("#state = :sent")
            .names(&[
                ("#state", "state"),
                ("#reason", "reason"),
                ("#updated", "updated_at"),
                ("#expires", "expires_at"),
            ])
            .values([
                (":failed", s("failed")),
                (":sent", s("sent")),
                (":reason", s(reason)),
                (":now", n(unix(at))),
                (":expires", n(self.expires_at(at))),
            ])
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn record_delivery(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The state only where it ranks at least as high as the stored one;
        // the details (and the retention) in any case, in a second write.
        if conditional("UpdateItem", self.delivery_update(campaign, contact, report, now, true, None).send().await)? {
            return Ok(());
        }
        // A lower-ranked report, or no row (then this changes nothing either).
        let details = self.delivery_update(campaign, contact, report, now, false, None).send().await;
        conditional("UpdateItem", details).map(|_| ())
    }

    async fn record_delivery_marked(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
        mark: &EventMark,
    ) -> Result<bool, StoreError> {
        // The mark rides on the report's own write; the row as it was
        // before (returned at no extra read cost) says whether it is new.
        let key = mark.key();
        for with_state in [true, false] {
            let update = self.delivery_update(campaign, contact, report, now, with_state, Some(&key));
            match update.return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld).send().await {
                Ok(out) => {
                    let before = match out.attributes().and_then(|a| a.get("events")) {
                        Some(aws_sdk_dynamodb::types::AttributeValue::Ss(set)) => set.contains(&key),
                        _ => false,
                    };
                    return Ok(!before);
                }
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(sdk_error("UpdateItem", e)),
            }
        }
        // No row.
        Ok(false)
    }

    async fn delivery(&self, campaign: &CampaignId, contact: &ContactId) -> Result<DeliveryRecord, StoreError> {
        let Some(item) = self.read(&campaign.to_string(), &contact.to_string()).await? else {
            return Ok(DeliveryRecord::default());
        };
        let state = DeliveryState::parse_stored(opt_s(&item, "delivery")?)?;
        Ok(DeliveryRecord {
            state,
            bounce_subtype: opt_s(&item, "bounce_subtype")?.map(str::to_owned),
            delay_type: opt_s(&item, "delay_type")?.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_lease_end_is_rounded_up_to_the_second() {
        let t = datetime!(2030-01-07 09:00:00 UTC);
        assert_eq!(lease_end(t, Duration::from_secs(30)), unix(t) + 30);
        assert_eq!(lease_end(t, Duration::from_millis(1_500)), unix(t) + 2);
        assert_eq!(lease_end(t + time::Duration::milliseconds(500), Duration::from_secs(30)), unix(t) + 31);
        assert_eq!(lease_end(t, Duration::ZERO), unix(t) + 1);
    }
}
