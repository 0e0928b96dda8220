use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, unavailable};
use crate::ports::{SecretStore, StoreError};

pub struct SqliteSecretStore {
    db: Db,
}

impl SqliteSecretStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SecretStore for SqliteSecretStore {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.db
            .call(move |c| {
                c.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)
            })
            .await
    }

    async fn put_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.db
            .call(move |c| {
                c.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)", params![name, value])
                    .map_err(unavailable)?;
                c.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| r.get(0)).map_err(unavailable)
            })
            .await
    }
}
