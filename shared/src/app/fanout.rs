//! Fan-out: scan one shard of the contact table in pages, keep the contacts
//! the campaign may reach, and emit send jobs (IDs only) in batches of ten.
//! The cursor and counts are saved after each page, so a crash or a duplicate
//! shard message resumes; the send ledger absorbs any job emitted twice.

use std::time::Instant;

use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{
    Behaviour, CampaignStatus, ConsentStatus, ContactId, ExclusionCounts, FanoutMessage, FanoutShardJob, Segment,
    SendJob, ShardProgress, hipaa_authorized, today_utc,
};
use crate::ports::{ContactRecord, LedgerState, ShardSpec};

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
}

/// What fan-out reads for a whole page before judging its contacts.
pub(crate) struct PageFacts {
    suppressed: std::collections::HashSet<crate::domain::BlindIndex>,
    grants: std::collections::HashMap<ContactId, Vec<crate::domain::ConsentGrant>>,
}

/// Whether a contact is in a campaign's audience, or the first reason it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Include,
    NotInSegment,
    MissingAttribute,
    NoConsent,
    ConsentPending,
    ConsentWithdrawn,
    Suppressed,
    NoHipaaAuthorization,
    FrequencyCap,
}

impl Verdict {
    /// Adds an exclusion to its reason's count; true if the contact is included.
    pub(crate) fn tally(self, excluded: &mut ExclusionCounts) -> bool {
        let counter = match self {
            Verdict::Include => return true,
            Verdict::NotInSegment => &mut excluded.not_in_segment,
            Verdict::MissingAttribute => &mut excluded.missing_attribute,
            Verdict::NoConsent => &mut excluded.no_consent,
            Verdict::ConsentPending => &mut excluded.consent_pending,
            Verdict::ConsentWithdrawn => &mut excluded.consent_withdrawn,
            Verdict::Suppressed => &mut excluded.suppressed,
            Verdict::NoHipaaAuthorization => &mut excluded.no_hipaa_authorization,
            Verdict::FrequencyCap => &mut excluded.frequency_cap,
        };
        *counter += 1;
        false
    }

    /// Whether reaching this verdict decrypted the contact's segment attributes.
    pub(crate) fn decrypted(self) -> bool {
        matches!(self, Verdict::Include | Verdict::NotInSegment | Verdict::MissingAttribute)
    }
}

impl App {
    /// One message of the fan-out queue: a shard to scan, or a scheduled launch's wake-up.
    pub async fn process_fanout_message(
        &self,
        message: &FanoutMessage,
        deadline: Option<Instant>,
    ) -> Result<ShardOutcome, AppError> {
        match message {
            FanoutMessage::Shard(job) => self.process_fanout_shard(job, deadline).await,
            FanoutMessage::Launch(job) => {
                Ok(ShardOutcome::Launch(self.process_scheduled_launch(&job.launch_campaign_id).await?))
            }
        }
    }

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
        let page_size = self.settings.fanout_page_size;
        while !progress.done {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.ports.fanout_queue.send_batch(&[job.to_body()]).await?;
                return Ok(ShardOutcome::Continued);
            }
            let page = self.ports.contacts.scan_shard(spec, progress.cursor.as_deref(), page_size).await?;
            let facts = self.page_facts(&loaded.campaign, &page.records).await?;
            let mut jobs = Vec::new();
            let mut opened = 0usize;
            for record in &page.records {
                progress.evaluated += 1;
                let verdict = self.verdict(&loaded.campaign, record, &facts).await?;
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
                self.record_access(super::audit::FANOUT_ACTOR, "fanout.page", None, attributes, reason).await?;
            }
            // One call per page: the SQS adapter sends batches of ten, the embedded one a transaction.
            self.ports.send_queue.send_batch(&jobs).await?;
            progress.done = page.next.is_none();
            progress.cursor = page.next;
            self.ports.campaigns.save_shard(&job.campaign_id, &progress).await?;
        }
        self.advance_campaign(&job.campaign_id).await?;
        Ok(ShardOutcome::Done)
    }

    /// Suppression and consent of a page of contacts, read in two calls.
    pub(crate) async fn page_facts(
        &self,
        campaign: &crate::domain::Campaign,
        records: &[ContactRecord],
    ) -> Result<PageFacts, AppError> {
        let indexes: Vec<crate::domain::BlindIndex> = records.iter().map(|r| r.email_index.clone()).collect();
        let ids: Vec<ContactId> = records.iter().map(|r| r.id).collect();
        let categories = [campaign.category.clone(), crate::domain::ConsentCategory::hipaa_authorization()];
        Ok(PageFacts {
            suppressed: self.ports.suppression.suppressed_among(&indexes).await?,
            grants: self.ports.consent.grants_of(&ids, &categories).await?,
        })
    }

    pub(crate) async fn verdict(
        &self,
        campaign: &crate::domain::Campaign,
        record: &ContactRecord,
        facts: &PageFacts,
    ) -> Result<Verdict, AppError> {
        if facts.suppressed.contains(&record.email_index) {
            return Ok(Verdict::Suppressed);
        }
        let now = OffsetDateTime::now_utc();
        let grants = facts.grants.get(&record.id).map(Vec::as_slice).unwrap_or_default();
        match grants.iter().find(|g| g.category == campaign.category) {
            None => return Ok(Verdict::NoConsent),
            Some(g) if g.status == ConsentStatus::Pending => return Ok(Verdict::ConsentPending),
            Some(g) if !g.allows_send(now) => return Ok(Verdict::ConsentWithdrawn),
            Some(_) => {}
        }
        if campaign.needs_hipaa_authorization() && !hipaa_authorized(grants, now) {
            return Ok(Verdict::NoHipaaAuthorization);
        }
        if let Some(cap) = self.settings.frequency_cap
            && campaign.counts_toward_frequency_cap()
        {
            let sent = self.ports.activity.marketing_sends_since(&record.id, now - cap.window, &campaign.id).await?;
            if sent >= cap.max {
                return Ok(Verdict::FrequencyCap);
            }
        }
        // Decrypt only what the segment reads (not even the email).
        let read = campaign.segment.read_codes();
        let (_, profile) = self.envelope.open_where(&record.id, &record.sealed, |code| read.contains(&code)).await?;
        let behaviour = self.behaviour(&campaign.segment, &record.id).await?;
        Ok(if campaign.segment.matches(&profile, today_utc(), &behaviour) {
            Verdict::Include
        } else if campaign.segment.lacks_attribute(&profile) {
            Verdict::MissingAttribute
        } else {
            Verdict::NotInSegment
        })
    }

    /// What the segment's behavioural rules need to know of the contact.
    async fn behaviour(&self, segment: &Segment, contact: &ContactId) -> Result<Behaviour, AppError> {
        let mut behaviour = Behaviour::default();
        if segment.reads_engagement()
            && let Some(activity) = self.ports.activity.activity(contact).await?
        {
            behaviour.last_open = activity.last_open.map(|t| t.date());
            behaviour.last_click = activity.last_click.map(|t| t.date());
        }
        for campaign in segment.campaigns_read() {
            if let Some(LedgerState::Sent { .. }) = self.ports.ledger.state(campaign, contact).await? {
                behaviour.received.push(*campaign);
            }
        }
        Ok(behaviour)
    }
}
