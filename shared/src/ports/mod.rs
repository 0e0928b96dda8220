//! Ports: one trait per outside system. Each has an embedded adapter
//! (`adapters::embedded`) and an AWS adapter, and one contract test suite
//! (`tests/contracts` in this crate) that both must pass.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::domain::{
    AuditEntry, BlindIndex, CampaignCounter, CampaignId, CampaignStatus, ConsentCategory, ConsentEntry, ConsentGrant,
    ConsentRequestId, ConsentStatus, ContactId, ExternalId, IntakeId, ProviderMessageId, ShardProgress,
};
use crate::error::{Classify, ErrorClass};

mod activity;
mod audit;
mod campaigns;
mod clock;
mod consent;
mod contacts;
mod errors;
mod intake;
mod journeys;
mod keys;
mod ledger;
mod mail;
mod metrics;
mod queue;
mod secrets;
mod secure_messages;
mod sending_account;
mod suppression;

pub use activity::*;
pub use audit::*;
pub use campaigns::*;
pub use clock::*;
pub use consent::*;
pub use contacts::*;
pub use errors::*;
pub use intake::*;
pub use journeys::*;
pub use keys::*;
pub use ledger::*;
pub use mail::*;
pub use metrics::*;
pub use queue::*;
pub use secrets::*;
pub use secure_messages::*;
pub use sending_account::*;
pub use suppression::*;
