use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{ConsentCategory, ConsentEntry, ConsentGrant, ConsentStatus, ContactId, GENESIS_HASH};
use crate::ports::{ConsentStore, StoreError};

pub struct SqliteConsentStore {
    db: Db,
}

impl SqliteConsentStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn decode(json: String) -> Result<ConsentEntry, StoreError> {
    serde_json::from_str(&json).map_err(|e| StoreError::corrupt_from("consent entry", e))
}

#[async_trait]
impl ConsentStore for SqliteConsentStore {
    async fn head(&self, contact: &ContactId) -> Result<Option<ConsentEntry>, StoreError> {
        let key = contact.to_string();
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT entry FROM consent_ledger WHERE contact_id = ?1 ORDER BY seq DESC LIMIT 1",
                    [key],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(unavailable)?
                .map(decode)
                .transpose()
            })
            .await
    }

    async fn append(&self, entry: &ConsentEntry, new_status: ConsentStatus) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let contact = entry.evidence.contact_id.to_string();
                let head: Option<String> = tx
                    .query_row(
                        "SELECT entry FROM consent_ledger WHERE contact_id = ?1 ORDER BY seq DESC LIMIT 1",
                        [&contact],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                let (head_seq, head_hash) = match head.map(decode).transpose()? {
                    Some(h) => (h.seq, h.hash),
                    None => (0, GENESIS_HASH.to_owned()),
                };
                // Append-only and chained: the entry must link to the current head.
                if entry.seq != head_seq + 1 || entry.prev_hash != head_hash {
                    return Err(StoreError::conflict("consent ledger head moved"));
                }
                let json = serde_json::to_string(&entry).expect("entry serializes");
                tx.execute(
                    "INSERT INTO consent_ledger (contact_id, seq, entry) VALUES (?1, ?2, ?3)",
                    params![contact, entry.seq as i64, json],
                )
                .map_err(unavailable)?;
                for category in &entry.evidence.categories {
                    tx.execute(
                        "INSERT INTO consent_state (contact_id, category, status, updated_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (contact_id, category) DO UPDATE SET status = excluded.status,
                            updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                        params![
                            contact,
                            category.as_str(),
                            new_status.as_str(),
                            unix(entry.evidence.at),
                            entry.evidence.expires_at.map(unix)
                        ],
                    )
                    .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)
            })
            .await
    }

    async fn grants(&self, contact: &ContactId) -> Result<Vec<ConsentGrant>, StoreError> {
        Ok(self.state_of(std::slice::from_ref(contact), None).await?.remove(contact).unwrap_or_default())
    }

    async fn grants_of(
        &self,
        contacts: &[ContactId],
        categories: &[ConsentCategory],
    ) -> Result<HashMap<ContactId, Vec<ConsentGrant>>, StoreError> {
        self.state_of(contacts, Some(categories)).await
    }

    async fn history(&self, contact: &ContactId) -> Result<Vec<ConsentEntry>, StoreError> {
        let key = contact.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT entry FROM consent_ledger WHERE contact_id = ?1 ORDER BY seq")
                    .map_err(unavailable)?;
                let rows = stmt.query_map([key], |r| r.get::<_, String>(0)).map_err(unavailable)?;
                rows.map(|r| r.map_err(unavailable).and_then(decode)).collect()
            })
            .await
    }
}

impl SqliteConsentStore {
    /// The consent state of each of `contacts`, in `categories` if given.
    async fn state_of(
        &self,
        contacts: &[ContactId],
        categories: Option<&[ConsentCategory]>,
    ) -> Result<HashMap<ContactId, Vec<ConsentGrant>>, StoreError> {
        if contacts.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<String> = contacts.iter().map(ToString::to_string).collect();
        let categories: Option<Vec<ConsentCategory>> = categories.map(<[_]>::to_vec);
        self.db
            .call(move |c| {
                let sql = format!(
                    "SELECT contact_id, category, status, updated_at, expires_at FROM consent_state
                     WHERE contact_id IN ({}) ORDER BY contact_id, category",
                    vec!["?"; keys.len()].join(",")
                );
                // Cached: pages are mostly full, so the same placeholder count recurs.
                let mut stmt = c.prepare_cached(&sql).map_err(unavailable)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(keys.iter()), |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    })
                    .map_err(unavailable)?;
                let mut out: HashMap<ContactId, Vec<ConsentGrant>> = HashMap::new();
                for row in rows {
                    let (contact, category, status, updated, expires) = row.map_err(unavailable)?;
                    let contact = ContactId::parse(&contact)
                        .map_err(|e| StoreError::corrupt_from("consent_state.contact_id", e))?;
                    let category = ConsentCategory::parse(&category)
                        .map_err(|e| StoreError::corrupt_from("consent_state.category", e))?;
                    if categories.as_ref().is_some_and(|wanted| !wanted.contains(&category)) {
                        continue;
                    }
                    out.entry(contact).or_default().push(ConsentGrant {
                        category,
                        status: ConsentStatus::parse(&status)
                            .ok_or_else(|| StoreError::corrupt(format!("consent status '{status}'")))?,
                        updated_at: from_unix(updated),
                        expires_at: expires.map(from_unix),
                    });
                }
                Ok(out)
            })
            .await
    }
}
