//! Fan-out: scan one shard of the contact table in pages, keep the contacts
//! the campaign may reach, and emit send jobs (IDs only) in batches of ten.
//! The cursor and counts are saved after each page, so a crash or a duplicate
//! shard message resumes; the send ledger absorbs any job emitted twice.

use std::time::Instant;

use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{
    CampaignStatus, ConsentStatus, FanoutShardJob, SendJob, ShardProgress, hipaa_authorized, today_utc,
};
use crate::ports::{ContactRecord, ShardSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// The shard is scanned to the end.
    Done,
    /// Stopped before `deadline`; the shard message was re-enqueued.
    Continued,
    /// The campaign is not fanning out (already past it, or never launched).
    NotFanningOut,
}

enum Verdict {
    Include,
    NotInSegment,
    NoConsent,
    ConsentPending,
    ConsentWithdrawn,
    Suppressed,
    NoHipaaAuthorization,
}

impl App {
    pub async fn process_fanout_shard(
        &self,
        job: &FanoutShardJob,
        deadline: Option<Instant>,
    ) -> Result<ShardOutcome, AppError> {
        let loaded = self.load_campaign(&job.campaign_id).await?;
        let record = self.ports.campaigns.get(&job.campaign_id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::FanningOut {
            return Ok(ShardOutcome::NotFanningOut);
        }
        let mut progress = self
            .ports
            .campaigns
            .shards(&job.campaign_id)
            .await?
            .into_iter()
            .find(|p| p.shard == job.shard)
            .unwrap_or(ShardProgress { shard: job.shard, ..Default::default() });
        let spec = ShardSpec { index: job.shard, total: job.shards };
        let needed = loaded.campaign.segment.attributes();
        let page_size = self.settings.fanout_page_size;
        while !progress.done {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.ports.fanout_queue.send_batch(&[job.to_body()]).await?;
                return Ok(ShardOutcome::Continued);
            }
            let page = self.ports.contacts.scan_shard(spec, progress.cursor.as_deref(), page_size).await?;
            let mut jobs = Vec::new();
            let mut opened = 0usize;
            for record in &page.records {
                progress.evaluated += 1;
                let verdict = self.verdict(&loaded.campaign, record, &needed).await?;
                opened += usize::from(matches!(verdict, Verdict::Include | Verdict::NotInSegment));
                match verdict {
                    Verdict::Include => {
                        progress.emitted += 1;
                        jobs.push(SendJob { campaign_id: job.campaign_id, contact_id: record.id }.to_body());
                    }
                    Verdict::NotInSegment => progress.excluded.not_in_segment += 1,
                    Verdict::NoConsent => progress.excluded.no_consent += 1,
                    Verdict::ConsentPending => progress.excluded.consent_pending += 1,
                    Verdict::ConsentWithdrawn => progress.excluded.consent_withdrawn += 1,
                    Verdict::Suppressed => progress.excluded.suppressed += 1,
                    Verdict::NoHipaaAuthorization => progress.excluded.no_hipaa_authorization += 1,
                }
            }
            if opened > 0 {
                // One entry per page: the segment's attributes of `opened` contacts.
                let attributes = loaded.campaign.segment.attribute_names();
                let reason = format!(
                    "campaign {} shard {}: segment evaluated for {opened} contacts",
                    job.campaign_id, job.shard
                );
                self.record_access(super::audit::FANOUT_ACTOR, "fanout.page", None, attributes, reason).await?;
            }
            for chunk in jobs.chunks(10) {
                self.ports.send_queue.send_batch(chunk).await?;
            }
            progress.done = page.next.is_none();
            progress.cursor = page.next;
            self.ports.campaigns.save_shard(&job.campaign_id, &progress).await?;
        }
        self.advance_campaign(&job.campaign_id).await?;
        Ok(ShardOutcome::Done)
    }

    async fn verdict(
        &self,
        campaign: &crate::domain::Campaign,
        record: &ContactRecord,
        needed: &[crate::domain::Attribute],
    ) -> Result<Verdict, AppError> {
        if self.ports.suppression.reason(&record.email_index).await?.is_some() {
            return Ok(Verdict::Suppressed);
        }
        let now = OffsetDateTime::now_utc();
        let grants = self.ports.consent.grants(&record.id).await?;
        match grants.iter().find(|g| g.category == campaign.category) {
            None => return Ok(Verdict::NoConsent),
            Some(g) if g.status == ConsentStatus::Pending => return Ok(Verdict::ConsentPending),
            Some(g) if !g.allows_send(now) => return Ok(Verdict::ConsentWithdrawn),
            Some(_) => {}
        }
        if campaign.needs_hipaa_authorization() && !hipaa_authorized(&grants, now) {
            return Ok(Verdict::NoHipaaAuthorization);
        }
        // Decrypt only what the segment reads (not even the email).
        let custom = campaign.segment.custom_codes();
        let wanted = |code: u8| needed.iter().any(|a| a.code() == code) || custom.contains(&code);
        let (_, profile) = self.envelope.open_where(&record.id, &record.sealed, wanted).await?;
        if campaign.segment.matches(&profile, today_utc()) { Ok(Verdict::Include) } else { Ok(Verdict::NotInSegment) }
    }
}
