//! Campaign creation: an admin's definition parsed, linted and stored as a
//! draft. Launch and the lifecycle after it are in `control.rs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AppError;
use crate::domain::{
    Campaign, CampaignId, CampaignPurpose, CampaignStatus, ConsentCategory, EmailAddress, InvalidField, Segment,
    Sender, TemplateSource, TlsFallback, Tracking,
};
use crate::mail::{CompiledTemplate, LintContext};
use crate::ports::{CampaignRecord, CampaignStore, Clock};

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
    /// `drop` or `secure_message` for recipients without TLS; default: the stack's `TLS_FALLBACK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fallback: Option<TlsFallback>,
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

impl CampaignInput {
    /// Runs every check `create` runs (name, category, segment, template
    /// and its lint, purpose, sender) against `settings`, storing nothing:
    /// `carepost campaign validate` uses it without a stack.
    pub fn validate(self, settings: &crate::config::Settings) -> Result<(), InvalidField> {
        self.parse(settings, OffsetDateTime::now_utc()).map(|_| ())
    }

    fn parse(
        self,
        settings: &crate::config::Settings,
        now: OffsetDateTime,
    ) -> Result<(Campaign, CompiledTemplate), InvalidField> {
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
        let marketing = self.purpose == Some(CampaignPurpose::Marketing);
        if marketing && settings.postal_address.is_none() {
            return Err(InvalidField::new(
                "purpose",
                "marketing mail must show the sender's postal address: set POSTAL_ADDRESS (template parameter \
                 PostalAddress)",
            ));
        }
        crate::mail::lint(&self.template, LintContext { phi_personalized: self.phi_personalized, marketing })?;
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
            tls_fallback: self.tls_fallback,
            sender,
            launch_at: self.launch_at,
            status: CampaignStatus::Draft,
            shards: settings.throughput.fanout_shards,
            created_at: now,
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
        "tls_fallback": c.tls_fallback,
        "sender": {"name": c.sender.name, "address": c.sender.address.as_str()},
        "launch_at": c.launch_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    })
    .to_string()
}

/// A stored campaign. Its segment is checked against today's schema: a
/// campaign reading an attribute removed from the schema no longer loads.
pub(super) fn from_record(
    record: &CampaignRecord,
    schema: &crate::domain::ContactSchema,
) -> Result<Campaign, AppError> {
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
        tls_fallback: input.tls_fallback,
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

/// Creates campaigns and previews templates (`preview.rs`).
pub struct CampaignAdmin {
    pub(super) campaigns: Arc<dyn CampaignStore>,
    pub(super) settings: Arc<crate::config::Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl CampaignAdmin {
    pub async fn create(&self, input: CampaignInput) -> Result<CampaignId, AppError> {
        let (campaign, _) = input.parse(&self.settings, self.clock.now())?;
        let record = CampaignRecord {
            id: campaign.id,
            definition: definition_json(&campaign),
            status: CampaignStatus::Draft,
            shards: campaign.shards,
            created_at: campaign.created_at,
            paused_reason: None,
        };
        self.campaigns.create(&record).await?;
        Ok(campaign.id)
    }
}
