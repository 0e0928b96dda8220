use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, unavailable};
use crate::domain::{AuditEntry, GENESIS_HASH};
use crate::ports::{AuditLog, StoreError};

/// The audit log in one SQLite table: the entry as JSON, keyed by sequence number.
pub struct SqliteAuditLog {
    db: Db,
}

impl SqliteAuditLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn parse(json: &str) -> Result<AuditEntry, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::corrupt_from("audit entry", e))
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let (seq, prev, hash) = (entry.seq, entry.prev_hash.clone(), entry.hash.clone());
        let json = serde_json::to_string(entry).expect("entry serializes");
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let head: Option<(u64, String)> = tx
                    .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(unavailable)?;
                let (last_seq, last_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
                if seq != last_seq + 1 || prev != last_hash {
                    return Err(StoreError::conflict("the audit log moved on; chain again"));
                }
                tx.execute("INSERT INTO audit_log (seq, hash, entry) VALUES (?1, ?2, ?3)", params![seq, hash, json])
                    .map_err(unavailable)?;
                tx.commit().map_err(unavailable)
            })
            .await
    }

    async fn last(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.db
            .call(|c| {
                let json: Option<String> = c
                    .query_row("SELECT entry FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)?;
                json.as_deref().map(parse).transpose()
            })
            .await
    }

    async fn entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT entry FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                    .map_err(unavailable)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = stmt.query_map(params![after, limit], |r| r.get::<_, String>(0)).map_err(unavailable)?;
                rows.map(|r| parse(&r.map_err(unavailable)?)).collect()
            })
            .await
    }
}
