//! Campaigns table: `campaign_id` (S) + `sk` (S). Per campaign:
//! * `meta`: `definition` (S, JSON), `status` (S), `shards` (N), `created_at` (N),
//!   and once paused `paused_reason` (S), `paused_at` (N); `list` (S, always
//!   `campaigns`) and `created_key` (S, `{created_at:012}#{campaign_id}`) key
//!   the sparse index `newest` that lists campaigns newest first;
//! * `shard#{n:05}`: `progress` (S, `ShardProgress` JSON);
//! * `counter#{name}`: `value` (N), incremented with `ADD`;
//! * `window#{name}#{bucket:012}`: `value` (N), one time bucket of a sliding-window counter.
//!
//! The secret store shares the table (see `secrets`).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::{Bindings, query_all};
use super::{
    Item, conditional, get_n, get_s, get_time, is_condition_failed, json_corrupt, n, opt_s, s, sdk_error,
    transition_status, unix,
};
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, ShardProgress};
use crate::ports::{CampaignCursor, CampaignPage, CampaignRecord, CampaignStore, StoreError};

const META: &str = "meta";
/// The index of campaigns by creation, its keys and the one list it holds.
pub(super) const NEWEST_INDEX: &str = "newest";
pub(super) const LIST_KEY: &str = "list";
pub(super) const CREATED_KEY: &str = "created_key";
const LIST: &str = "campaigns";
const SHARD_PREFIX: &str = "shard#";
const COUNTER_PREFIX: &str = "counter#";
const WINDOW_PREFIX: &str = "window#";

pub struct DynamoCampaignStore {
    client: Client,
    table: String,
}

impl DynamoCampaignStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Adds `by` to the counter item `sk` (created at zero on first use).
    async fn add(&self, id: &CampaignId, sk: String, by: u64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("campaign_id", s(id.to_string()))
            .key("sk", s(sk))
            .update_expression("ADD #value :by")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":by", n(by))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("UpdateItem", e))
    }

    /// Every item of one campaign whose sort key starts with `prefix`, in sort-key order.
    async fn query_prefix(&self, id: &CampaignId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_sk(id, "begins_with(#sk, :a)", s(prefix), None).await
    }

    /// Every item of the campaign whose sort key meets `condition` (on
    /// `#sk`, with `:a` and, if given, `:b`), all pages.
    async fn query_sk(
        &self,
        id: &CampaignId,
        condition: &str,
        a: aws_sdk_dynamodb::types::AttributeValue,
        b: Option<aws_sdk_dynamodb::types::AttributeValue>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("#pk = :pk AND {condition}"))
            .names(&[("#pk", "campaign_id"), ("#sk", "sk")])
            .values([(":pk", s(id.to_string())), (":a", a)])
            .consistent_read(true);
        if let Some(b) = b {
            request = request.expression_attribute_values(":b", b);
        }
        query_all(request).await
    }
}

fn record(id: CampaignId, item: &Item) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id,
        definition: get_s(item, "definition")?.to_owned(),
        status: CampaignStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| StoreError::corrupt("campaign item has an unknown status"))?,
        shards: get_n(item, "shards")?,
        created_at: get_time(item, "created_at")?,
        paused_reason: opt_s(item, "paused_reason")?.map(str::to_owned),
    })
}

#[async_trait]
impl CampaignStore for DynamoCampaignStore {
    async fn create(&self, r: &CampaignRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("campaign_id", s(r.id.to_string()))
            .item("sk", s(META))
            .item("definition", s(r.definition.clone()))
            .item("status", s(r.status.as_str()))
            .item("shards", n(r.shards))
            .item("created_at", n(unix(r.created_at)))
            .item(LIST_KEY, s(LIST))
            .item(CREATED_KEY, s(CampaignCursor::of(r).to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "campaign_id")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::conflict("campaign already exists")),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<CampaignRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("campaign_id", s(id.to_string()))
            .key("sk", s(META))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(|item| record(*id, item)).transpose()
    }

