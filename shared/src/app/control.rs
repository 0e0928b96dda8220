//! A campaign's lifecycle after creation: launch (now or scheduled), moving
//! on when a stage is finished, pause (by an administrator or by the
//! reputation guard), cancel, resume, and retrying failed sends.
//!
//! A paused campaign's send jobs are not left in the queue, where they would
//! use up their receives and reach the dead-letter queue: the sender settles
//! each as held (`Skipped` with `HELD_REASON`). Resuming reopens the held
//! rows and enqueues their jobs again; retrying does the same for `Failed`
//! rows. The ledger keeps both exactly once: a reopened row is claimed anew.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{AppError, CampaignCatalog};
use crate::config::ReputationGuard;
use crate::domain::{CampaignCounter, CampaignId, CampaignStatus, FanoutShardJob, SendJob};
use crate::ports::{CampaignStore, Clock, Queue, Reopenable, SendLedger};

/// Reopened rows read and re-enqueued per page.
const PAGE: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlOutcome {
    pub status: CampaignStatus,
    /// Send jobs enqueued again.
    pub requeued: u64,
}

pub struct CampaignLifecycle {
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) fanout_queue: Arc<dyn Queue>,
    pub(super) send_queue: Arc<dyn Queue>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) reputation: ReputationGuard,
    pub(super) clock: Arc<dyn Clock>,
    /// The one retry policy: how long a released job can still be waiting.
    pub(super) retry: crate::domain::RetryPolicy,
    /// `VisibilityTimeoutSeconds`: the interval of reconciliation ticks.
    pub(super) visibility: std::time::Duration,
}

impl CampaignLifecycle {
    /// Starts fan-out, or schedules it for the campaign's `launch_at`. Only a
    /// draft launches: a second launch is a conflict that names the
    /// campaign's status, so a script never mistakes it for a new start.
    pub async fn launch(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let launch_at = self.catalog.load(id).await?.campaign.launch_at;
        let later = launch_at.filter(|at| *at > self.clock.now());
        match record.status {
            CampaignStatus::Draft if later.is_some() => {
                if !self.campaigns.transition(id, CampaignStatus::Draft, CampaignStatus::Scheduled).await? {
                    return Err(AppError::Conflict("campaign changed while launching".into()));
                }
                self.wait_for_launch(id, later).await?;
                return Ok(CampaignStatus::Scheduled);
            }
            CampaignStatus::Draft => {
                if !self.campaigns.transition(id, CampaignStatus::Draft, CampaignStatus::FanningOut).await? {
                    return Err(AppError::Conflict("campaign changed while launching".into()));
                }
            }
            other => {
                return Err(AppError::Conflict(format!(
                    "the campaign was already launched (it is {}); only a draft can be launched",
                    other.as_str().replace('_', " ")
                )));
            }
        }
        self.start_fanout(id, record.shards).await?;
        Ok(CampaignStatus::FanningOut)
    }

    /// A scheduled campaign's wake-up: fan-out starts if its time has come,
    /// else the message goes back on the queue for the rest of the wait (in
    /// hops of at most 15 minutes). A cancelled campaign's wake-up is dropped.
    pub async fn process_scheduled_launch(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::Scheduled {
            return Ok(record.status);
        }
        let launch_at = self.catalog.load(id).await?.campaign.launch_at;
        if launch_at.is_some_and(|at| at > self.clock.now()) {
            self.wait_for_launch(id, launch_at).await?;
            return Ok(CampaignStatus::Scheduled);
        }
        if !self.campaigns.transition(id, CampaignStatus::Scheduled, CampaignStatus::FanningOut).await? {
            // Cancelled, or another wake-up won: either way nothing more to do here.
            return Ok(self.campaigns.get(id).await?.map_or(CampaignStatus::Cancelled, |r| r.status));
        }
        self.start_fanout(id, record.shards).await?;
        tracing::info!(campaign_id = %id, "scheduled campaign launched");
        Ok(CampaignStatus::FanningOut)
    }

