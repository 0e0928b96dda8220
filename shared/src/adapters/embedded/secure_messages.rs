//! Secure messages in SQLite: one row per (campaign, contact) in
//! `secure_messages`, the sealed content, the latest code's hash, the times
//! codes were issued (a JSON array, for the rate limit) and failed proofs;
//! swept at its expiry.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{CampaignId, ContactId};
use crate::ports::{IssuedCode, SecureMessage, SecureMessageStore, StoreError, Window};

pub struct SqliteSecureMessageStore {
    db: Db,
}

impl SqliteSecureMessageStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "campaign_id, contact_id, sealed, created_at, expires_at, notice_sent, code_hash, \
                       code_expires_at, failures";

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, SecureMessage)> {
    let code_hash: Option<String> = row.get(6)?;
    let code_expires: Option<i64> = row.get(7)?;
    let message = SecureMessage {
        campaign: CampaignId::new_random(),
        contact: ContactId::new_random(),
        sealed: row.get(2)?,
        created_at: from_unix(row.get(3)?),
        expires_at: from_unix(row.get(4)?),
        notice_sent: row.get::<_, i64>(5)? != 0,
        code: code_hash.zip(code_expires).map(|(hash, at)| IssuedCode { hash, expires_at: from_unix(at) }),
        failures: row.get::<_, i64>(8)? as u32,
    };
    Ok((row.get(0)?, row.get(1)?, message))
}

fn select(c: &rusqlite::Connection, campaign: &str, contact: &str) -> Result<Option<SecureMessage>, StoreError> {
    let found = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM secure_messages WHERE campaign_id = ?1 AND contact_id = ?2"),
            params![campaign, contact],
            read,
        )
        .optional()
        .map_err(unavailable)?;
    found
        .map(|(campaign, contact, mut message)| {
            message.campaign =
                CampaignId::parse(&campaign).map_err(|_| StoreError::corrupt("secure_messages.campaign_id"))?;
            message.contact =
                ContactId::parse(&contact).map_err(|_| StoreError::corrupt("secure_messages.contact_id"))?;
            Ok(message)
        })
        .transpose()
}

fn keys(campaign: &CampaignId, contact: &ContactId) -> (String, String) {
    (campaign.to_string(), contact.to_string())
}

#[async_trait]
impl SecureMessageStore for SqliteSecureMessageStore {
    async fn create(&self, message: &SecureMessage) -> Result<SecureMessage, StoreError> {
        let m = message.clone();
        self.db
            .call(move |c| {
                let (campaign, contact) = keys(&m.campaign, &m.contact);
                c.execute(
                    "INSERT OR IGNORE INTO secure_messages (campaign_id, contact_id, sealed, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![campaign, contact, m.sealed, unix(m.created_at), unix(m.expires_at)],
                )
                .map_err(unavailable)?;
                select(c, &campaign, &contact)?.ok_or_else(|| StoreError::corrupt("secure message not stored"))
            })
            .await
    }

    async fn get(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<SecureMessage>, StoreError> {
        let (campaign, contact) = keys(campaign, contact);
        self.db.call(move |c| select(c, &campaign, &contact)).await
    }

    async fn notice_sent(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError> {
        let (campaign, contact) = keys(campaign, contact);
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE secure_messages SET notice_sent = 1 WHERE campaign_id = ?1 AND contact_id = ?2",
                    params![campaign, contact],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn issue_code(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        code: &IssuedCode,
        max: u32,
        window: Window,
    ) -> Result<bool, StoreError> {
        let (campaign, contact) = keys(campaign, contact);
        let code = code.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let issued: Option<String> = tx
                    .query_row(
                        "SELECT codes_issued FROM secure_messages WHERE campaign_id = ?1 AND contact_id = ?2",
                        params![campaign, contact],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                let Some(issued) = issued else { return Ok(false) };
                let mut times: Vec<i64> = serde_json::from_str(&issued)
                    .map_err(|e| StoreError::corrupt_from("secure_messages.codes_issued is not a list", e))?;
                times.retain(|t| *t >= unix(window.since));
                if times.len() >= max as usize {
                    return Ok(false);
                }
                times.push(unix(window.at));
                let json = serde_json::to_string(&times).map_err(unavailable)?;
                tx.execute(
                    "UPDATE secure_messages SET code_hash = ?3, code_expires_at = ?4, codes_issued = ?5
                     WHERE campaign_id = ?1 AND contact_id = ?2",
                    params![campaign, contact, code.hash, unix(code.expires_at), json],
                )
                .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                Ok(true)
            })
            .await
    }

    async fn record_failure(&self, campaign: &CampaignId, contact: &ContactId) -> Result<u32, StoreError> {
        let (campaign, contact) = keys(campaign, contact);
        self.db
            .call(move |c| {
                c.query_row(
                    "UPDATE secure_messages SET failures = failures + 1 WHERE campaign_id = ?1 AND contact_id = ?2
                     RETURNING failures",
                    params![campaign, contact],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(unavailable)?
                .map(|n| n as u32)
                .ok_or_else(|| StoreError::corrupt("no such secure message"))
            })
            .await
    }

    async fn spend_code(&self, campaign: &CampaignId, contact: &ContactId) -> Result<(), StoreError> {
        let (campaign, contact) = keys(campaign, contact);
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE secure_messages SET code_hash = NULL, code_expires_at = NULL, failures = 0
                     WHERE campaign_id = ?1 AND contact_id = ?2",
                    params![campaign, contact],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }
}
