//! One SQLite file holds every embedded table and queue. Calls run on the
//! blocking pool so a slow disk never stalls the async workers.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::domain::BlindIndex;
use crate::ports::StoreError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_ledger (
    contact_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    entry      TEXT NOT NULL,
    PRIMARY KEY (contact_id, seq)
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
CREATE INDEX IF NOT EXISTS campaigns_newest ON campaigns (created_at, campaign_id);
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
CREATE TABLE IF NOT EXISTS ledger_domain (
    campaign_id TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    domain      TEXT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE TABLE IF NOT EXISTS ledger_delivery (
    campaign_id    TEXT NOT NULL,
    contact_id     TEXT NOT NULL,
    state          TEXT,
    rank           INTEGER NOT NULL DEFAULT 0,
    bounce_subtype TEXT,
    delay_type     TEXT,
    PRIMARY KEY (campaign_id, contact_id)
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
CREATE TABLE IF NOT EXISTS secure_messages (
    campaign_id     TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    sealed          BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    notice_sent     INTEGER NOT NULL DEFAULT 0,
    code_hash       TEXT,
    code_expires_at INTEGER,
    codes_issued    TEXT NOT NULL DEFAULT '[]',
    failures        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE TABLE IF NOT EXISTS tls_gaps (
    domain     TEXT PRIMARY KEY,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS marketing_sends (
    contact_id  TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (contact_id, campaign_id)
);
CREATE TABLE IF NOT EXISTS confirmation_slots (
    contact_id  TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    claimed_at  INTEGER NOT NULL,
    handed_over INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_intake (
    intake_id      TEXT PRIMARY KEY,
    form_id        TEXT NOT NULL,
    candidate      TEXT NOT NULL,
    sealed_contact BLOB NOT NULL,
    sealed_request BLOB NOT NULL,
    received_at    INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS request_counts (
    limit_key    TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (limit_key, window_start)
);
CREATE TABLE IF NOT EXISTS journeys (
    journey_id TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journey_versions (
    journey_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (journey_id, version)
);
CREATE TABLE IF NOT EXISTS journey_enrolments (
    journey_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    step       TEXT NOT NULL,
    arrived_at INTEGER NOT NULL,
    due_at     INTEGER,
    exit_reason TEXT,
    exited_at  INTEGER,
    sent       TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    path       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (journey_id, contact_id)
);
CREATE INDEX IF NOT EXISTS journey_enrolments_due ON journey_enrolments (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS journey_entry (
    journey_id    TEXT PRIMARY KEY,
    scan          TEXT,
    scan_revision INTEGER,
    entered       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS journey_events (
    contact_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (contact_id, at, name)
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

/// Tables fan-out reads in primary-key order, stored clustered by that key
/// (`WITHOUT ROWID`): a shard's page is then a run of neighbouring pages of
/// the file, not one random page read per contact (contact IDs are random,
/// so rowid order is not key order). Column order matches the tables before
/// they were clustered, which `cluster_by_primary_key` copies from.
const CLUSTERED: &[(&str, &str, &str)] = &[
    (
        "contacts",
        "contact_id",
        r#"CREATE TABLE IF NOT EXISTS contacts (
    contact_id  TEXT PRIMARY KEY,
    external_id TEXT UNIQUE,
    email_index TEXT NOT NULL UNIQUE,
    bucket      INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;"#,
    ),
    (
        "consent_state",
        "contact_id, category",
        r#"CREATE TABLE IF NOT EXISTS consent_state (
    contact_id TEXT NOT NULL,
    category   TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (contact_id, category)
) WITHOUT ROWID;"#,
    ),
];

/// Creates the clustered tables, or rebuilds a file's older rowid tables as
/// clustered ones (once, in one transaction per table; copied in key order,
/// which appends: 500,000 contacts in about 12 s here).
fn cluster_by_primary_key(conn: &mut Connection) -> rusqlite::Result<()> {
    for (table, key, ddl) in CLUSTERED {
        let existing: Option<String> = conn
            .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
            .optional()?;
        match existing {
            None => conn.execute_batch(ddl)?,
            Some(sql) if sql.contains("WITHOUT ROWID") => {}
            Some(_) => {
                let tx = conn.transaction()?;
                tx.execute_batch(&format!("ALTER TABLE {table} RENAME TO {table}_rowid;"))?;
                tx.execute_batch(ddl)?;
                tx.execute_batch(&format!(
                    "INSERT INTO {table} SELECT * FROM {table}_rowid ORDER BY {key}; DROP TABLE {table}_rowid;"
                ))?;
                tx.commit()?;
            }
        }
    }
    Ok(())
}

/// Columns added since a table was first shipped: (table, column, its
/// definition). A file made before gets them once, at open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("journey_enrolments", "path", "TEXT NOT NULL DEFAULT ''")];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition};"))?;
        }
    }
    Ok(())
}

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// A failed database call, keeping `e` as the source. The display names
/// SQLite's result code only: rusqlite's own text can quote the statement's
/// values (a constraint failure names the column and may carry a blind index).
pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    let context = match (&e as &(dyn std::error::Error + 'static)).downcast_ref::<rusqlite::Error>() {
        Some(sql) => match sql.sqlite_error_code() {
            Some(code) => format!("sqlite: {code:?}"),
            None => "sqlite: the call failed".to_owned(),
        },
        None => "embedded database: the call failed".to_owned(),
    };
    StoreError::unavailable(context, e)
}

/// A stored blind index, checked for its shape.
pub(crate) fn stored_index(column: &str, value: String) -> Result<BlindIndex, StoreError> {
    BlindIndex::from_stored(value).map_err(|e| StoreError::corrupt_from(format!("{column} is not a blind index"), e))
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
        let mut conn = Connection::open(path).map_err(unavailable)?;
        // synchronous = FULL: a commit (a ledger settle) survives power loss;
        // docs/architecture.md, "Durability of the embedded store".
        // secure_delete zeroes freed pages, so deleted queue rows and replaced
        // ciphertexts leave no residue in the file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;
             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        cluster_by_primary_key(&mut conn).map_err(unavailable)?;
        add_missing_columns(&conn).map_err(unavailable)?;
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
            let mut guard = conn.lock().map_err(|_| StoreError::unavailable_msg("database lock poisoned"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table_sql(conn: &Connection, table: &str) -> String {
        conn.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_file_with_rowid_tables_is_reopened_clustered_with_every_row_and_constraint_kept() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("old.sqlite3");
        {
            let old = Connection::open(&path)?;
            for (_, _, ddl) in CLUSTERED {
                old.execute_batch(&ddl.replace(" WITHOUT ROWID", ""))?;
            }
            old.execute_batch(
                "INSERT INTO contacts VALUES ('b', NULL, 'idx-b', 2, x'0102', 20), ('a', 'ext-a', 'idx-a', 1, x'03', 10);
                 INSERT INTO consent_state VALUES ('a', 'news', 'active', 10, NULL), ('a', 'tips', 'withdrawn', 11, 99);",
            )?;
        }

        let db = Db::open(&path)?;

        let conn = db.conn.lock().unwrap();
        assert!(table_sql(&conn, "contacts").contains("WITHOUT ROWID"));
        assert!(table_sql(&conn, "consent_state").contains("WITHOUT ROWID"));
        let leftovers: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_rowid'", [], |r| r.get(0))?;
        assert_eq!(leftovers, 0);
        let contacts: Vec<(String, Option<String>, Vec<u8>, i64)> = conn
            .prepare("SELECT contact_id, external_id, sealed, updated_at FROM contacts ORDER BY contact_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        assert_eq!(contacts, vec![("a".into(), Some("ext-a".into()), vec![3], 10), ("b".into(), None, vec![1, 2], 20)]);
        let states: i64 =
            conn.query_row("SELECT count(*) FROM consent_state WHERE contact_id = 'a'", [], |r| r.get(0))?;
        assert_eq!(states, 2);
        let duplicate_index = conn.execute("INSERT INTO contacts VALUES ('c', NULL, 'idx-a', 3, x'00', 30)", []);
        assert!(duplicate_index.is_err(), "the email index stays unique");
        Ok(())
    }

    #[test]
    fn a_file_from_before_a_column_was_added_gets_it_and_keeps_its_rows() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("old.sqlite3");
        {
            let old = Connection::open(&path)?;
            old.execute_batch(
                "CREATE TABLE journey_enrolments (journey_id TEXT NOT NULL, contact_id TEXT NOT NULL,
                   version INTEGER NOT NULL, entered_at INTEGER NOT NULL, step TEXT NOT NULL,
                   arrived_at INTEGER NOT NULL, due_at INTEGER, exit_reason TEXT, exited_at INTEGER,
                   sent TEXT NOT NULL, revision INTEGER NOT NULL, PRIMARY KEY (journey_id, contact_id));
                 INSERT INTO journey_enrolments VALUES ('j', 'c', 1, 10, 'welcome', 10, 20, NULL, NULL, '', 0);",
            )?;
        }

        let db = Db::open(&path)?;
        drop(db);
        let db = Db::open(&path)?;

        let path: String =
            db.conn.lock().unwrap().query_row("SELECT path FROM journey_enrolments", [], |r| r.get(0))?;
        assert_eq!(path, "", "the old row reads as having no path; reopening adds nothing twice");
        Ok(())
    }

    #[test]
    fn a_clustered_file_is_opened_as_it_is() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("new.sqlite3");
        Db::open(&path)?
            .conn
            .lock()
            .unwrap()
            .execute("INSERT INTO contacts VALUES ('a', NULL, 'i', 1, x'00', 1)", [])?;

        let db = Db::open(&path)?;

        let count: i64 = db.conn.lock().unwrap().query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
        assert_eq!(count, 1);
        Ok(())
    }
}
