use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Db, from_unix, unavailable, unix};
use crate::domain::{CampaignId, ContactId, ProviderMessageId, RecipientDomain};
use crate::ports::{
    ClaimOutcome, DeliveryRecord, DeliveryReport, DeliveryState, DomainReach, EventMark, HELD_REASON, LedgerCounts,
    LedgerRow, LedgerState, ReachRow, Reopenable, SendLedger, StoreError, tally_reach,
};

/// Send ledger rows: `claimed` (with attempt and lease), `released` (a claim
/// given up after a failure known not to have sent), and the terminal states
/// `sent`, `skipped`, `failed`. Beside each row: the provider events already
/// counted (`ledger_events`) and what the provider reported of its delivery
/// (`ledger_delivery`), both removed with the row by the retention sweep.
pub struct SqliteSendLedger {
    db: Db,
}

impl SqliteSendLedger {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

type Row = (String, u32, Option<i64>, Option<String>, Option<String>);

fn to_state(row: &Row) -> Result<Option<LedgerState>, StoreError> {
    let (state, attempt, lease, provider, reason) = row;
    Ok(match state.as_str() {
        "claimed" => Some(LedgerState::Claimed { attempt: *attempt, lease_until: from_unix(lease.unwrap_or(0)) }),
        "released" => None,
        "sent" => Some(LedgerState::Sent {
            provider_message_id: ProviderMessageId::new(provider.clone().unwrap_or_default()),
        }),
        "skipped" => Some(LedgerState::Skipped { reason: reason.clone().unwrap_or_default() }),
        "failed" => Some(LedgerState::Failed { reason: reason.clone().unwrap_or_default() }),
        other => return Err(StoreError::corrupt(format!("ledger state '{other}'"))),
    })
}

/// The (state, reason) of `which` rows; no reason means any.
fn reopenable_state(which: Reopenable) -> (&'static str, Option<&'static str>) {
    match which {
        Reopenable::Failed => ("failed", None),
        Reopenable::Held => ("skipped", Some(HELD_REASON)),
    }
}

fn read(c: &rusqlite::Connection, campaign: &str, contact: &str) -> Result<Option<Row>, StoreError> {
    c.query_row(
        "SELECT state, attempt, lease_until, provider_message_id, reason FROM send_ledger
         WHERE campaign_id = ?1 AND contact_id = ?2",
        [campaign, contact],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .optional()
    .map_err(unavailable)
}

#[async_trait]
impl SendLedger for SqliteSendLedger {
    async fn claim(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        // Round the lease end up: a claim must never lapse before `now + lease`.
        let until = now + lease.max(Duration::from_secs(1));
        let lease_until = unix(until) + i64::from(until.nanosecond() > 0);
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                let outcome = match read(&tx, &campaign, &contact)? {
                    None => {
                        tx.execute(
                            "INSERT INTO send_ledger (campaign_id, contact_id, state, attempt, lease_until, updated_at)
                             VALUES (?1, ?2, 'claimed', 1, ?3, ?4)",
                            params![campaign, contact, lease_until, unix(now)],
                        )
                        .map_err(unavailable)?;
                        ClaimOutcome::Claimed { attempt: 1 }
                    }
                    Some(row) => match to_state(&row)? {
                        Some(LedgerState::Claimed { lease_until: held, .. }) if held > now => ClaimOutcome::Busy,
                        Some(LedgerState::Claimed { .. }) | None => {
                            let attempt = row.1 + 1;
                            tx.execute(
                                "UPDATE send_ledger SET state = 'claimed', attempt = ?3, lease_until = ?4, updated_at = ?5
                                 WHERE campaign_id = ?1 AND contact_id = ?2",
                                params![campaign, contact, attempt, lease_until, unix(now)],
                            )
                            .map_err(unavailable)?;
                            ClaimOutcome::Claimed { attempt }
                        }
                        Some(done) => ClaimOutcome::Done(done),
                    },
                };
                tx.commit().map_err(unavailable)?;
                Ok(outcome)
            })
            .await
    }

