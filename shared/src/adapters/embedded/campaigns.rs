use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, ShardProgress};
use crate::ports::{CampaignCursor, CampaignPage, CampaignRecord, CampaignStore, StoreError};

pub struct SqliteCampaignStore {
    db: Db,
}

impl SqliteCampaignStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A campaign with its pause reason, if paused: the columns `campaign_row` reads.
const SELECT_CAMPAIGNS: &str = "SELECT c.campaign_id, c.definition, c.status, c.shards, c.created_at, p.reason
     FROM campaigns c LEFT JOIN campaign_pauses p ON p.campaign_id = c.campaign_id";

type CampaignRow = (String, String, String, u16, i64, Option<String>);

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn campaign_record(
    (id, definition, status, shards, created, paused_reason): CampaignRow,
) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id: CampaignId::parse(&id).map_err(|_| StoreError::corrupt("campaign ID"))?,
        definition,
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("campaign status '{status}'")))?,
        shards,
        created_at: from_unix(created),
        paused_reason,
    })
}

#[async_trait]
impl CampaignStore for SqliteCampaignStore {
    async fn create(&self, r: &CampaignRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.db
            .call(move |c| {
                let inserted = c
                    .execute(
                        "INSERT OR IGNORE INTO campaigns (campaign_id, definition, status, shards, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![r.id.to_string(), r.definition, r.status.as_str(), r.shards, unix(r.created_at)],
                    )
                    .map_err(unavailable)?;
                if inserted == 0 { Err(StoreError::conflict("campaign already exists")) } else { Ok(()) }
            })
            .await
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<CampaignRecord>, StoreError> {
        let id = *id;
        self.db
            .call(move |c| {
                let row = c
                    .query_row(&format!("{SELECT_CAMPAIGNS} WHERE c.campaign_id = ?1"), [id.to_string()], campaign_row)
                    .optional()
                    .map_err(unavailable)?;
                row.map(campaign_record).transpose()
            })
            .await
    }

    async fn list(&self, after: Option<CampaignCursor>, limit: usize) -> Result<CampaignPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        // Without a cursor, start after the largest possible key.
        let (at, id) = after.map_or((i64::MAX, "~".to_owned()), |c| (c.created_at, c.id.to_string()));
        self.db
            .call(move |c| {
                let mut statement = c
                    .prepare_cached(&format!(
                        "{SELECT_CAMPAIGNS} WHERE (c.created_at, c.campaign_id) < (?1, ?2)
                         ORDER BY c.created_at DESC, c.campaign_id DESC LIMIT ?3"
                    ))
                    .map_err(unavailable)?;
                let rows = statement.query_map(params![at, id, limit as i64 + 1], campaign_row).map_err(unavailable)?;
                let mut campaigns = Vec::new();
                for row in rows {
                    campaigns.push(campaign_record(row.map_err(unavailable)?)?);
                }
                let more = campaigns.len() > limit;
                campaigns.truncate(limit);
                let next = if more { campaigns.last().map(CampaignCursor::of) } else { None };
                Ok(CampaignPage { campaigns, next })
            })
            .await
    }

    async fn transition(&self, id: &CampaignId, from: CampaignStatus, to: CampaignStatus) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE campaigns SET status = ?3 WHERE campaign_id = ?1 AND status = ?2",
                    params![id, from.as_str(), to.as_str()],
                )
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    async fn save_shard(&self, id: &CampaignId, progress: &ShardProgress) -> Result<(), StoreError> {
        let (id, shard, json) =
            (id.to_string(), progress.shard, serde_json::to_string(progress).expect("progress serializes"));
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO campaign_shards (campaign_id, shard, progress) VALUES (?1, ?2, ?3)
                     ON CONFLICT (campaign_id, shard) DO UPDATE SET progress = excluded.progress",
                    params![id, shard, json],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn shards(&self, id: &CampaignId) -> Result<Vec<ShardProgress>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT progress FROM campaign_shards WHERE campaign_id = ?1 ORDER BY shard")
                    .map_err(unavailable)?;
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0)).map_err(unavailable)?;
                rows.map(|r| {
                    let json = r.map_err(unavailable)?;
                    serde_json::from_str(&json).map_err(|e| StoreError::corrupt_from("shard progress", e))
                })
                .collect()
            })
            .await
    }

    async fn increment(&self, id: &CampaignId, counter: CampaignCounter, by: u64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO campaign_counters (campaign_id, counter, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (campaign_id, counter) DO UPDATE SET value = value + excluded.value",
                    params![id, counter.as_str(), by as i64],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn counters(&self, id: &CampaignId) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT counter, value FROM campaign_counters WHERE campaign_id = ?1")
                    .map_err(unavailable)?;
                let rows =
                    stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(unavailable)?;
                rows.map(|r| {
                    let (name, value) = r.map_err(unavailable)?;
                    let counter = CampaignCounter::parse(&name)
                        .ok_or_else(|| StoreError::corrupt(format!("counter '{name}'")))?;
                    Ok((counter, value as u64))
                })
                .collect()
            })
            .await
    }

    async fn pause(&self, id: &CampaignId, reason: &str) -> Result<bool, StoreError> {
        let (id, reason) = (id.to_string(), reason.to_owned());
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let moved = tx
                    .execute(
                        "UPDATE campaigns SET status = 'paused'
                         WHERE campaign_id = ?1 AND status IN ('fanning_out', 'sending')",
                        [&id],
                    )
                    .map_err(unavailable)?;
                if moved == 1 {
                    tx.execute(
                        "INSERT INTO campaign_pauses (campaign_id, reason, paused_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (campaign_id) DO UPDATE SET reason = excluded.reason, paused_at = excluded.paused_at",
                        params![id, reason, unix(time::OffsetDateTime::now_utc())],
                    )
                    .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)?;
                Ok(moved == 1)
            })
            .await
    }

    async fn increment_window(
        &self,
        id: &CampaignId,
        counter: CampaignCounter,
        bucket: i64,
        by: u64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO campaign_windows (campaign_id, counter, bucket, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (campaign_id, counter, bucket) DO UPDATE SET value = value + excluded.value",
                    params![id, counter.as_str(), bucket, by as i64],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn window(
        &self,
        id: &CampaignId,
        counters: &[CampaignCounter],
        from_bucket: i64,
    ) -> Result<Vec<(CampaignCounter, u64)>, StoreError> {
        let wanted = counters.to_vec();
        let rows = self.window_buckets(id).await?;
        let mut totals: Vec<(CampaignCounter, u64)> = Vec::new();
        for (bucket, counter, value) in rows {
            if bucket < from_bucket || !wanted.contains(&counter) {
                continue;
            }
            match totals.iter_mut().find(|(c, _)| *c == counter) {
                Some((_, total)) => *total += value,
                None => totals.push((counter, value)),
            }
        }
        Ok(totals)
    }

    async fn window_buckets(&self, id: &CampaignId) -> Result<Vec<(i64, CampaignCounter, u64)>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT bucket, counter, value FROM campaign_windows
                         WHERE campaign_id = ?1 AND value > 0 ORDER BY bucket, counter",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                    .map_err(unavailable)?;
                rows.map(|row| {
                    let (bucket, name, value) = row.map_err(unavailable)?;
                    let counter = CampaignCounter::parse(&name)
                        .ok_or_else(|| StoreError::corrupt(format!("campaign counter '{name}'")))?;
                    Ok((bucket, counter, value as u64))
                })
                .collect()
            })
            .await
    }
}
