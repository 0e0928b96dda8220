//! An administrator's work on journeys: store a definition (checked whole,
//! send steps linted as campaigns), list and read them, launch, pause,
//! resume, and revise a journey into a new version. Contacts finish the
//! version they entered; pausing holds every contact where it is with one
//! status change (`JourneyRunner` leaves a paused journey's contacts alone).

use std::sync::Arc;

use super::AppError;
use super::journeys::{check_send_steps, step_campaigns};
use crate::config::Settings;
use crate::domain::journey::Journey;
use crate::domain::{CampaignStatus, InvalidField, JourneyId};
use crate::ports::{CampaignRecord, CampaignStore, Clock, JourneyRecord, JourneyStatus, JourneyStore, SendLedger};

pub struct JourneyAdmin {
    pub(super) journeys: Arc<dyn JourneyStore>,
    pub(super) campaigns: Arc<dyn CampaignStore>,
    /// Read by the report: each send step's settled rows.
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl JourneyAdmin {
    /// Stores a journey as a draft; the definition is refused whole, with the
    /// step or field named, if anything in it is wrong.
    pub async fn create(&self, definition: &str) -> Result<JourneyId, AppError> {
        self.check(definition)?;
        let record = JourneyRecord {
            id: JourneyId::new_random(),
            version: 1,
            definition: definition.to_owned(),
            status: JourneyStatus::Draft,
            created_at: self.clock.now(),
        };
        if !self.journeys.create(&record).await? {
            return Err(AppError::Conflict("journey ID already taken".into()));
        }
        Ok(record.id)
    }

    pub async fn get(&self, id: &JourneyId) -> Result<JourneyRecord, AppError> {
        self.journeys.get(id).await?.ok_or(AppError::NotFound("journey"))
    }

    pub async fn list(&self) -> Result<Vec<JourneyRecord>, AppError> {
        Ok(self.journeys.list().await?)
    }

    /// Draft → live: each send step's campaign is stored (again harmlessly
    /// on a retry), then contacts may enter.
    pub async fn launch(&self, id: &JourneyId) -> Result<(), AppError> {
        let record = self.get(id).await?;
        self.store_step_campaigns(&record).await?;
        self.move_status(id, JourneyStatus::Draft, JourneyStatus::Live).await
    }

    pub async fn pause(&self, id: &JourneyId) -> Result<(), AppError> {
        self.move_status(id, JourneyStatus::Live, JourneyStatus::Paused).await
    }

    pub async fn resume(&self, id: &JourneyId) -> Result<(), AppError> {
        self.move_status(id, JourneyStatus::Paused, JourneyStatus::Live).await
    }

    /// A new version from `definition`; new entries walk it, contacts
    /// already in finish theirs. Answers the new version's number.
    pub async fn revise(&self, id: &JourneyId, definition: &str) -> Result<u32, AppError> {
        self.check(definition)?;
        let current = self.get(id).await?;
        if !self.journeys.add_version(id, current.version, definition).await? {
            return Err(AppError::Conflict("the journey was revised meanwhile: read it again".into()));
        }
        let revised = self.get(id).await?;
        if revised.status != JourneyStatus::Draft {
            self.store_step_campaigns(&revised).await?;
        }
        Ok(revised.version)
    }

    fn check(&self, definition: &str) -> Result<Journey, AppError> {
        let journey = Journey::parse(definition, &self.settings.schema)
            .map_err(|e| InvalidField::new("definition", e.to_string()))?;
        if !self.settings.categories.contains(journey.category()) {
            return Err(InvalidField::new("category", "not a consent category of this stack").into());
        }
        check_send_steps(&journey, self.settings.postal_address.is_some())
            .map_err(|e| InvalidField::new("definition", e.to_string()))?;
        Ok(journey)
    }

    async fn store_step_campaigns(&self, record: &JourneyRecord) -> Result<(), AppError> {
        let journey = self.check(&record.definition)?;
        for (_, campaign, input) in step_campaigns(&journey, &record.id, record.version, &self.settings.default_sender)
        {
            if self.campaigns.get(&campaign).await?.is_some() {
                continue;
            }
            let definition = serde_json::to_string(&input).map_err(|e| {
                AppError::Store(crate::ports::StoreError::corrupt(format!("step campaign does not serialize: {e}")))
            })?;
            let step = CampaignRecord {
                id: campaign,
                definition,
                // Sending from the start: the journey queues each job; no
                // fan-out ever runs for it.
                status: CampaignStatus::Sending,
                shards: 0,
                created_at: self.clock.now(),
                paused_reason: None,
            };
            self.campaigns.create(&step).await?;
        }
        Ok(())
    }

    async fn move_status(&self, id: &JourneyId, from: JourneyStatus, to: JourneyStatus) -> Result<(), AppError> {
        if self.journeys.transition(id, from, to).await? {
            return Ok(());
        }
        let now = self.get(id).await?.status;
        Err(AppError::Conflict(format!("the journey is {}, not {}", now.as_str(), from.as_str())))
    }
}
