//! Fixtures shared by the suites: a fresh embedded database, a fixed clock
//! reading and unique names, so suites never depend on each other's rows.

use carepost::adapters::embedded::Db;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// A whole-second instant: stores may keep timestamps to the second only.
pub const T0: OffsetDateTime = datetime!(2030-01-07 09:00:00 UTC);

/// A database file in its own temporary directory, removed on drop.
pub struct Scratch {
    pub dir: TempDir,
    pub db: Db,
}

const DB_FILE: &str = "carepost.db";

pub fn scratch() -> Scratch {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Db::open(&dir.path().join(DB_FILE)).expect("database opens");
    Scratch { dir, db }
}

impl Scratch {
    /// A second, independent connection to the same database file, as after a restart.
    pub fn reopen(&self) -> Db {
        Db::open(&self.dir.path().join(DB_FILE)).expect("database reopens")
    }
}

/// A name no other test uses: `<prefix>-<32 hex digits>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh blind index (of the indexer's shape: 64 lower-case hex digits).
pub fn unique_index() -> carepost::domain::BlindIndex {
    let hex = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    carepost::domain::BlindIndex::from_stored(hex).expect("two simple UUIDs are 64 hex digits")
}
