//! Nothing stranded (DESIGN §4.9): a job whose receives ran out during an
//! outage ends in the dead-letter queue and leaves its ledger row released
//! (or claimed with a lapsed lease). Such a campaign shows as stalled, with
//! counts and a reason; reconciliation ticks (a delayed message on the
//! fan-out queue per sending campaign, in both runtimes) and the operator's
//! redrive bring the jobs back. The ledger keeps them exactly once: a
//! job whose row is already terminal is acknowledged without a send.

use std::time::Duration;

use super::AppError;
use super::control::CampaignLifecycle;
use crate::domain::{CampaignId, CampaignStatus, ContactId, ReconcileJob, SendJob};
use crate::ports::MAX_DELAY;

/// Rows read per page.
const PAGE: usize = 500;

/// Why a campaign is not moving, while it is not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stalled {
    /// Ledger rows neither terminal nor in a lease, with no job left queued.
    pub stranded: u64,
    /// The campaign's send jobs in the dead-letter queue, where the queue
    /// can count them by campaign (the embedded one); absent on SQS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedriveOutcome {
    pub status: CampaignStatus,
    /// Send jobs moved back from the dead-letter queue.
    pub redriven: u64,
    /// Stranded rows whose jobs were enqueued again.
    pub requeued: u64,
}

fn of_campaign(id: CampaignId) -> impl Fn(&str) -> bool + Send + Sync {
    move |body: &str| SendJob::parse(body).is_ok_and(|job| job.campaign_id == id)
}

impl CampaignLifecycle {
    /// How long between reconciliation ticks, and how long after its last
    /// lease a row must have been left before it counts as stranded: the
    /// longest back-off plus a visibility timeout.
    pub fn reconcile_interval(&self) -> Duration {
        (self.retry.longest_wait() + self.visibility).min(MAX_DELAY)
    }

    pub(super) async fn arm_reconciliation(&self, id: &CampaignId) -> Result<(), AppError> {
        let body = ReconcileJob { reconcile_campaign_id: *id }.to_body();
        self.fanout_queue.send_delayed(&body, self.reconcile_interval()).await?;
        Ok(())
    }

    /// The campaign's stalled state, if it is sending and stalled.
    pub async fn stalled(&self, id: &CampaignId) -> Result<Option<Stalled>, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if !matches!(record.status, CampaignStatus::Sending | CampaignStatus::FanningOut) {
            return Ok(None);
        }
        let stranded = self.stranded_rows(id, self.quiet_since()).await?.len() as u64;
        let dead_lettered = self.send_queue.dead_lettered(&of_campaign(*id)).await?;
        if stranded == 0 && dead_lettered.unwrap_or(0) == 0 {
            return Ok(None);
        }
        let every = self.reconcile_interval().as_secs();
        let jobs = stranded.max(dead_lettered.unwrap_or(0));
        let reason = format!(
            "{jobs} send job(s) ran out of retries (the mail transport or a store kept failing) and wait in the \
             dead-letter queue; reconciliation re-queues them every {every} s, or now with `carepost campaign redrive`"
        );
        Ok(Some(Stalled { stranded, dead_lettered, reason }))
    }

    /// Moves the campaign's dead-lettered send jobs back and re-queues every
    /// row not terminal and not in a lease (the operator says the outage is
    /// over), then restarts the reconciliation ticks.
    pub async fn redrive(&self, id: &CampaignId) -> Result<RedriveOutcome, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if matches!(record.status, CampaignStatus::Draft | CampaignStatus::Scheduled) {
            return Err(AppError::Conflict("campaign has not been launched".into()));
        }
        let redriven = self.send_queue.redrive(&of_campaign(*id)).await?;
        // Every row not terminal: a live claim's duplicate job meets `Busy`
        // and waits out the lease, so nothing is sent twice.
        let requeued = self.requeue_stranded(id, self.clock.now() + Duration::from_secs(86_400)).await?;
        if record.status == CampaignStatus::Sending {
            self.arm_reconciliation(id).await?;
        }
        tracing::info!(campaign_id = %id, redriven, requeued, "campaign redriven");
        Ok(RedriveOutcome { status: self.advance(id).await?, redriven, requeued })
    }

    /// One reconciliation tick: dead-lettered jobs back, stranded rows
    /// re-queued, the campaign moved on; then the next tick, unless the
    /// campaign has finished. A paused campaign keeps ticking without
    /// re-queuing (its jobs are held in the ledger).
    pub async fn reconcile(&self, id: &CampaignId) -> Result<u64, AppError> {
        let Some(record) = self.campaigns.get(id).await? else { return Ok(0) };
        let mut requeued = 0;
        match record.status {
            CampaignStatus::Completed | CampaignStatus::Cancelled => return Ok(0),
            CampaignStatus::Sending => {
                requeued += self.send_queue.redrive(&of_campaign(*id)).await?;
                requeued += self.requeue_stranded(id, self.quiet_since()).await?;
                if requeued > 0 {
                    tracing::warn!(campaign_id = %id, requeued, "reconciliation re-queued stranded send jobs");
                }
                if self.advance(id).await? == CampaignStatus::Completed {
                    return Ok(requeued);
                }
            }
            _ => {}
        }
        self.arm_reconciliation(id).await?;
        Ok(requeued)
    }

    /// Rows whose last lease ended before this have no job waiting any more.
    fn quiet_since(&self) -> time::OffsetDateTime {
        self.clock.now() - self.reconcile_interval()
    }

    async fn stranded_rows(&self, id: &CampaignId, before: time::OffsetDateTime) -> Result<Vec<ContactId>, AppError> {
        let mut all = Vec::new();
        loop {
            let page = self.ledger.stranded(id, before, all.last(), PAGE).await?;
            let full = page.len() == PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    async fn requeue_stranded(&self, id: &CampaignId, before: time::OffsetDateTime) -> Result<u64, AppError> {
        let rows = self.stranded_rows(id, before).await?;
        let bodies: Vec<String> =
            rows.iter().map(|contact| SendJob { campaign_id: *id, contact_id: *contact }.to_body()).collect();
        for chunk in bodies.chunks(10) {
            self.send_queue.send_batch(chunk).await?;
        }
        Ok(bodies.len() as u64)
    }
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
