//! Use cases, one module each. They speak only to ports, so the same code
//! runs in Lambda and in the embedded stack.

pub mod audience;
pub mod audit;
pub mod authorization;
pub mod campaigns;
pub mod consent;
pub mod contact_views;
pub mod contacts;
pub mod control;
pub mod error;
pub mod events;
pub mod fanout;
pub mod keys;
pub mod preferences;
pub mod preview;
pub mod report;
pub mod report_html;
pub mod send;
pub mod tracking;
pub mod unsubscribe;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub use error::AppError;

use crate::config::{RateShare, Settings};
use crate::crypto::{Envelope, Keyring};
use crate::ports::{
    ActivityStore, AuditLog, CampaignStore, ConsentStore, ContactStore, MailTransport, Metrics, Queue, SendLedger,
    SuppressionList,
};

/// The outside systems the use cases need.
#[derive(Clone)]
pub struct Ports {
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentStore>,
    pub suppression: Arc<dyn SuppressionList>,
    pub audit: Arc<dyn AuditLog>,
    pub activity: Arc<dyn ActivityStore>,
    pub campaigns: Arc<dyn CampaignStore>,
    pub ledger: Arc<dyn SendLedger>,
    pub fanout_queue: Arc<dyn Queue>,
    pub send_queue: Arc<dyn Queue>,
    pub transport: Arc<dyn MailTransport>,
    pub metrics: Arc<dyn Metrics>,
}

/// Everything a use case needs: ports, keys and settings.
pub struct App {
    pub ports: Ports,
    pub envelope: Arc<Envelope>,
    pub keyring: Arc<Keyring>,
    pub settings: Arc<Settings>,
    /// This process's share of `SendRatePerSecond`.
    pub limiter: Arc<DefaultDirectRateLimiter>,
    campaign_cache: Mutex<HashMap<crate::domain::CampaignId, Arc<campaigns::LoadedCampaign>>>,
}

impl App {
    /// `rate_share` is this process's part of `SendRatePerSecond`: the whole
    /// rate for the embedded stack (one process, many tasks sharing one
    /// limiter), rate ÷ `SenderMaxConcurrency` per Lambda instance.
    pub fn new(
        ports: Ports,
        envelope: Arc<Envelope>,
        keyring: Arc<Keyring>,
        settings: Arc<Settings>,
        rate_share: RateShare,
    ) -> App {
        // A burst of one keeps every one-second window at or under the rate.
        let quota = Quota::with_period(rate_share.interval())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::MIN);
        App {
            ports,
            envelope,
            keyring,
            settings,
            limiter: Arc::new(RateLimiter::direct(quota)),
            campaign_cache: Mutex::new(HashMap::new()),
        }
    }
}
