//! Fan-out: scan one shard of the contact table in pages, keep the contacts
//! the campaign may reach, and emit send jobs (IDs only) in batches of ten.
//! The cursor and counts are saved after each page, so a crash or a duplicate
//! shard message resumes; the send ledger absorbs any job emitted twice.

use std::sync::Arc;
use std::time::Instant;

use super::{AppError, AudienceJudge, Auditor, CampaignCatalog, CampaignLifecycle};
use crate::domain::{CampaignStatus, FanoutMessage, FanoutShardJob, SendJob, ShardProgress};
use crate::ports::{CampaignStore, ContactStore, Queue, ShardSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// The shard is scanned to the end.
    Done,
    /// Stopped before `deadline`; the shard message was re-enqueued.
    Continued,
    /// The campaign is not fanning out (already past it, or never launched).
    NotFanningOut,
    /// A scheduled launch's wake-up was handled; the campaign's status after it.
    Launch(CampaignStatus),
    /// A reconciliation tick: how many stranded jobs it enqueued again.
    Reconciled(u64),
}

pub struct Fanout {
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) fanout_queue: Arc<dyn Queue>,
    pub(super) send_queue: Arc<dyn Queue>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) judge: Arc<AudienceJudge>,
    pub(super) audit: Arc<Auditor>,
    pub(super) lifecycle: Arc<CampaignLifecycle>,
    /// Contacts read per page.
    pub(super) page_size: usize,
}

impl Fanout {
    /// One message of the fan-out queue: a shard to scan, or a scheduled launch's wake-up.
    pub async fn process_message(
        &self,
        message: &FanoutMessage,
        deadline: Option<Instant>,
    ) -> Result<ShardOutcome, AppError> {
        match message {
            FanoutMessage::Shard(job) => self.process_shard(job, deadline).await,
            FanoutMessage::Launch(job) => {
                Ok(ShardOutcome::Launch(self.lifecycle.process_scheduled_launch(&job.launch_campaign_id).await?))
            }
            FanoutMessage::Reconcile(job) => {
                Ok(ShardOutcome::Reconciled(self.lifecycle.reconcile(&job.reconcile_campaign_id).await?))
            }
        }
    }

    pub async fn process_shard(
        &self,
        job: &FanoutShardJob,
        deadline: Option<Instant>,
    ) -> Result<ShardOutcome, AppError> {
        let loaded = self.catalog.load(&job.campaign_id).await?;
        let record = self.campaigns.get(&job.campaign_id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::FanningOut {
            return Ok(ShardOutcome::NotFanningOut);
        }
        let mut progress = self
            .campaigns
            .shards(&job.campaign_id)
            .await?
            .into_iter()
            .find(|p| p.shard == job.shard)
            .unwrap_or(ShardProgress { shard: job.shard, ..Default::default() });
        let spec = ShardSpec { index: job.shard, total: job.shards };
        let page_size = self.page_size;
        while !progress.done {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.fanout_queue.send_batch(&[job.to_body()]).await?;
                return Ok(ShardOutcome::Continued);
            }
            let page = self.contacts.scan_shard(spec, progress.cursor.as_deref(), page_size).await?;
            let facts = self.judge.page_facts(&loaded.campaign, &page.records).await?;
            let mut jobs = Vec::new();
            let mut opened = 0usize;
            for record in &page.records {
                progress.evaluated += 1;
                let verdict = self.judge.verdict(&loaded.campaign, record, &facts).await?;
                opened += usize::from(verdict.decrypted());
                if verdict.tally(&mut progress.excluded) {
                    progress.emitted += 1;
                    jobs.push(SendJob { campaign_id: job.campaign_id, contact_id: record.id }.to_body());
                }
            }
            if opened > 0 {
                // One entry per page: the segment's attributes of `opened` contacts.
                let attributes = loaded.campaign.segment.attribute_names();
                let reason = format!(
                    "campaign {} shard {}: segment evaluated for {opened} contacts",
                    job.campaign_id, job.shard
                );
                self.audit.record(super::audit::FANOUT_ACTOR, "fanout.page", None, attributes, reason).await?;
            }
            // One call per page: the SQS adapter sends batches of ten, the embedded one a transaction.
            self.send_queue.send_batch(&jobs).await?;
            progress.done = page.next.is_none();
            progress.cursor = page.next;
            self.campaigns.save_shard(&job.campaign_id, &progress).await?;
        }
        self.lifecycle.advance(&job.campaign_id).await?;
        Ok(ShardOutcome::Done)
    }
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
