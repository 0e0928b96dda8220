//! A durable queue in the SQLite file with the SQS semantics the workers rely
//! on: at-least-once delivery, a visibility timeout, a receive count, and a
//! move to the dead-letter queue once a message has been received
//! `max_receive_count` times without being deleted.
//!
//! Visibility and delays are kept in the clock's time (`Clock`; the system
//! clock unless `with_clock` says otherwise), so tests move time forward
//! instead of sleeping. Long-poll waits are real waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::Db;
use crate::ports::{BodyFilter, Clock, Queue, QueueError, ReceivedMessage, StoreError, SystemClock};

/// The same knobs, with the same meaning, as the SAM template's queues.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// `VisibilityTimeoutSeconds`.
    pub visibility_timeout: Duration,
    /// `MaxReceiveCount`.
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(30), max_receive_count: 5 }
    }
}

pub struct SqliteQueue {
    db: Db,
    name: String,
    dead_letter_name: String,
    settings: QueueSettings,
    notify: tokio::sync::Notify,
    clock: Arc<dyn Clock>,
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn queue_error(e: StoreError) -> QueueError {
    QueueError::unavailable("embedded queue", e)
}

fn sql(e: rusqlite::Error) -> StoreError {
    super::db::unavailable(e)
}

impl SqliteQueue {
    pub fn new(db: Db, name: &str, settings: QueueSettings) -> Self {
        Self {
            db,
            name: name.to_owned(),
            dead_letter_name: format!("{name}-dlq"),
            settings,
            notify: tokio::sync::Notify::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same queue, keeping time by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        ms(self.clock.now())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bodies in this queue's dead-letter queue, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        let dlq = self.dead_letter_name.clone();
        self.db
            .call(move |c| {
                let mut stmt =
                    c.prepare("SELECT body FROM queue_messages WHERE queue = ?1 ORDER BY seq").map_err(sql)?;
                let rows = stmt.query_map([dlq], |r| r.get::<_, String>(0)).map_err(sql)?;
                rows.map(|r| r.map_err(sql)).collect()
            })
            .await
            .map_err(queue_error)
    }

    /// (seq, body) of every dead-lettered message `select` accepts.
    async fn dead_lettered_seqs(&self, select: &BodyFilter) -> Result<Vec<i64>, QueueError> {
        let dlq = self.dead_letter_name.clone();
        let rows: Vec<(i64, String)> = self
            .db
            .call(move |c| {
                let mut stmt =
                    c.prepare("SELECT seq, body FROM queue_messages WHERE queue = ?1 ORDER BY seq").map_err(sql)?;
                let rows = stmt.query_map([dlq], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql)?;
                rows.map(|r| r.map_err(sql)).collect()
            })
            .await
            .map_err(queue_error)?;
        Ok(rows.into_iter().filter(|(_, body)| select(body)).map(|(seq, _)| seq).collect())
    }

    async fn receive_now(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let (name, dlq) = (self.name.clone(), self.dead_letter_name.clone());
        let (settings, clock) = (self.settings, self.clock.clone());
        self.db
            .call(move |c| {
                let now = ms(clock.now());
                let tx = c.transaction().map_err(sql)?;
                // A visible message that has used up its receives goes to the
                // dead-letter queue instead of being handed out again.
                tx.execute(
                    "UPDATE queue_messages SET queue = ?2, receive_count = 0, receipt = NULL
                     WHERE queue = ?1 AND visible_at_ms <= ?3 AND receive_count >= ?4",
                    params![name, dlq, now, settings.max_receive_count],
                )
                .map_err(sql)?;
                let picked: Vec<(i64, String, String, u32)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT seq, message_id, body, receive_count FROM queue_messages
                             WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, seq LIMIT ?3",
                        )
                        .map_err(sql)?;
                    let rows = stmt
                        .query_map(params![name, now, max as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let visible_at = now + settings.visibility_timeout.as_millis() as i64;
                let mut out = Vec::with_capacity(picked.len());
                for (seq, message_id, body, count) in picked {
                    let receipt = format!("{seq}:{}", Uuid::new_v4());
                    tx.execute(
                        "UPDATE queue_messages SET visible_at_ms = ?2, receive_count = receive_count + 1, receipt = ?3
                         WHERE seq = ?1",
                        params![seq, visible_at, receipt],
                    )
                    .map_err(sql)?;
                    out.push(ReceivedMessage {
                        message_id,
                        body: body.into(),
                        receipt_handle: receipt,
                        receive_count: count + 1,
                    });
                }
                tx.commit().map_err(sql)?;
                Ok(out)
            })
            .await
            .map_err(queue_error)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), QueueError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let (name, bodies, clock) = (self.name.clone(), bodies.to_vec(), self.clock.clone());
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(sql)?;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT INTO queue_messages (queue, message_id, body, visible_at_ms) VALUES (?1, ?2, ?3, ?4)",
                        )
                        .map_err(sql)?;
                    let now = ms(clock.now());
                    for body in bodies {
                        stmt.execute(params![name, Uuid::new_v4().to_string(), body, now]).map_err(sql)?;
                    }
                }
                tx.commit().map_err(sql)
            })
            .await
            .map_err(queue_error)?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        let (name, body, clock) = (self.name.clone(), body.to_owned(), self.clock.clone());
        let delay_ms = delay.min(crate::ports::MAX_DELAY).as_millis() as i64;
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO queue_messages (queue, message_id, body, visible_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![name, Uuid::new_v4().to_string(), body, ms(clock.now()) + delay_ms],
                )
                .map(|_| ())
                .map_err(sql)
            })
            .await
            .map_err(queue_error)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.receive_now(max.clamp(1, 10_000)).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            // Woken early by a send; otherwise poll again for messages whose
            // visibility timeout ran out.
            let nap = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(nap, self.notify.notified()).await;
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let (name, receipt) = (self.name.clone(), receipt_handle.to_owned());
        let deleted = self
            .db
            .call(move |c| {
                c.execute("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2", params![name, receipt])
                    .map_err(sql)
            })
            .await
            .map_err(queue_error)?;
        if deleted == 1 { Ok(()) } else { Err(QueueError::StaleReceipt) }
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError> {
        let (name, receipt) = (self.name.clone(), receipt_handle.to_owned());
        let visible_at = self.now_ms() + timeout.as_millis() as i64;
        let changed = self
            .db
            .call(move |c| {
                c.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?3 WHERE queue = ?1 AND receipt = ?2",
                    params![name, receipt, visible_at],
                )
                .map_err(sql)
            })
            .await
            .map_err(queue_error)?;
        if changed == 1 { Ok(()) } else { Err(QueueError::StaleReceipt) }
    }

    async fn redrive(&self, select: &BodyFilter) -> Result<u64, QueueError> {
        let seqs = self.dead_lettered_seqs(select).await?;
        let (name, dlq, now) = (self.name.clone(), self.dead_letter_name.clone(), ms(self.clock.now()));
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(sql)?;
                let mut moved = 0u64;
                for seq in seqs {
                    moved += tx
                        .execute(
                            "UPDATE queue_messages SET queue = ?2, receive_count = 0, receipt = NULL, visible_at_ms = ?4
                             WHERE seq = ?1 AND queue = ?3",
                            params![seq, name, dlq, now],
                        )
                        .map_err(sql)? as u64;
                }
                tx.commit().map_err(sql)?;
                Ok(moved)
            })
            .await
            .map_err(queue_error)
            .inspect(|_| self.notify.notify_waiters())
    }

    async fn dead_lettered(&self, select: &BodyFilter) -> Result<Option<u64>, QueueError> {
        Ok(Some(self.dead_lettered_seqs(select).await?.len() as u64))
    }

    async fn depth(&self) -> Result<(u64, u64), QueueError> {
        let (name, dlq) = (self.name.clone(), self.dead_letter_name.clone());
        self.db
            .call(move |c| {
                let count = |q: &str| -> Result<u64, StoreError> {
                    c.query_row("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1", [q], |r| r.get::<_, i64>(0))
                        .map(|n| n as u64)
                        .map_err(sql)
                };
                Ok((count(&name)?, count(&dlq)?))
            })
            .await
            .map_err(queue_error)
    }
}
