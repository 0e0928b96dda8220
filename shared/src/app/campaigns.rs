//! Campaign creation, launch, lifecycle and report.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{App, AppError};
use crate::domain::{
    Campaign, CampaignId, CampaignPurpose, CampaignStatus, ConsentCategory, EmailAddress, FanoutShardJob, InvalidField,
    Segment, Sender, TemplateSource, Tracking,
};
use crate::mail::CompiledTemplate;
use crate::ports::CampaignRecord;

/// A campaign as an admin submits it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub name: String,
    pub category: String,
    pub segment: serde_json::Value,
    pub template: TemplateSource,
    /// PHI-personalized marketing (the body may use PHI attributes).
    #[serde(default)]
    pub phi_personalized: bool,
    /// `marketing`, `treatment` or `operations`; required with `phi_personalized`.
    #[serde(default)]
    pub purpose: Option<CampaignPurpose>,
    /// First-party open and click tracking; off unless set.
    #[serde(default)]
    pub tracking: Tracking,
    pub sender: Option<SenderInput>,
    /// Launching before this time schedules fan-out for it (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub launch_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SenderInput {
    pub name: String,
    pub address: String,
}

/// A campaign with its template compiled, cached per process.
pub struct LoadedCampaign {
    pub campaign: Campaign,
    pub template: CompiledTemplate,
    /// The HTML template's trackable links, by number (see `mail::tracking`).
    pub links: Vec<String>,
}

impl CampaignInput {
    fn parse(self, settings: &crate::config::Settings) -> Result<(Campaign, CompiledTemplate), InvalidField> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(InvalidField::new("name", "must be 1 to 200 characters without control characters"));
        }
        let category = ConsentCategory::parse(&self.category)
            .ok()
            .filter(|c| settings.categories.contains(c))
            .ok_or_else(|| InvalidField::new("category", format!("unknown category '{}'", self.category)))?;
        let segment = Segment::from_json(self.segment, &settings.schema)
            .map_err(|e| InvalidField::new("segment", e.to_string()))?;
        let template = CompiledTemplate::compile(&self.template)
            .map_err(|e| InvalidField::new(format!("template.{}", e.part), e.message))?;
        crate::mail::lint(&self.template, self.phi_personalized)?;
        if self.phi_personalized && self.purpose.is_none() {
            return Err(InvalidField::new(
                "purpose",
                "a PHI-personalized campaign needs a purpose: 'marketing' (sent only to patients with a valid HIPAA \
                 authorization), 'treatment' or 'operations'",
            ));
        }
        let sender = match self.sender {
            None => settings.default_sender.clone(),
            Some(s) => {
                let name = s.name.trim();
                if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                    return Err(InvalidField::new("sender.name", "must be 1 to 100 characters"));
                }
                Sender {
                    name: name.to_owned(),
                    address: EmailAddress::parse(&s.address)
                        .map_err(|e| InvalidField::new("sender.address", e.to_string()))?,
                }
            }
        };
        let campaign = Campaign {
            id: CampaignId::new_random(),
            name,
            category,
            segment,
            template: self.template,
            phi_personalized: self.phi_personalized,
            purpose: self.purpose,
            tracking: self.tracking,
            sender,
            launch_at: self.launch_at,
            status: CampaignStatus::Draft,
            shards: settings.throughput.fanout_shards,
            created_at: OffsetDateTime::now_utc(),
        };
        Ok((campaign, template))
    }
}

fn definition_json(c: &Campaign) -> String {
    serde_json::json!({
        "name": c.name,
        "category": c.category,
        "segment": c.segment.rule(),
        "template": c.template,
        "phi_personalized": c.phi_personalized,
        "purpose": c.purpose,
        "tracking": c.tracking,
        "sender": {"name": c.sender.name, "address": c.sender.address.as_str()},
        "launch_at": c.launch_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    })
    .to_string()
}

/// A stored campaign. Its segment is checked against today's schema: a
/// campaign reading an attribute removed from the schema no longer loads.
fn from_record(record: &CampaignRecord, schema: &crate::domain::ContactSchema) -> Result<Campaign, AppError> {
    let corrupt = |m: String| AppError::Store(crate::ports::StoreError::corrupt(m));
    let input: CampaignInput = serde_json::from_str(&record.definition).map_err(|e| corrupt(e.to_string()))?;
    let sender = input.sender.ok_or_else(|| corrupt("campaign has no sender".into()))?;
    Ok(Campaign {
        id: record.id,
        name: input.name,
        category: ConsentCategory::parse(&input.category).map_err(|e| corrupt(e.to_string()))?,
        segment: Segment::from_json(input.segment, schema).map_err(|e| corrupt(e.to_string()))?,
        template: input.template,
        phi_personalized: input.phi_personalized,
        purpose: input.purpose,
        tracking: input.tracking,
        sender: Sender {
            name: sender.name,
            address: EmailAddress::parse(&sender.address).map_err(|e| corrupt(e.to_string()))?,
        },
        launch_at: input.launch_at,
        status: record.status,
        shards: record.shards,
        created_at: record.created_at,
    })
}

impl App {
    pub async fn create_campaign(&self, input: CampaignInput) -> Result<CampaignId, AppError> {
        let (campaign, _) = input.parse(&self.settings)?;
        let record = CampaignRecord {
            id: campaign.id,
            definition: definition_json(&campaign),
            status: CampaignStatus::Draft,
            shards: campaign.shards,
            created_at: campaign.created_at,
            paused_reason: None,
        };
        self.ports.campaigns.create(&record).await?;
        Ok(campaign.id)
    }

