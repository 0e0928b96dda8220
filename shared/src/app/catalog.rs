//! Loading a campaign with its template compiled. Definitions never change
//! after creation, so each process caches what it loaded with no
//! invalidation; status is always read fresh from the campaign store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AppError;
use super::campaigns::from_record;
use crate::domain::{Campaign, CampaignId, ContactSchema};
use crate::mail::CompiledTemplate;
use crate::ports::{CampaignStore, StoreError};

/// A campaign with its template compiled, cached per process.
pub struct LoadedCampaign {
    pub campaign: Campaign,
    pub template: CompiledTemplate,
    /// The HTML template's trackable links, by number (see `mail::tracking`).
    pub links: Vec<String>,
}

pub struct CampaignCatalog {
    campaigns: Arc<dyn CampaignStore>,
    schema: Arc<ContactSchema>,
    cache: Mutex<HashMap<CampaignId, Arc<LoadedCampaign>>>,
}

impl CampaignCatalog {
    pub fn new(campaigns: Arc<dyn CampaignStore>, schema: Arc<ContactSchema>) -> CampaignCatalog {
        CampaignCatalog { campaigns, schema, cache: Mutex::new(HashMap::new()) }
    }

    /// The campaign with its compiled template.
    pub async fn load(&self, id: &CampaignId) -> Result<Arc<LoadedCampaign>, AppError> {
        if let Some(hit) = self.cache.lock().expect("campaign cache lock").get(id) {
            return Ok(hit.clone());
        }
        let record = self.campaigns.get(id).await?.ok_or(AppError::NotFound("campaign"))?;
        let campaign = from_record(&record, &self.schema)?;
        let template = CompiledTemplate::compile(&campaign.template)
            .map_err(|e| AppError::Store(StoreError::corrupt(e.to_string())))?;
        let links = crate::mail::tracking::trackable_links(&campaign.template.html);
        let loaded = Arc::new(LoadedCampaign { campaign, template, links });
        self.cache.lock().expect("campaign cache lock").insert(*id, loaded.clone());
        Ok(loaded)
    }
}