    async fn list(&self, after: Option<CampaignCursor>, limit: usize) -> Result<CampaignPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(NEWEST_INDEX)
            .key_condition_expression("#list = :list")
            .expression_attribute_names("#list", LIST_KEY)
            .expression_attribute_values(":list", s(LIST))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(cursor) = after {
            request = request
                .exclusive_start_key(LIST_KEY, s(LIST))
                .exclusive_start_key(CREATED_KEY, s(cursor.to_string()))
                .exclusive_start_key("campaign_id", s(cursor.id.to_string()))
                .exclusive_start_key("sk", s(META));
        }
        let out = request.send().await.map_err(|e| sdk_error("Query", e))?;
        let campaigns = out
            .items()
            .iter()
            .map(|item| {
                let id = CampaignId::parse(get_s(item, "campaign_id")?)
                    .map_err(|_| StoreError::corrupt("campaign item has a bad ID"))?;
                record(id, item)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = if out.last_evaluated_key().is_some() { campaigns.last().map(CampaignCursor::of) } else { None };
        Ok(CampaignPage { campaigns, next })
    }

    async fn transition(&self, id: &CampaignId, from: CampaignStatus, to: CampaignStatus) -> Result<bool, StoreError> {
        transition_status(&self.client, &self.table, ("campaign_id", id.to_string(), META), from.as_str(), to.as_str())
            .await
    }

    async fn save_shard(&self, id: &CampaignId, progress: &ShardProgress) -> Result<(), StoreError> {
        let json = serde_json::to_string(progress).expect("progress serializes");
        self.client
            .put_item()
            .table_name(&self.table)
            .item("campaign_id", s(id.to_string()))
            .item("sk", s(format!("{SHARD_PREFIX}{:05}", progress.shard)))
            .item("shard", n(progress.shard))
            .item("progress", s(json))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutItem", e))
    }

    async fn shards(&self, id: &CampaignId) -> Result<Vec<ShardProgress>, StoreError> {
        self.query_prefix(id, SHARD_PREFIX)
            .await?
            .iter()
            .map(|item| serde_json::from_str(get_s(item, "progress")?).map_err(|e| json_corrupt("shard progress", e)))
            .collect()
    }

    async fn increment(&self, id: &CampaignId, counter: CampaignCounter, by: u64) -> Result<(), StoreError> {
        self.add(id, format!("{COUNTER_PREFIX}{}", counter.as_str()), by).await
    }

    async fn counters(&self, id: &CampaignId) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        self.query_prefix(id, COUNTER_PREFIX)
            .await?
            .iter()
            .map(|item| {
                let name = get_s(item, "sk")?.trim_start_matches(COUNTER_PREFIX);
                let counter = CampaignCounter::parse(name)
                    .ok_or_else(|| StoreError::corrupt("campaign counter item has an unknown name"))?;
                Ok((counter, get_n(item, "value")?))
            })
            .collect()
    }

    async fn pause(&self, id: &CampaignId, reason: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("campaign_id", s(id.to_string()))
            .key("sk", s(META))
            .update_expression("SET #status = :paused, #reason = :reason, #at = :at")
            .condition_expression("attribute_exists(#pk) AND #status IN (:fanning_out, :sending)")
            .names(&[("#pk", "campaign_id"), ("#status", "status"), ("#reason", "paused_reason"), ("#at", "paused_at")])
            .values([
                (":paused", s(CampaignStatus::Paused.as_str())),
                (":fanning_out", s(CampaignStatus::FanningOut.as_str())),
                (":sending", s(CampaignStatus::Sending.as_str())),
                (":reason", s(reason)),
                (":at", n(unix(time::OffsetDateTime::now_utc()))),
            ])
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn increment_window(
        &self,
        id: &CampaignId,
        counter: CampaignCounter,
        bucket: i64,
        by: u64,
    ) -> Result<(), StoreError> {
        self.add(id, format!("{WINDOW_PREFIX}{}#{bucket:012}", counter.as_str()), by).await
    }

    async fn window(
        &self,
        id: &CampaignId,
        counters: &[CampaignCounter],
        from_bucket: i64,
    ) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        let mut totals = Vec::new();
        for counter in counters {
            // Only this counter's buckets from `from_bucket` on: a key range,
            // however long the campaign has run.
            let prefix = format!("{WINDOW_PREFIX}{}#", counter.as_str());
            let from = s(format!("{prefix}{:012}", from_bucket.max(0)));
            let items = self.query_sk(id, "#sk BETWEEN :a AND :b", from, Some(s(format!("{prefix}~")))).await?;
            let mut total = 0u64;
            for item in &items {
                total += get_n::<u64>(item, "value")?;
            }
            if total > 0 {
                totals.push((*counter, total));
            }
        }
        Ok(totals)
    }

    async fn window_buckets(&self, id: &CampaignId) -> Result<Vec<(i64, CampaignCounter, u64)>, StoreError> {
        let mut rows = Vec::new();
        for item in self.query_prefix(id, WINDOW_PREFIX).await? {
            let key = get_s(&item, "sk")?.trim_start_matches(WINDOW_PREFIX);
            let corrupt = || StoreError::corrupt("campaign window item has an unknown key");
            let (name, bucket) = key.rsplit_once('#').ok_or_else(corrupt)?;
            let bucket: i64 = bucket.parse().map_err(|_| corrupt())?;
            let counter = CampaignCounter::parse(name).ok_or_else(corrupt)?;
            let value: u64 = get_n(&item, "value")?;
            if value > 0 {
                rows.push((bucket, counter, value));
            }
        }
        rows.sort_by_key(|(bucket, counter, _)| (*bucket, counter.as_str()));
        Ok(rows)
    }
}
