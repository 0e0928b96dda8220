//! The embedded store's stand-in for DynamoDB's TTL: deletes send-ledger
//! rows (with their event marks) and contact activity past the retention
//! period. Suppression, consent evidence, the audit log and campaign totals
//! are never touched.

use rusqlite::params;
use time::OffsetDateTime;

use super::db::{Db, unavailable, unix};
use crate::ports::StoreError;

/// How many rows one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub ledger_rows: u64,
    pub activity_rows: u64,
}

impl Db {
    /// Removes ledger rows not changed since `now - retention` and activity
    /// rows whose expiry has passed. The send ledger's rows are the
    /// exactly-once guard, so `retention` must outlive any queue message
    /// (SQS keeps a message 14 days at most; the default is 400 days).
    pub async fn sweep_expired(
        &self,
        now: OffsetDateTime,
        retention: std::time::Duration,
    ) -> Result<Swept, StoreError> {
        let cutoff = unix(now) - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        let now = unix(now);
        self.call(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            // A ledger row's side tables go with it.
            for table in ["ledger_events", "ledger_domain", "ledger_delivery"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE EXISTS (
                           SELECT 1 FROM send_ledger l WHERE l.campaign_id = {table}.campaign_id
                           AND l.contact_id = {table}.contact_id AND l.updated_at < ?1)"
                    ),
                    params![cutoff],
                )
                .map_err(unavailable)?;
            }
            let ledger_rows =
                tx.execute("DELETE FROM send_ledger WHERE updated_at < ?1", params![cutoff]).map_err(unavailable)?;
            let activity_rows =
                tx.execute("DELETE FROM contact_activity WHERE expires_at < ?1", params![now]).map_err(unavailable)?;
            tx.execute("DELETE FROM marketing_sends WHERE expires_at < ?1", params![now]).map_err(unavailable)?;
            for table in ["confirmation_slots", "consent_intake", "request_counts", "tls_gaps", "secure_messages"] {
                tx.execute(&format!("DELETE FROM {table} WHERE expires_at < ?1"), params![now]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(Swept { ledger_rows: ledger_rows as u64, activity_rows: activity_rows as u64 })
        })
        .await
    }
}