    async fn settle_with(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        state: &LedgerState,
        domain: Option<&RecipientDomain>,
    ) -> Result<(), StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        let domain = domain.map(|d| d.as_str().to_owned());
        let (name, provider, reason) = match state {
            LedgerState::Sent { provider_message_id } => ("sent", Some(provider_message_id.as_str().to_owned()), None),
            LedgerState::Skipped { reason } => ("skipped", None, Some(reason.clone())),
            LedgerState::Failed { reason } => ("failed", None, Some(reason.clone())),
            LedgerState::Claimed { .. } => return Err(StoreError::corrupt("cannot settle into claimed")),
        };
        self.db
            .call(move |c| {
                let changed = c
                    .execute(
                        "UPDATE send_ledger SET state = ?4, provider_message_id = ?5, reason = ?6, lease_until = NULL,
                            updated_at = ?7
                         WHERE campaign_id = ?1 AND contact_id = ?2 AND state = 'claimed' AND attempt = ?3",
                        params![campaign, contact, attempt, name, provider, reason, unix(OffsetDateTime::now_utc())],
                    )
                    .map_err(unavailable)?;
                if changed != 1 {
                    return Err(StoreError::conflict("claim is no longer held"));
                }
                if let Some(domain) = domain {
                    c.execute(
                        "INSERT OR REPLACE INTO ledger_domain (campaign_id, contact_id, domain) VALUES (?1, ?2, ?3)",
                        params![campaign, contact, domain],
                    )
                    .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
    }

    async fn reach_by_domain(&self, campaign: &CampaignId) -> Result<Vec<DomainReach>, StoreError> {
        let key = campaign.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT d.domain, l.state, l.reason, v.state,
                            EXISTS (SELECT 1 FROM ledger_events e WHERE e.campaign_id = l.campaign_id
                                    AND e.contact_id = l.contact_id AND e.event = 'opened'),
                            EXISTS (SELECT 1 FROM ledger_events e WHERE e.campaign_id = l.campaign_id
                                    AND e.contact_id = l.contact_id AND e.event = 'complained')
                         FROM ledger_domain d
                         JOIN send_ledger l ON l.campaign_id = d.campaign_id AND l.contact_id = d.contact_id
                         LEFT JOIN ledger_delivery v ON v.campaign_id = d.campaign_id AND v.contact_id = d.contact_id
                         WHERE d.campaign_id = ?1",
                    )
                    .map_err(unavailable)?;
                type Row = (String, String, Option<String>, Option<String>, bool, bool);
                let rows: Vec<Row> = stmt
                    .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                    .map_err(unavailable)?
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                let mut read = Vec::with_capacity(rows.len());
                for (domain, state, reason, delivery, opened, complained) in &rows {
                    let delivery = DeliveryState::parse_stored(delivery.as_deref())?;
                    read.push(ReachRow {
                        domain,
                        state,
                        reason: reason.as_deref(),
                        delivery,
                        opened: *opened,
                        complained: *complained,
                    });
                }
                tally_reach(read)
            })
            .await
    }

    async fn release(&self, campaign: &CampaignId, contact: &ContactId, attempt: u32) -> Result<(), StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        self.db
            .call(move |c| {
                let changed = c
                    .execute(
                        // The lease end stays: it tells reconciliation when the
                        // job's back-off has run out (`stranded`).
                        "UPDATE send_ledger SET state = 'released'
                         WHERE campaign_id = ?1 AND contact_id = ?2 AND state = 'claimed' AND attempt = ?3",
                        params![campaign, contact, attempt],
                    )
                    .map_err(unavailable)?;
                if changed == 1 { Ok(()) } else { Err(StoreError::conflict("claim is no longer held")) }
            })
            .await
    }

    async fn state(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerState>, StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        self.db
            .call(move |c| match read(c, &campaign, &contact)? {
                Some(row) => to_state(&row),
                None => Ok(None),
            })
            .await
    }

    async fn row(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerRow>, StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        self.db
            .call(move |c| {
                let Some(state) = read(c, &campaign, &contact)?.map(|row| to_state(&row)).transpose()?.flatten() else {
                    return Ok(None);
                };
                let mut marks = c
                    .prepare_cached("SELECT event FROM ledger_events WHERE campaign_id = ?1 AND contact_id = ?2")
                    .map_err(unavailable)?;
                let marks: Vec<String> = marks
                    .query_map([&campaign, &contact], |r| r.get(0))
                    .map_err(unavailable)?
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                Ok(Some(LedgerRow::from_marks(state, marks.iter().map(String::as_str))))
            })
            .await
    }

    async fn find_by_provider_id(&self, id: &ProviderMessageId) -> Result<Option<(CampaignId, ContactId)>, StoreError> {
        let key = id.as_str().to_owned();
        self.db
            .call(move |c| {
                let row: Option<(String, String)> = c
                    .query_row(
                        "SELECT campaign_id, contact_id FROM send_ledger WHERE provider_message_id = ?1",
                        [key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(unavailable)?;
                row.map(|(campaign, contact)| {
                    Ok((
                        CampaignId::parse(&campaign)
                            .map_err(|e| StoreError::corrupt_from("send_ledger.campaign_id", e))?,
                        ContactId::parse(&contact)
                            .map_err(|e| StoreError::corrupt_from("send_ledger.contact_id", e))?,
                    ))
                })
                .transpose()
            })
            .await
    }

    async fn counts(&self, campaign: &CampaignId) -> Result<LedgerCounts, StoreError> {
        let key = campaign.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT state, COUNT(*) FROM send_ledger WHERE campaign_id = ?1 GROUP BY state")
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map([key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(unavailable)?;
                let mut counts = LedgerCounts::default();
                for row in rows {
                    let (state, n) = row.map_err(unavailable)?;
                    let n = n as u64;
                    match state.as_str() {
                        "claimed" | "released" => counts.claimed += n,
                        "sent" => counts.sent += n,
                        "skipped" => counts.skipped += n,
                        "failed" => counts.failed += n,
                        other => return Err(StoreError::corrupt(format!("ledger state '{other}'"))),
                    }
                }
                Ok(counts)
            })
            .await
    }

    async fn reopenable(
        &self,
        campaign: &CampaignId,
        which: Reopenable,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        let (campaign, after) = (campaign.to_string(), after.map(ToString::to_string).unwrap_or_default());
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT contact_id FROM send_ledger
                         WHERE campaign_id = ?1 AND contact_id > ?2 AND state = ?4 AND (?5 IS NULL OR reason = ?5)
                         ORDER BY contact_id LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let (state, reason) = reopenable_state(which);
                contact_ids(&mut stmt, params![campaign, after, limit, state, reason])
            })
            .await
    }

    async fn stranded(
        &self,
        campaign: &CampaignId,
        lapsed_before: OffsetDateTime,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError> {
        let (campaign, after) = (campaign.to_string(), after.map(ToString::to_string).unwrap_or_default());
        self.db
            .call(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT contact_id FROM send_ledger
                         WHERE campaign_id = ?1 AND contact_id > ?2 AND state IN ('released', 'claimed')
                           AND COALESCE(lease_until, updated_at) < ?4
                         ORDER BY contact_id LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                contact_ids(&mut stmt, params![campaign, after, limit, unix(lapsed_before)])
            })
            .await
    }

    async fn reopen(&self, campaign: &CampaignId, contact: &ContactId, which: Reopenable) -> Result<bool, StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        self.db
            .call(move |c| {
                let (state, reason) = reopenable_state(which);
                c.execute(
                    "UPDATE send_ledger SET state = 'released', reason = NULL, lease_until = NULL, updated_at = ?3
                     WHERE campaign_id = ?1 AND contact_id = ?2 AND state = ?4 AND (?5 IS NULL OR reason = ?5)",
                    params![campaign, contact, unix(OffsetDateTime::now_utc()), state, reason],
                )
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    async fn first_mark(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        event: &EventMark,
    ) -> Result<bool, StoreError> {
        let (campaign, contact, key) = (campaign.to_string(), contact.to_string(), event.key());
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO ledger_events (campaign_id, contact_id, event) VALUES (?1, ?2, ?3)",
                    params![campaign, contact, key],
                )
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    async fn fail_sent(&self, campaign: &CampaignId, contact: &ContactId, reason: &str) -> Result<bool, StoreError> {
        let (campaign, contact, reason) = (campaign.to_string(), contact.to_string(), reason.to_owned());
        self.db
            .call(move |c| {
                // The provider message ID stays: later events still match the row.
                c.execute(
                    "UPDATE send_ledger SET state = 'failed', reason = ?3, updated_at = ?4
                     WHERE campaign_id = ?1 AND contact_id = ?2 AND state = 'sent'",
                    params![campaign, contact, reason, unix(OffsetDateTime::now_utc())],
                )
                .map(|n| n == 1)
                .map_err(unavailable)
            })
            .await
    }

    async fn record_delivery(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        let (state, rank) = (report.state.as_str(), i64::from(report.state.rank()));
        let (subtype, delay) = (report.bounce_subtype.clone(), report.delay_type.clone());
        self.db
            .call(move |c| {
                let tx = c.transaction().map_err(unavailable)?;
                // The retention period runs again from the provider's latest report.
                let rows = tx
                    .execute(
                        "UPDATE send_ledger SET updated_at = MAX(updated_at, ?3) WHERE campaign_id = ?1 AND contact_id = ?2",
                        params![campaign, contact, unix(now)],
                    )
                    .map_err(unavailable)?;
                if rows == 1 {
                    tx.execute(
                        "INSERT INTO ledger_delivery (campaign_id, contact_id, state, rank, bounce_subtype, delay_type)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (campaign_id, contact_id) DO UPDATE SET
                           state = CASE WHEN excluded.rank >= rank THEN excluded.state ELSE state END,
                           rank = MAX(rank, excluded.rank),
                           bounce_subtype = COALESCE(excluded.bounce_subtype, bounce_subtype),
                           delay_type = COALESCE(excluded.delay_type, delay_type)",
                        params![campaign, contact, state, rank, subtype, delay],
                    )
                    .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)
            })
            .await
    }

    async fn delivery(&self, campaign: &CampaignId, contact: &ContactId) -> Result<DeliveryRecord, StoreError> {
        let (campaign, contact) = (campaign.to_string(), contact.to_string());
        self.db
            .call(move |c| {
                let row: Option<(Option<String>, Option<String>, Option<String>)> = c
                    .query_row(
                        "SELECT state, bounce_subtype, delay_type FROM ledger_delivery
                         WHERE campaign_id = ?1 AND contact_id = ?2",
                        [campaign, contact],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(unavailable)?;
                let Some((state, bounce_subtype, delay_type)) = row else { return Ok(DeliveryRecord::default()) };
                let state = DeliveryState::parse_stored(state.as_deref())?;
                Ok(DeliveryRecord { state, bounce_subtype, delay_type })
            })
            .await
    }
}

/// The contact IDs a one-column query returns, in its order.
fn contact_ids(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<ContactId>, StoreError> {
    let ids: Vec<String> =
        stmt.query_map(params, |r| r.get(0)).map_err(unavailable)?.collect::<Result<_, _>>().map_err(unavailable)?;
    ids.iter()
        .map(|id| ContactId::parse(id).map_err(|e| StoreError::corrupt_from("send_ledger.contact_id", e)))
        .collect()
}
