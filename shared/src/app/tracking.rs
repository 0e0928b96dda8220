//! First-party opens and clicks (`/t/o/{token}`, `/t/c/{token}`), counted
//! like the provider's Open and Click events: once per message, people and
//! machines apart. A click goes only to the campaign's own link at the
//! token's number; anything else is a bad token.

use std::sync::Arc;

use super::events::EventOutcome;
use super::{AppError, CampaignCatalog, EventConsumer};
use crate::crypto::{Keyring, TokenPurpose, VerifiedTracking};
use crate::domain::{CampaignCounter, CampaignId, Sensitive, engagement};
use crate::ports::Clock;

/// Who fetched the pixel or followed the link, as far as we judge it (a
/// user agent is PHI: `Sensitive`).
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub user_agent: Sensitive<Option<&'a str>>,
    pub head: bool,
}

pub struct Tracking {
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) events: Arc<EventConsumer>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Tracking {
    fn verify_tracking(&self, purpose: TokenPurpose, token: &str) -> Result<VerifiedTracking, AppError> {
        self.keyring.tokens.verify_tracking(purpose, token, self.clock.now()).map_err(|_| AppError::BadToken)
    }

    async fn count_tracked(
        &self,
        verified: &VerifiedTracking,
        person: CampaignCounter,
        machine: CampaignCounter,
        link: Option<crate::domain::LinkKey>,
        by: Requester<'_>,
    ) -> Result<EventOutcome, AppError> {
        if verified.expired {
            return Ok(EventOutcome::Ignored);
        }
        let counter = if engagement::is_machine(*by.user_agent.expose(), by.head) { machine } else { person };
        let campaign = CampaignId::from_bytes(verified.campaign);
        self.events.apply_mark(&campaign, &verified.contact_id, counter, link, self.clock.now()).await
    }

    /// Counts an open of the message the pixel token belongs to.
    pub async fn open(&self, token: &str, by: Requester<'_>) -> Result<EventOutcome, AppError> {
        let verified = self.verify_tracking(TokenPurpose::TrackOpen, token)?;
        self.catalog.load(&CampaignId::from_bytes(verified.campaign)).await.map_err(not_found_is_bad_token)?;
        self.count_tracked(&verified, CampaignCounter::Opened, CampaignCounter::OpenedMachine, None, by).await
    }

    /// Counts the click and returns where it goes: the campaign's link at
    /// the token's number, never a URL from the request.
    pub async fn click(&self, token: &str, by: Requester<'_>) -> Result<String, AppError> {
        let verified = self.verify_tracking(TokenPurpose::TrackClick, token)?;
        let loaded =
            self.catalog.load(&CampaignId::from_bytes(verified.campaign)).await.map_err(not_found_is_bad_token)?;
        let link = loaded.links.get(usize::from(verified.link)).ok_or(AppError::BadToken)?;
        let key = crate::domain::LinkKey::of_number(verified.link);
        self.count_tracked(&verified, CampaignCounter::Clicked, CampaignCounter::ClickedMachine, Some(key), by).await?;
        Ok(crate::mail::tracking::redirect_target(link))
    }
}

fn not_found_is_bad_token(e: AppError) -> AppError {
    match e {
        AppError::NotFound(_) => AppError::BadToken,
        other => other,
    }
}
