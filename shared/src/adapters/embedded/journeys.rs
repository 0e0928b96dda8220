//! Journeys in SQLite: `journeys` (status and latest version),
//! `journey_versions` (each definition) and `journey_enrolments` (one row
//! per journey and contact, with a partial index on `due_at` that the
//! timer sweep reads; an exited row has none), and `journey_events` (one
//! row per contact, time and event name), and `journey_entry` (per
//! journey: its entry scan, as text with its revision apart, and how many
//! contacts entered, for its cap).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::journey::walk::{ExitReason, Position};
use crate::domain::journey::{EventName, StepId};
use crate::domain::{ContactId, JourneyId};
use crate::ports::{
    Enrolment, EntryScan, JourneyRecord, JourneyStatus, JourneyStore, Standing, StoreError, path_from_text,
    path_to_text, sent_from_text, sent_to_text,
};

pub struct SqliteJourneyStore {
    db: Db,
}

impl SqliteJourneyStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const JOURNEY: &str = "SELECT j.journey_id, j.version, j.status, j.created_at, v.definition FROM journeys j \
                       JOIN journey_versions v ON v.journey_id = j.journey_id AND v.version = j.version";

fn journey(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, u32, String, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn to_record(
    (id, version, status, created_at, definition): (String, u32, String, i64, String),
) -> Result<JourneyRecord, StoreError> {
    Ok(JourneyRecord {
        id: JourneyId::parse(&id).map_err(|_| StoreError::corrupt("journeys.journey_id"))?,
        version,
        definition,
        status: JourneyStatus::parse(&status).ok_or_else(|| StoreError::corrupt("journeys.status"))?,
        created_at: from_unix(created_at),
    })
}

const ENROLMENT: &str = "SELECT journey_id, contact_id, version, entered_at, step, arrived_at, due_at, exit_reason, \
                         exited_at, sent, revision, path FROM journey_enrolments";

type EnrolmentRow =
    (String, String, u32, i64, String, i64, Option<i64>, Option<String>, Option<i64>, String, u32, String);

fn enrolment_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EnrolmentRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

fn to_enrolment(row: EnrolmentRow) -> Result<Enrolment, StoreError> {
    let (journey, contact, version, entered_at, step, arrived_at, due_at, reason, exited_at, sent, revision, path) =
        row;
    let corrupt = |what: &str| StoreError::corrupt(format!("journey_enrolments.{what}"));
    let step = StepId::parse(&step).ok_or_else(|| corrupt("step"))?;
    let standing = match (due_at, reason, exited_at) {
        (Some(due_at), None, None) => Standing::Active {
            position: Position { step, arrived_at: from_unix(arrived_at) },
            due_at: from_unix(due_at),
        },
        (None, Some(reason), Some(at)) => Standing::Exited {
            from: step,
            reason: ExitReason::parse(&reason).ok_or_else(|| corrupt("exit_reason"))?,
            at: from_unix(at),
        },
        _ => return Err(corrupt("due_at")),
    };
    Ok(Enrolment {
        journey: JourneyId::parse(&journey).map_err(|_| corrupt("journey_id"))?,
        contact: ContactId::parse(&contact).map_err(|_| corrupt("contact_id"))?,
        version,
        entered_at: from_unix(entered_at),
        standing,
        sent: sent_from_text(&sent)?,
        path: path_from_text(&path)?,
        revision,
    })
}

/// version, entered_at, step, arrived_at, due_at, exit_reason, exited_at, sent.
/// The columns an enrolment write sets, `?1` to `?10` (keys first).
struct Columns {
    journey: String,
    contact: String,
    version: u32,
    entered_at: i64,
    step: String,
    arrived_at: i64,
    due_at: Option<i64>,
    reason: Option<&'static str>,
    exited_at: Option<i64>,
    sent: String,
    path: String,
}

impl Columns {
    fn of(e: &Enrolment) -> Columns {
        let (step, arrived_at, due_at, reason, exited_at) = match &e.standing {
            Standing::Active { position, due_at } => {
                (position.step.as_str().to_owned(), unix(position.arrived_at), Some(unix(*due_at)), None, None)
            }
            Standing::Exited { from, reason, at } => {
                (from.as_str().to_owned(), unix(*at), None, Some(reason.as_str()), Some(unix(*at)))
            }
        };
        Columns {
            journey: e.journey.to_string(),
            contact: e.contact.to_string(),
            version: e.version,
            entered_at: unix(e.entered_at),
            step,
            arrived_at,
            due_at,
            reason,
            exited_at,
            sent: sent_to_text(&e.sent),
            path: path_to_text(&e.path),
        }
    }

    /// The ten columns, then `last` as `?11`, then the path as `?12`.
    fn with<'a>(&'a self, last: &'a dyn rusqlite::ToSql) -> [&'a dyn rusqlite::ToSql; 12] {
        [
            &self.journey,
            &self.contact,
            &self.version,
            &self.entered_at,
            &self.step,
            &self.arrived_at,
            &self.due_at,
            &self.reason,
            &self.exited_at,
            &self.sent,
            last,
            &self.path,
        ]
    }
}