    async fn wait_for_launch(&self, id: &CampaignId, at: Option<OffsetDateTime>) -> Result<(), AppError> {
        let now = self.clock.now();
        let wait =
            at.map_or(std::time::Duration::ZERO, |at| std::time::Duration::try_from(at - now).unwrap_or_default());
        let body = crate::domain::ScheduledLaunchJob { launch_campaign_id: *id }.to_body();
        self.fanout_queue.send_delayed(&body, wait.min(crate::ports::MAX_DELAY)).await?;
        Ok(())
    }

    async fn start_fanout(&self, id: &CampaignId, shards: u16) -> Result<(), AppError> {
        self.enqueue_shards(id, shards, 0..shards).await
    }

    async fn enqueue_shards(
        &self,
        id: &CampaignId,
        shards: u16,
        which: impl IntoIterator<Item = u16>,
    ) -> Result<(), AppError> {
        let jobs: Vec<String> =
            which.into_iter().map(|shard| FanoutShardJob { campaign_id: *id, shard, shards }.to_body()).collect();
        for chunk in jobs.chunks(10) {
            self.fanout_queue.send_batch(chunk).await?;
        }
        Ok(())
    }

    /// Moves the campaign on when its stage is finished: fan-out done → sending,
    /// every emitted job in a terminal state → completed. Never earlier.
    /// Moves the campaign on where it can: to `sending` once every shard
    /// is done, to `completed` once the ledger has settled every job
    /// emitted (counted over the whole ledger).
    pub async fn advance(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        self.advance_with(id, false).await
    }

    /// `advance` after a send batch: the ledger is counted only once the
    /// senders' own tally (`CampaignCounter::Settled`, a lower bound) says
    /// every job emitted may be settled. Counting it after every batch read
    /// the whole campaign each time: quadratic in its size
    /// (docs/benchmarks.md). A tally short after a crash leaves completion
    /// to the reconciliation tick, which counts the ledger.
    pub async fn advance_after_batch(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        self.advance_with(id, true).await
    }

