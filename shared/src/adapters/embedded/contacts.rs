use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::db::{Db, from_unix, stored_index, unavailable, unix};
use crate::domain::{BlindIndex, ContactId, ExternalId};
use crate::ports::{ContactRecord, ContactStore, ScanPage, ShardSpec, StoreError};

pub struct SqliteContactStore {
    db: Db,
}

impl SqliteContactStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "contact_id, external_id, email_index, sealed, updated_at";

fn record(row: &Row<'_>) -> rusqlite::Result<Result<ContactRecord, StoreError>> {
    let id: String = row.get(0)?;
    let external: Option<String> = row.get(1)?;
    Ok((|| {
        Ok(ContactRecord {
            id: ContactId::parse(&id).map_err(|e| StoreError::corrupt_from("contacts.contact_id", e))?,
            external_id: external
                .map(|e| ExternalId::parse(&e))
                .transpose()
                .map_err(|e| StoreError::corrupt_from("contacts.external_id", e))?,
            email_index: stored_index("contacts.email_index", row.get(2).map_err(unavailable)?)?,
            sealed: row.get(3).map_err(unavailable)?,
            updated_at: from_unix(row.get(4).map_err(unavailable)?),
        })
    })())
}

fn one(c: &rusqlite::Connection, sql: &str, key: String) -> Result<Option<ContactRecord>, StoreError> {
    c.query_row(sql, [key], record).optional().map_err(unavailable)?.transpose()
}

#[async_trait]
impl ContactStore for SqliteContactStore {
    async fn put(&self, r: &ContactRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO contacts (contact_id, external_id, email_index, bucket, sealed, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (contact_id) DO UPDATE SET external_id = excluded.external_id,
                        email_index = excluded.email_index, sealed = excluded.sealed, updated_at = excluded.updated_at",
                    params![
                        r.id.to_string(),
                        r.external_id.as_ref().map(|e| e.as_str().to_owned()),
                        r.email_index.as_str(),
                        r.id.bucket(),
                        r.sealed,
                        unix(r.updated_at)
                    ],
                )
                .map(|_| ())
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::conflict("another contact holds this email or external id")
                    }
                    other => unavailable(other),
                })
            })
            .await
    }

    async fn get(&self, id: &ContactId) -> Result<Option<ContactRecord>, StoreError> {
        let key = id.to_string();
        self.db.call(move |c| one(c, &format!("SELECT {COLUMNS} FROM contacts WHERE contact_id = ?1"), key)).await
    }

    async fn find_by_email_index(&self, email_index: &BlindIndex) -> Result<Option<ContactRecord>, StoreError> {
        let key = email_index.as_str().to_owned();
        self.db.call(move |c| one(c, &format!("SELECT {COLUMNS} FROM contacts WHERE email_index = ?1"), key)).await
    }

    async fn find_by_external_id(&self, external_id: &ExternalId) -> Result<Option<ContactRecord>, StoreError> {
        let key = external_id.as_str().to_owned();
        self.db.call(move |c| one(c, &format!("SELECT {COLUMNS} FROM contacts WHERE external_id = ?1"), key)).await
    }

    async fn delete(&self, id: &ContactId) -> Result<bool, StoreError> {
        let key = id.to_string();
        // secure_delete is on: the freed page is zeroed, no ciphertext residue.
        self.db
            .call(move |c| {
                c.execute("DELETE FROM contacts WHERE contact_id = ?1", [key]).map(|n| n == 1).map_err(unavailable)
            })
            .await
    }

    async fn replace_sealed(&self, id: &ContactId, expected: &[u8], sealed: &[u8]) -> Result<bool, StoreError> {
        let (key, expected, sealed) = (id.to_string(), expected.to_vec(), sealed.to_vec());
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE contacts SET sealed = ?3 WHERE contact_id = ?1 AND sealed = ?2",
                    params![key, expected, sealed],
                )
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    /// Shard `i` of `n` holds the buckets `[i·65536/n, (i+1)·65536/n)`. A
    /// bucket is the contact ID's first two bytes, so a shard is a range of
    /// the primary key: each page is one index range read, whatever `n`.
    /// The cursor is the last contact ID.
    async fn scan_shard(&self, shard: ShardSpec, cursor: Option<&str>, limit: usize) -> Result<ScanPage, StoreError> {
        let total = u32::from(shard.total.max(1));
        let bound = |i: u32| {
            let bucket = i * 65_536 / total;
            // The hex of the bucket is how the contact ID's text starts; past the last bucket, "g" sorts after any hex.
            if bucket >= 65_536 { "g".to_owned() } else { format!("{bucket:04x}") }
        };
        let (low, high) = (bound(u32::from(shard.index)), bound(u32::from(shard.index) + 1));
        let after = cursor.unwrap_or_default().to_owned().max(low);
        let limit = limit.max(1);
        let records: Vec<ContactRecord> = self
            .db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM contacts WHERE contact_id > ?1 AND contact_id < ?2
                         ORDER BY contact_id LIMIT ?3"
                    ))
                    .map_err(unavailable)?;
                // One lower bound only, so SQLite seeks straight to it (with two it
                // may seek to the first and filter on the second, reading the
                // shard from its start on every page).
                let rows = stmt.query_map(params![after, high, limit as i64], record).map_err(unavailable)?;
                rows.map(|r| r.map_err(unavailable).and_then(|x| x)).collect()
            })
            .await?;
        let next = (records.len() == limit).then(|| records.last().map(|r| r.id.to_string())).flatten();
        Ok(ScanPage { records, next })
    }
}
