//! Contact activity in SQLite: one row per contact with the last open and
//! click times, recent soft-bounce times (a JSON array) and an expiry the
//! sweeper honours. Domains lately found unable to do TLS are rows of
//! `tls_gaps`, with their own expiry.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{CampaignId, ConsentRequestId, ContactId, RecipientDomain};
use crate::ports::{Activity, ActivityStore, Engagement, StoreError, Window};

pub struct SqliteActivityStore {
    db: Db,
}

impl SqliteActivityStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Runs `sql` on the contact's (`?1`) confirmation slot held by `request` (`?2`).
    async fn on_slot(
        &self,
        sql: &'static str,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError> {
        let (contact, request) = (contact.to_string(), request.to_string());
        self.db.call(move |c| c.execute(sql, params![contact, request]).map(|_| ()).map_err(unavailable)).await
    }
}

#[async_trait]
impl ActivityStore for SqliteActivityStore {
    async fn record_engagement(
        &self,
        contact: &ContactId,
        kind: Engagement,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let contact = contact.to_string();
        let sql = match kind {
            Engagement::Open => {
                "INSERT INTO contact_activity (contact_id, last_open, soft_bounces, expires_at) VALUES (?1, ?2, '[]', ?3)
                 ON CONFLICT (contact_id) DO UPDATE SET
                   last_open = max(coalesce(last_open, 0), excluded.last_open),
                   expires_at = max(expires_at, excluded.expires_at)"
            }
            Engagement::Click => {
                "INSERT INTO contact_activity (contact_id, last_click, soft_bounces, expires_at) VALUES (?1, ?2, '[]', ?3)
                 ON CONFLICT (contact_id) DO UPDATE SET
                   last_click = max(coalesce(last_click, 0), excluded.last_click),
                   expires_at = max(expires_at, excluded.expires_at)"
            }
        };
        self.db
            .call(move |c| {
                c.execute(sql, params![contact, unix(at), unix(expires_at)]).map(|_| ()).map_err(unavailable)
            })
            .await
    }

    async fn activity(&self, contact: &ContactId) -> Result<Option<Activity>, StoreError> {
        let contact = contact.to_string();
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT last_open, last_click FROM contact_activity WHERE contact_id = ?1",
                    [contact],
                    |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()
                .map_err(unavailable)
                .map(|row| {
                    row.map(|(open, click)| Activity {
                        last_open: open.map(from_unix),
                        last_click: click.map(from_unix),
                    })
                })
            })
            .await
    }

    async fn claim_confirmation_slot(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
        window: Window,
    ) -> Result<bool, StoreError> {
        let Window { at, since: not_since, expires_at } = window;
        let (contact, request) = (contact.to_string(), request.to_string());
        self.db
            .call(move |c| {
                // Inserts, or takes over a slot old enough, or renews the
                // request's own slot whose email has not left.
                let changed = c
                    .execute(
                        "INSERT INTO confirmation_slots (contact_id, request_id, claimed_at, handed_over, expires_at)
                         VALUES (?1, ?2, ?3, 0, ?4)
                         ON CONFLICT (contact_id) DO UPDATE SET
                           request_id = excluded.request_id, claimed_at = excluded.claimed_at,
                           handed_over = 0, expires_at = max(expires_at, excluded.expires_at)
                         WHERE claimed_at <= ?5 OR (request_id = ?2 AND handed_over = 0)",
                        params![contact, request, unix(at), unix(expires_at), unix(not_since)],
                    )
                    .map_err(unavailable)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn confirmation_handed_over(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError> {
        self.on_slot(
            "UPDATE confirmation_slots SET handed_over = 1 WHERE contact_id = ?1 AND request_id = ?2",
            contact,
            request,
        )
        .await
    }

    async fn release_confirmation_slot(
        &self,
        contact: &ContactId,
        request: &ConsentRequestId,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM confirmation_slots WHERE contact_id = ?1 AND request_id = ?2 AND handed_over = 0";
        self.on_slot(sql, contact, request).await
    }

    async fn marketing_sends_since(
        &self,
        contact: &ContactId,
        since: OffsetDateTime,
        except: &CampaignId,
    ) -> Result<u32, StoreError> {
        let (contact, except) = (contact.to_string(), except.to_string());
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT count(*) FROM marketing_sends WHERE contact_id = ?1 AND sent_at >= ?2 AND campaign_id <> ?3",
                    params![contact, unix(since), except],
                    |r| r.get(0),
                )
                .map_err(unavailable)
            })
            .await
    }

    async fn claim_marketing_send(
        &self,
        contact: &ContactId,
        campaign: &CampaignId,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError> {
        let Window { at, since, expires_at } = window;
        let (contact, campaign) = (contact.to_string(), campaign.to_string());
        self.db
            .call(move |c| {
                // One transaction on the single writer: the count and the insert cannot interleave.
                let tx = c.transaction().map_err(unavailable)?;
                let held: bool = tx
                    .query_row(
                        "SELECT count(*) > 0 FROM marketing_sends WHERE contact_id = ?1 AND campaign_id = ?2",
                        params![contact, campaign],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                if held {
                    return Ok(true);
                }
                let recent: u32 = tx
                    .query_row(
                        "SELECT count(*) FROM marketing_sends WHERE contact_id = ?1 AND sent_at >= ?2",
                        params![contact, unix(since)],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                if recent >= max {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO marketing_sends (contact_id, campaign_id, sent_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![contact, campaign, unix(at), unix(expires_at)],
                )
                .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                Ok(true)
            })
            .await
    }

    async fn record_soft_bounce(&self, contact: &ContactId, window: Window) -> Result<u32, StoreError> {
        let Window { at, since, expires_at } = window;
        let contact = contact.to_string();
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let stored: Option<String> = tx
                    .query_row("SELECT soft_bounces FROM contact_activity WHERE contact_id = ?1", [&contact], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(unavailable)?;
                let mut times: Vec<i64> = match stored {
                    Some(json) => serde_json::from_str(&json)
                        .map_err(|e| StoreError::corrupt_from("contact_activity.soft_bounces is not a list", e))?,
                    None => Vec::new(),
                };
                // Older bounces no longer count: keep the list as short as the window.
                times.retain(|t| *t >= unix(since));
                times.push(unix(at));
                let json = serde_json::to_string(&times).map_err(unavailable)?;
                tx.execute(
                    "INSERT INTO contact_activity (contact_id, soft_bounces, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (contact_id) DO UPDATE SET
                       soft_bounces = excluded.soft_bounces,
                       expires_at = max(expires_at, excluded.expires_at)",
                    params![contact, json, unix(expires_at)],
                )
                .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                Ok(times.len() as u32)
            })
            .await
    }

    async fn remember_tls_gap(
        &self,
        domain: &RecipientDomain,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let domain = domain.as_str().to_owned();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO tls_gaps (domain, seen_at, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (domain) DO UPDATE SET
                       seen_at = max(seen_at, excluded.seen_at),
                       expires_at = max(expires_at, excluded.expires_at)",
                    params![domain, unix(at), unix(expires_at)],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn lacks_tls(&self, domain: &RecipientDomain, now: OffsetDateTime) -> Result<bool, StoreError> {
        let domain = domain.as_str().to_owned();
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT 1 FROM tls_gaps WHERE domain = ?1 AND expires_at > ?2",
                    params![domain, unix(now)],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
                .map_err(unavailable)
            })
            .await
    }
}
