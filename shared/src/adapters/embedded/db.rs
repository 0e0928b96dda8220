//! One SQLite file holds every embedded table and queue. Calls run on the
//! blocking pool so a slow disk never stalls the async workers.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use time::OffsetDateTime;

use crate::ports::StoreError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    contact_id  TEXT PRIMARY KEY,
    external_id TEXT UNIQUE,
    email_index TEXT NOT NULL UNIQUE,
    bucket      INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_ledger (
    contact_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    entry      TEXT NOT NULL,
    PRIMARY KEY (contact_id, seq)
);
CREATE TABLE IF NOT EXISTS consent_state (
    contact_id TEXT NOT NULL,
    category   TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (contact_id, category)
);
CREATE TABLE IF NOT EXISTS suppression (
    email_index TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    status      TEXT NOT NULL,
    shards      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_shards (
    campaign_id TEXT NOT NULL,
    shard       INTEGER NOT NULL,
    progress    TEXT NOT NULL,
    PRIMARY KEY (campaign_id, shard)
);
CREATE TABLE IF NOT EXISTS ledger_events (
    campaign_id TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id, event)
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq   INTEGER PRIMARY KEY,
    hash  TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_pauses (
    campaign_id TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    paused_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_windows (
    campaign_id TEXT NOT NULL,
    counter     TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, counter, bucket)
);
CREATE TABLE IF NOT EXISTS campaign_counters (
    campaign_id TEXT NOT NULL,
    counter     TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, counter)
);
CREATE TABLE IF NOT EXISTS send_ledger (
    campaign_id         TEXT NOT NULL,
    contact_id          TEXT NOT NULL,
    state               TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    lease_until         INTEGER,
    provider_message_id TEXT,
    reason              TEXT,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX IF NOT EXISTS send_ledger_by_provider_id ON send_ledger (provider_message_id);
CREATE TABLE IF NOT EXISTS contact_activity (
    contact_id   TEXT PRIMARY KEY,
    last_open    INTEGER,
    last_click   INTEGER,
    last_confirmation INTEGER,
    soft_bounces TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS marketing_sends (
    contact_id  TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (contact_id, campaign_id)
);
CREATE TABLE IF NOT EXISTS queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at_ms);
"#;

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Db {
    /// Opens (creating if needed) the database file and its schema.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let conn = Connection::open(path).map_err(unavailable)?;
        // secure_delete zeroes freed pages, so deleted queue rows and replaced
        // ciphertexts leave no residue in the file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;
             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Db { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Unavailable("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(unavailable)?
    }

    /// Writes the WAL back into the main file (used before raw-byte scans and backups).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.call(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(unavailable)).await
    }
}
