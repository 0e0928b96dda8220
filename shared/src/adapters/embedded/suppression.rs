use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Db, stored_index, unavailable, unix};
use crate::domain::BlindIndex;
use crate::ports::{StoreError, SuppressionList, SuppressionReason};

pub struct SqliteSuppressionList {
    db: Db,
}

impl SqliteSuppressionList {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SuppressionList for SqliteSuppressionList {
    async fn suppress(&self, email_index: &BlindIndex, reason: SuppressionReason) -> Result<(), StoreError> {
        let key = email_index.as_str().to_owned();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO suppression (email_index, reason, created_at) VALUES (?1, ?2, ?3)",
                    params![key, reason.as_str(), unix(OffsetDateTime::now_utc())],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn reason(&self, email_index: &BlindIndex) -> Result<Option<SuppressionReason>, StoreError> {
        let key = email_index.as_str().to_owned();
        self.db
            .call(move |c| {
                let reason: Option<String> = c
                    .query_row("SELECT reason FROM suppression WHERE email_index = ?1", [key], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)?;
                reason
                    .map(|r| SuppressionReason::parse(&r).ok_or_else(|| StoreError::corrupt(format!("reason '{r}'"))))
                    .transpose()
            })
            .await
    }

    async fn suppressed_among(
        &self,
        indexes: &[BlindIndex],
    ) -> Result<std::collections::HashSet<BlindIndex>, StoreError> {
        if indexes.is_empty() {
            return Ok(Default::default());
        }
        let keys: Vec<String> = indexes.iter().map(|i| i.as_str().to_owned()).collect();
        self.db
            .call(move |c| {
                let sql = format!(
                    "SELECT email_index FROM suppression WHERE email_index IN ({})",
                    vec!["?"; keys.len()].join(",")
                );
                // Cached: pages are mostly full, so the same placeholder count recurs.
                let mut stmt = c.prepare_cached(&sql).map_err(unavailable)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(keys.iter()), |r| r.get(0)).map_err(unavailable)?;
                rows.map(|r| stored_index("suppression.email_index", r.map_err(unavailable)?)).collect()
            })
            .await
    }
}