    async fn advance_with(&self, id: &CampaignId, tally_first: bool) -> Result<CampaignStatus, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let shards = self.campaigns.shards(id).await?;
        let all_done = shards.len() == usize::from(record.shards) && shards.iter().all(|s| s.done);
        let mut status = record.status;
        if status == CampaignStatus::FanningOut
            && all_done
            && self.campaigns.transition(id, CampaignStatus::FanningOut, CampaignStatus::Sending).await?
        {
            status = CampaignStatus::Sending;
            // Once, with the move (it is conditional): the reconciliation ticks start.
            self.arm_reconciliation(id).await?;
        }
        if status == CampaignStatus::Sending {
            let emitted: u64 = shards.iter().map(|s| s.emitted).sum();
            if tally_first {
                let counters = self.campaigns.counters(id).await?;
                let settled = counters.iter().find(|(c, _)| *c == CampaignCounter::Settled).map_or(0, |(_, n)| *n);
                if settled < emitted {
                    return Ok(status);
                }
            }
            let counts = self.ledger.counts(id).await?;
            if counts.sent + counts.skipped + counts.failed >= emitted
                && self.campaigns.transition(id, CampaignStatus::Sending, CampaignStatus::Completed).await?
            {
                status = CampaignStatus::Completed;
            }
        }
        Ok(status)
    }

    /// Pauses a campaign that is fanning out or sending; its jobs are held
    /// from the next one a sender takes.
    pub async fn pause(&self, id: &CampaignId, reason: &str) -> Result<CampaignStatus, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if self.campaigns.pause(id, reason).await? {
            tracing::warn!(campaign_id = %id, reason, "campaign paused");
            return Ok(CampaignStatus::Paused);
        }
        Ok(record.status)
    }

    /// Cancels a campaign that has not completed: fan-out stops at its next
    /// page, and every send job not yet handed over is settled as cancelled
    /// by the next sender that takes it. Cannot be undone.
    pub async fn cancel(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        // The status can move under us (fan-out finishing, a pause): retry on the fresh one.
        for _ in 0..5 {
            let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
            match record.status {
                CampaignStatus::Completed => {
                    return Err(AppError::Conflict("the campaign has completed; nothing is left to cancel".into()));
                }
                CampaignStatus::Cancelled => return Ok(CampaignStatus::Cancelled),
                from => {
                    if self.campaigns.transition(id, from, CampaignStatus::Cancelled).await? {
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
    pub async fn resume(&self, id: &CampaignId) -> Result<ControlOutcome, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::Paused {
            return Ok(ControlOutcome { status: record.status, requeued: 0 });
        }
        let shards = self.campaigns.shards(id).await?;
        let unfinished: Vec<u16> =
            (0..record.shards).filter(|n| !shards.iter().any(|s| s.shard == *n && s.done)).collect();
        let to = if unfinished.is_empty() { CampaignStatus::Sending } else { CampaignStatus::FanningOut };
        if !self.campaigns.transition(id, CampaignStatus::Paused, to).await? {
            return Err(AppError::Conflict("campaign changed while resuming".into()));
        }
        self.enqueue_shards(id, record.shards, unfinished).await?;
        let requeued = self.requeue(id, Reopenable::Held).await?;
        tracing::info!(campaign_id = %id, requeued, "campaign resumed");
        Ok(ControlOutcome { status: to, requeued })
    }

    /// Sends every failed job of the campaign again (a completed campaign
    /// goes back to sending until they settle).
    pub async fn retry_failed(&self, id: &CampaignId) -> Result<ControlOutcome, AppError> {
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let mut status = record.status;
        if status == CampaignStatus::Draft {
            return Err(AppError::Conflict("campaign has not been launched".into()));
        }
        // Reopen first, then leave `completed`: `advance` cannot
        // complete it again while a reopened row is outstanding.
        let requeued = self.requeue(id, Reopenable::Failed).await?;
        if requeued > 0
            && status == CampaignStatus::Completed
            && self.campaigns.transition(id, CampaignStatus::Completed, CampaignStatus::Sending).await?
        {
            status = CampaignStatus::Sending;
        }
        tracing::info!(campaign_id = %id, requeued, "failed sends retried");
        Ok(ControlOutcome { status, requeued })
    }

    /// Reopens `which` rows page by page and enqueues their jobs.
    pub(super) async fn requeue(&self, id: &CampaignId, which: Reopenable) -> Result<u64, AppError> {
        let mut after = None;
        let mut requeued = 0u64;
        loop {
            let page = self.ledger.reopenable(id, which, after.as_ref(), PAGE).await?;
            let Some(last) = page.last().copied() else { break };
            let mut bodies = Vec::with_capacity(page.len());
            for contact in &page {
                if self.ledger.reopen(id, contact, which).await? {
                    bodies.push(SendJob { campaign_id: *id, contact_id: *contact }.to_body());
                }
            }
            for chunk in bodies.chunks(10) {
                self.send_queue.send_batch(chunk).await?;
            }
            requeued += bodies.len() as u64;
            after = Some(last);
        }
        Ok(requeued)
    }

    /// Pauses the campaign if, over the sliding window (whose buckets the
    /// event path fills), its rates have passed the limits.
    pub(super) async fn guard_reputation(&self, id: &CampaignId) -> Result<(), AppError> {
        let guard = &self.reputation;
        let now = self.clock.now();
        let judged = [CampaignCounter::Delivered, CampaignCounter::BouncedHard, CampaignCounter::Complained];
        let window = self.campaigns.window(id, &judged, guard.window_start(now)).await?;
        let count = |c: CampaignCounter| window.iter().find(|(k, _)| *k == c).map_or(0, |(_, v)| *v);
        let verdict = guard.verdict(
            count(CampaignCounter::Delivered),
            count(CampaignCounter::BouncedHard),
            count(CampaignCounter::Complained),
        );
        if let Some(reason) = verdict {
            self.pause(id, &reason).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
