//! Consent intake in SQLite: waiting requests (`consent_intake`) and the
//! per-client request counts (`request_counts`), each row with an expiry the
//! sweeper honours.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{ContactId, IntakeId};
use crate::ports::{IntakeStore, LimitKey, LimitWindow, PendingIntake, StoreError};

pub struct SqliteIntakeStore {
    db: Db,
}

impl SqliteIntakeStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl IntakeStore for SqliteIntakeStore {
    async fn put_intake(&self, intake: &PendingIntake) -> Result<(), StoreError> {
        let i = intake.clone();
        self.db
            .call(move |c| {
                let inserted = c
                    .execute(
                        "INSERT INTO consent_intake
                           (intake_id, form_id, candidate, sealed_contact, sealed_request, received_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (intake_id) DO NOTHING",
                        params![
                            i.id.to_string(),
                            i.form_id,
                            i.candidate.to_string(),
                            i.sealed_contact,
                            i.sealed_request,
                            unix(i.received_at),
                            unix(i.expires_at)
                        ],
                    )
                    .map_err(unavailable)?;
                if inserted == 0 {
                    return Err(StoreError::Conflict("intake ID taken".into()));
                }
                Ok(())
            })
            .await
    }

    async fn intake(&self, id: &IntakeId, now: OffsetDateTime) -> Result<Option<PendingIntake>, StoreError> {
        let key = id.to_string();
        let id = *id;
        self.db
            .call(move |c| {
                let row = c
                    .query_row(
                        "SELECT form_id, candidate, sealed_contact, sealed_request, received_at, expires_at
                         FROM consent_intake WHERE intake_id = ?1 AND expires_at > ?2",
                        params![key, unix(now)],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Vec<u8>>(2)?,
                                r.get::<_, Vec<u8>>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, i64>(5)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(unavailable)?;
                let Some((form_id, candidate, sealed_contact, sealed_request, received_at, expires_at)) = row else {
                    return Ok(None);
                };
                let candidate =
                    ContactId::parse(&candidate).map_err(|e| StoreError::corrupt_from("intake candidate", e))?;
                Ok(Some(PendingIntake {
                    id,
                    form_id,
                    candidate,
                    sealed_contact,
                    sealed_request,
                    received_at: from_unix(received_at),
                    expires_at: from_unix(expires_at),
                }))
            })
            .await
    }

    async fn remove_intake(&self, id: &IntakeId) -> Result<(), StoreError> {
        let key = id.to_string();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM consent_intake WHERE intake_id = ?1", params![key]).map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn count_requests(&self, keys: &[LimitKey], window: LimitWindow) -> Result<Vec<u32>, StoreError> {
        let keys: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let mut counts = Vec::with_capacity(keys.len());
                for key in &keys {
                    let hits: u32 = tx
                        .query_row(
                            "INSERT INTO request_counts (limit_key, window_start, hits, expires_at)
                             VALUES (?1, ?2, 1, ?3)
                             ON CONFLICT (limit_key, window_start) DO UPDATE SET hits = hits + 1
                             RETURNING hits",
                            params![key, unix(window.start), unix(window.end)],
                            |r| r.get(0),
                        )
                        .map_err(unavailable)?;
                    counts.push(hits);
                }
                tx.commit().map_err(unavailable)?;
                Ok(counts)
            })
            .await
    }
}