#[async_trait]
impl JourneyStore for SqliteJourneyStore {
    async fn create(&self, record: &JourneyRecord) -> Result<bool, StoreError> {
        let r = record.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let added = tx
                    .execute(
                        "INSERT OR IGNORE INTO journeys (journey_id, version, status, created_at) VALUES (?1, 1, ?2, ?3)",
                        params![r.id.to_string(), r.status.as_str(), unix(r.created_at)],
                    )
                    .map_err(unavailable)?;
                if added == 1 {
                    tx.execute(
                        "INSERT INTO journey_versions (journey_id, version, definition) VALUES (?1, 1, ?2)",
                        params![r.id.to_string(), r.definition],
                    )
                    .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)?;
                Ok(added == 1)
            })
            .await
    }

    async fn get(&self, id: &JourneyId) -> Result<Option<JourneyRecord>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let row = c
                    .query_row(&format!("{JOURNEY} WHERE j.journey_id = ?1"), params![id], journey)
                    .optional()
                    .map_err(unavailable)?;
                row.map(to_record).transpose()
            })
            .await
    }

    async fn version(&self, id: &JourneyId, version: u32) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT definition FROM journey_versions WHERE journey_id = ?1 AND version = ?2",
                    params![id, version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await
    }

    async fn add_version(&self, id: &JourneyId, latest: u32, definition: &str) -> Result<bool, StoreError> {
        let (id, definition) = (id.to_string(), definition.to_owned());
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let moved = tx
                    .execute(
                        "UPDATE journeys SET version = ?2 + 1 WHERE journey_id = ?1 AND version = ?2",
                        params![id, latest],
                    )
                    .map_err(unavailable)?;
                if moved == 1 {
                    tx.execute(
                        "INSERT INTO journey_versions (journey_id, version, definition) VALUES (?1, ?2 + 1, ?3)",
                        params![id, latest, definition],
                    )
                    .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)?;
                Ok(moved == 1)
            })
            .await
    }

    async fn list(&self) -> Result<Vec<JourneyRecord>, StoreError> {
        self.db
            .call(|c| {
                let mut statement =
                    c.prepare(&format!("{JOURNEY} ORDER BY j.created_at, j.journey_id")).map_err(unavailable)?;
                let rows = statement.query_map([], journey).map_err(unavailable)?;
                rows.map(|row| to_record(row.map_err(unavailable)?)).collect()
            })
            .await
    }

    async fn transition(&self, id: &JourneyId, from: JourneyStatus, to: JourneyStatus) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                let changed = c
                    .execute(
                        "UPDATE journeys SET status = ?3 WHERE journey_id = ?1 AND status = ?2",
                        params![id, from.as_str(), to.as_str()],
                    )
                    .map_err(unavailable)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn enrol(&self, enrolment: &Enrolment, reenter_before: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let e = enrolment.clone();
        self.db
            .call(move |c| {
                let columns = Columns::of(&e);
                // A first enrolment, or the replacement of one that exited
                // early enough: one statement, so two entries cannot both win.
                let written = c
                    .execute(
                        "INSERT INTO journey_enrolments (journey_id, contact_id, version, entered_at, step, arrived_at, \
                         due_at, exit_reason, exited_at, sent, revision, path) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?12) \
                         ON CONFLICT (journey_id, contact_id) DO UPDATE SET version = excluded.version, \
                         entered_at = excluded.entered_at, step = excluded.step, arrived_at = excluded.arrived_at, \
                         due_at = excluded.due_at, exit_reason = excluded.exit_reason, exited_at = excluded.exited_at, \
                         sent = excluded.sent, path = excluded.path, revision = journey_enrolments.revision + 1 \
                         WHERE journey_enrolments.exited_at IS NOT NULL AND journey_enrolments.exited_at <= ?11",
                        columns.with(&reenter_before.map(unix)).as_slice(),
                    )
                    .map_err(unavailable)?;
                Ok(written == 1)
            })
            .await
    }

    async fn enrolment(&self, journey: &JourneyId, contact: &ContactId) -> Result<Option<Enrolment>, StoreError> {
        let (journey, contact) = (journey.to_string(), contact.to_string());
        self.db
            .call(move |c| {
                let row = c
                    .query_row(
                        &format!("{ENROLMENT} WHERE journey_id = ?1 AND contact_id = ?2"),
                        params![journey, contact],
                        enrolment_row,
                    )
                    .optional()
                    .map_err(unavailable)?;
                row.map(to_enrolment).transpose()
            })
            .await
    }

    async fn advance(&self, next: &Enrolment) -> Result<bool, StoreError> {
        let e = next.clone();
        let Some(read) = e.revision.checked_sub(1) else { return Ok(false) };
        self.db
            .call(move |c| {
                let columns = Columns::of(&e);
                let written = c
                    .execute(
                        "UPDATE journey_enrolments SET version = ?3, entered_at = ?4, step = ?5, arrived_at = ?6, \
                         due_at = ?7, exit_reason = ?8, exited_at = ?9, sent = ?10, path = ?12, revision = ?11 + 1 \
                         WHERE journey_id = ?1 AND contact_id = ?2 AND revision = ?11",
                        columns.with(&read).as_slice(),
                    )
                    .map_err(unavailable)?;
                Ok(written == 1)
            })
            .await
    }

    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Enrolment>, StoreError> {
        self.db
            .call(move |c| {
                let mut statement = c
                    .prepare(&format!(
                        "{ENROLMENT} WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at, journey_id, contact_id \
                         LIMIT ?2"
                    ))
                    .map_err(unavailable)?;
                let rows = statement.query_map(params![unix(now), limit as i64], enrolment_row).map_err(unavailable)?;
                rows.map(|row| to_enrolment(row.map_err(unavailable)?)).collect()
            })
            .await
    }

    async fn enrolments(&self, journey: &JourneyId) -> Result<Vec<Enrolment>, StoreError> {
        let journey = journey.to_string();
        self.db
            .call(move |c| {
                let mut statement = c
                    .prepare(&format!("{ENROLMENT} WHERE journey_id = ?1 ORDER BY contact_id"))
                    .map_err(unavailable)?;
                let rows = statement.query_map(params![journey], enrolment_row).map_err(unavailable)?;
                rows.map(|row| to_enrolment(row.map_err(unavailable)?)).collect()
            })
            .await
    }

    async fn entry_scan(&self, journey: &JourneyId) -> Result<Option<EntryScan>, StoreError> {
        let journey = journey.to_string();
        self.db
            .call(move |c| {
                let row: Option<(String, u32)> = c
                    .query_row(
                        "SELECT scan, scan_revision FROM journey_entry WHERE journey_id = ?1 AND scan IS NOT NULL",
                        params![journey],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(unavailable)?;
                row.map(|(text, revision)| EntryScan::from_text(&text, revision)).transpose()
            })
            .await
    }

    async fn save_entry_scan(&self, journey: &JourneyId, next: &EntryScan) -> Result<bool, StoreError> {
        let (journey, text, revision) = (journey.to_string(), next.to_text(), next.revision);
        self.db
            .call(move |c| {
                // Revision 0 only where no scan is stored; any other only over the one read.
                let written = match revision.checked_sub(1) {
                    None => c.execute(
                        "INSERT INTO journey_entry (journey_id, scan, scan_revision) VALUES (?1, ?2, 0) \
                         ON CONFLICT (journey_id) DO UPDATE SET scan = excluded.scan, scan_revision = 0 \
                         WHERE journey_entry.scan_revision IS NULL",
                        params![journey, text],
                    ),
                    Some(read) => c.execute(
                        "UPDATE journey_entry SET scan = ?2, scan_revision = ?3 + 1 \
                         WHERE journey_id = ?1 AND scan_revision = ?3",
                        params![journey, text, read],
                    ),
                };
                Ok(written.map_err(unavailable)? == 1)
            })
            .await
    }

    async fn take_entry_slot(&self, journey: &JourneyId, cap: u32) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        let journey = journey.to_string();
        self.db
            .call(move |c| {
                let written = c
                    .execute(
                        "INSERT INTO journey_entry (journey_id, entered) VALUES (?1, 1) \
                         ON CONFLICT (journey_id) DO UPDATE SET entered = journey_entry.entered + 1 \
                         WHERE journey_entry.entered < ?2",
                        params![journey, cap],
                    )
                    .map_err(unavailable)?;
                Ok(written == 1)
            })
            .await
    }

    async fn release_entry_slot(&self, journey: &JourneyId) -> Result<(), StoreError> {
        let journey = journey.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE journey_entry SET entered = entered - 1 WHERE journey_id = ?1 AND entered > 0",
                    params![journey],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn record_event(&self, contact: &ContactId, name: &EventName, at: OffsetDateTime) -> Result<(), StoreError> {
        let (contact, name, at) = (contact.to_string(), name.as_str().to_owned(), unix(at));
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO journey_events (contact_id, at, name) VALUES (?1, ?2, ?3)",
                    params![contact, at, name],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn events_of(&self, contact: &ContactId) -> Result<Vec<(EventName, OffsetDateTime)>, StoreError> {
        let contact = contact.to_string();
        self.db
            .call(move |c| {
                let mut statement = c
                    .prepare("SELECT name, at FROM journey_events WHERE contact_id = ?1 ORDER BY at, name")
                    .map_err(unavailable)?;
                let rows = statement
                    .query_map(params![contact], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
                    .map_err(unavailable)?;
                rows.map(|row| {
                    let (name, at) = row.map_err(unavailable)?;
                    let name = EventName::parse(&name).ok_or_else(|| StoreError::corrupt("journey_events.name"))?;
                    Ok((name, from_unix(at)))
                })
                .collect()
            })
            .await
    }
}