    /// The campaign with its compiled template; definitions never change
    /// after creation, so the cache needs no invalidation (status is read
    /// fresh through `campaign_status`).
    pub async fn load_campaign(&self, id: &CampaignId) -> Result<Arc<LoadedCampaign>, AppError> {
        if let Some(hit) = self.campaign_cache.lock().expect("campaign cache lock").get(id) {
            return Ok(hit.clone());
        }
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let campaign = from_record(&record, &self.settings.schema)?;
        let template = CompiledTemplate::compile(&campaign.template)
            .map_err(|e| AppError::Store(crate::ports::StoreError::corrupt(e.to_string())))?;
        let links = crate::mail::tracking::trackable_links(&campaign.template.html);
        let loaded = Arc::new(LoadedCampaign { campaign, template, links });
        self.campaign_cache.lock().expect("campaign cache lock").insert(*id, loaded.clone());
        Ok(loaded)
    }

    /// Starts fan-out. Launching again while fanning out re-sends the shard
    /// messages, which is harmless: shards resume from their checkpoints.
    pub async fn launch_campaign(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let launch_at = self.load_campaign(id).await?.campaign.launch_at;
        let later = launch_at.filter(|at| *at > OffsetDateTime::now_utc());
        match record.status {
            CampaignStatus::Draft if later.is_some() => {
                if !self.ports.campaigns.transition(id, CampaignStatus::Draft, CampaignStatus::Scheduled).await? {
                    return Err(AppError::Conflict("campaign changed while launching".into()));
                }
                self.wait_for_launch(id, later).await?;
                return Ok(CampaignStatus::Scheduled);
            }
            // Launching again re-sends the wake-up message; extra ones are harmless.
            CampaignStatus::Scheduled => {
                self.wait_for_launch(id, later).await?;
                return Ok(CampaignStatus::Scheduled);
            }
            CampaignStatus::Draft => {
                if !self.ports.campaigns.transition(id, CampaignStatus::Draft, CampaignStatus::FanningOut).await? {
                    return Err(AppError::Conflict("campaign changed while launching".into()));
                }
            }
            CampaignStatus::FanningOut => {}
            other => return Ok(other),
        }
        self.start_fanout(id, record.shards).await?;
        Ok(CampaignStatus::FanningOut)
    }

    /// A scheduled campaign's wake-up: fan-out starts if its time has come,
    /// else the message goes back on the queue for the rest of the wait (in
    /// hops of at most 15 minutes). A cancelled campaign's wake-up is dropped.
    pub async fn process_scheduled_launch(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        if record.status != CampaignStatus::Scheduled {
            return Ok(record.status);
        }
        let launch_at = self.load_campaign(id).await?.campaign.launch_at;
        if launch_at.is_some_and(|at| at > OffsetDateTime::now_utc()) {
            self.wait_for_launch(id, launch_at).await?;
            return Ok(CampaignStatus::Scheduled);
        }
        if !self.ports.campaigns.transition(id, CampaignStatus::Scheduled, CampaignStatus::FanningOut).await? {
            // Cancelled, or another wake-up won: either way nothing more to do here.
            return Ok(self.ports.campaigns.get(id).await?.map_or(CampaignStatus::Cancelled, |r| r.status));
        }
        self.start_fanout(id, record.shards).await?;
        tracing::info!(campaign_id = %id, "scheduled campaign launched");
        Ok(CampaignStatus::FanningOut)
    }

    async fn wait_for_launch(&self, id: &CampaignId, at: Option<OffsetDateTime>) -> Result<(), AppError> {
        let wait = at.map_or(std::time::Duration::ZERO, |at| {
            std::time::Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or_default()
        });
        let body = crate::domain::ScheduledLaunchJob { launch_campaign_id: *id }.to_body();
        self.ports.fanout_queue.send_delayed(&body, wait.min(crate::ports::MAX_DELAY)).await?;
        Ok(())
    }

    async fn start_fanout(&self, id: &CampaignId, shards: u16) -> Result<(), AppError> {
        let jobs: Vec<String> =
            (0..shards).map(|shard| FanoutShardJob { campaign_id: *id, shard, shards }.to_body()).collect();
        for chunk in jobs.chunks(10) {
            self.ports.fanout_queue.send_batch(chunk).await?;
        }
        Ok(())
    }

    /// Moves the campaign on when its stage is finished: fan-out done → sending,
    /// every emitted job in a terminal state → completed. Never earlier.
    pub async fn advance_campaign(&self, id: &CampaignId) -> Result<CampaignStatus, AppError> {
        let record = self.ports.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let shards = self.ports.campaigns.shards(id).await?;
        let all_done = shards.len() == usize::from(record.shards) && shards.iter().all(|s| s.done);
        let mut status = record.status;
        if status == CampaignStatus::FanningOut
            && all_done
            && self.ports.campaigns.transition(id, CampaignStatus::FanningOut, CampaignStatus::Sending).await?
        {
            status = CampaignStatus::Sending;
        }
        if status == CampaignStatus::Sending {
            let emitted: u64 = shards.iter().map(|s| s.emitted).sum();
            let counts = self.ports.ledger.counts(id).await?;
            if counts.sent + counts.skipped + counts.failed >= emitted
                && self.ports.campaigns.transition(id, CampaignStatus::Sending, CampaignStatus::Completed).await?
            {
                status = CampaignStatus::Completed;
            }
        }
        Ok(status)
    }
}
