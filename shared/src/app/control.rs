//! Stopping and restarting a campaign's sending: pause (by an administrator
//! or by the reputation guard), resume, and retrying failed sends.
//!
//! A paused campaign's send jobs are not left in the queue, where they would
//! use up their receives and reach the dead-letter queue: the sender settles
//! each as held (`Skipped` with `HELD_REASON`). Resuming reopens the held
//! rows and enqueues their jobs again; retrying does the same for `Failed`
//! rows. The ledger keeps both exactly once: a reopened row is claimed anew.

use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, FanoutShardJob, SendJob};
use crate::ports::Reopenable;

/// Reopened rows read and re-enqueued per page.
const PAGE: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlOutcome {
    pub status: CampaignStatus,
    /// Send jobs enqueued again.
    pub requeued: u64,
}

impl App {
    /// Pauses a campaign that is fanning out or sending; its jobs are held
    /// from the next one a sender takes.
    pub async fn pause_campaign(&self, id: &CampaignId, reason: &str) -> Result<CampaignStatus, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if self.ports.campaigns.pause(id, reason).await? {
            tracing::warn!(campaign_id = %id, reason, "campaign paused");
            return Ok(CampaignStatus::Paused);
        }
        Ok(record.status)
    }

    /// Cancels a campaign that has not completed: fan-out stops at its next
    /// page, and every send job not yet handed over is settled as cancelled
    /// by the next sender that takes it. Cannot be undone.
    pub async fn cancel_campaign(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        // The status can move under us (fan-out finishing, a pause): retry on the fresh one.
        for _ in 0..5 {
            let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
            match record.status {
                CampaignStatus::Completed => {
                    return Err(AppError::Conflict("the campaign has completed; nothing is left to cancel".into()));
                }
                CampaignStatus::Cancelled => return Ok(CampaignStatus::Cancelled),
                from => {
                    if self.ports.campaigns.transition(id, from, CampaignStatus::Cancelled).await? {
                        tracing::warn!(campaign_id = %id, "campaign cancelled");
                        return Ok(CampaignStatus::Cancelled);
                    }
                }
            }
        }
        Err(AppError::Conflict("campaign kept changing while cancelling".into()))
    }

    /// Resumes a paused campaign where it stopped: unfinished fan-out shards
    /// continue from their checkpoints, held jobs are enqueued again.
    pub async fn resume_campaign(&self, id: &CampaignId) -> Result<ControlOutcome, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::Paused {
            return Ok(ControlOutcome { status: record.status, requeued: 0 });
        }
        let shards = self.ports.campaigns.shards(id).await?;
        let unfinished: Vec<u16> =
            (0..record.shards).filter(|n| !shards.iter().any(|s| s.shard == *n && s.done)).collect();
        let to = if unfinished.is_empty() { CampaignStatus::Sending } else { CampaignStatus::FanningOut };
        if !self.ports.campaigns.transition(id, CampaignStatus::Paused, to).await? {
            return Err(AppError::Conflict("campaign changed while resuming".into()));
        }
        let jobs: Vec<String> = unfinished
            .iter()
            .map(|&shard| FanoutShardJob { campaign_id: *id, shard, shards: record.shards }.to_body())
            .collect();
        for chunk in jobs.chunks(10) {
            self.ports.fanout_queue.send_batch(chunk).await?;
        }
        let requeued = self.requeue(id, Reopenable::Held).await?;
        tracing::info!(campaign_id = %id, requeued, "campaign resumed");
        Ok(ControlOutcome { status: to, requeued })
    }

    /// Sends every failed job of the campaign again (a completed campaign
    /// goes back to sending until they settle).
    pub async fn retry_failed(&self, id: &CampaignId) -> Result<ControlOutcome, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let mut status = record.status;
        if status == CampaignStatus::Draft {
            return Err(AppError::Conflict("campaign has not been launched".into()));
        }
        // Reopen first, then leave `completed`: `advance_campaign` cannot
        // complete it again while a reopened row is outstanding.
        let requeued = self.requeue(id, Reopenable::Failed).await?;
        if requeued > 0
            && status == CampaignStatus::Completed
            && self.ports.campaigns.transition(id, CampaignStatus::Completed, CampaignStatus::Sending).await?
        {
            status = CampaignStatus::Sending;
        }
        tracing::info!(campaign_id = %id, requeued, "failed sends retried");
        Ok(ControlOutcome { status, requeued })
    }

    /// Reopens `which` rows page by page and enqueues their jobs.
    async fn requeue(&self, id: &CampaignId, which: Reopenable) -> Result<u64, AppError> {
        let mut after = None;
        let mut requeued = 0u64;
        loop {
            let page = self.ports.ledger.reopenable(id, which, after.as_ref(), PAGE).await?;
            let Some(last) = page.last().copied() else { break };
            let mut bodies = Vec::with_capacity(page.len());
            for contact in &page {
                if self.ports.ledger.reopen(id, contact, which).await? {
                    bodies.push(SendJob { campaign_id: *id, contact_id: *contact }.to_body());
                }
            }
            for chunk in bodies.chunks(10) {
                self.ports.send_queue.send_batch(chunk).await?;
            }
            requeued += bodies.len() as u64;
            after = Some(last);
        }
        Ok(requeued)
    }

    /// Pauses the campaign if, over the sliding window (whose buckets the
    /// event path fills), its rates have passed the limits.
    pub(super) async fn guard_reputation(&self, id: &CampaignId) -> Result<(), AppError> {
        let guard = &self.settings.reputation;
        let now = OffsetDateTime::now_utc();
        let judged = [CampaignCounter::Delivered, CampaignCounter::BouncedHard, CampaignCounter::Complained];
        let window = self.ports.campaigns.window(id, &judged, guard.window_start(now)).await?;
        let count = |c: CampaignCounter| window.iter().find(|(k, _)| *k == c).map_or(0, |(_, v)| *v);
        let verdict = guard.verdict(
            count(CampaignCounter::Delivered),
            count(CampaignCounter::BouncedHard),
            count(CampaignCounter::Complained),
        );
        if let Some(reason) = verdict {
            self.pause_campaign(id, &reason).await?;
        }
        Ok(())
    }
}
