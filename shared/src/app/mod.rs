//! Use cases. Each is a service that holds only the ports it uses, built
//! once from one `Ports` value by `App::new`, the composition root. They
//! speak only to ports (and read the time from the clock port), so the same
//! code runs in Lambda and in the embedded stack, and each can be unit
//! tested with in-memory adapters and a manual clock.
//!
//! | service | file | what |
//! |---|---|---|
//! | `ConsentIntake` | `consent.rs` | form submissions and double opt-in confirmation |
//! | `ConsentLedger` | `consent_ledger.rs` | appending consent evidence, sealing proof, withdrawal |
//! | `Preferences`, `Unsubscribe` | `preferences.rs`, `unsubscribe.rs` | the patient's own changes |
//! | `ContactAdmin`, `HipaaAuthorizations` | `contacts.rs`, `contact_views.rs`, `authorization.rs` | admin contact work |
//! | `CampaignAdmin` | `campaigns.rs`, `preview.rs` | creating campaigns and previewing templates |
//! | `CampaignCatalog` | `catalog.rs` | loading a campaign with its compiled template (cached) |
//! | `CampaignLifecycle` | `control.rs` | launch, schedule, advance, pause, cancel, resume, retry |
//! | `Fanout`, `AudienceEstimator`, `AudienceJudge` | `fanout.rs`, `audience.rs`, `judge.rs` | who a campaign reaches |
//! | `Sender` | `send.rs` | one send job, exactly once |
//! | `EventConsumer`, `Counters`, `Tracking` | `events.rs`, `counters.rs`, `tracking.rs` | provider and first-party events |
//! | `JourneyAdmin`, `JourneyRunner`, `JourneyEntries`, `JourneySimulator` | `journey_admin.rs`, `journey_runner.rs`, `journey_entry.rs`, `journey_facts.rs`, `journeys.rs`, `journey_report.rs`, `journey_simulation.rs` | journeys: definitions, entry (on sign-up, on events, the daily entry scan), the timer sweep, the per-step report, the simulation before launch |
//! | `Reports` | `report.rs`, `report_html.rs` | a campaign's report |
//! | `Auditor` | `audit.rs` | the PHI-access audit log |
//! | `KeyRotation` | `keys.rs` | customer-key rotation and re-sealing |

pub(crate) mod audience;
pub(crate) mod audit;
pub(crate) mod authorization;
pub(crate) mod campaign_list;
pub mod campaigns;
pub(crate) mod catalog;
pub(crate) mod consent;
pub(crate) mod consent_import;
pub(crate) mod consent_ledger;
pub(crate) mod contact_views;
pub(crate) mod contacts;
pub(crate) mod control;
pub(crate) mod counters;
pub mod doctor;
pub(crate) mod error;
pub mod events;
pub(crate) mod fanout;
pub(crate) mod journey_admin;
#[cfg(test)]
mod journey_crash_tests;
pub mod journey_entry;
#[cfg(test)]
mod journey_entry_tests;
#[cfg(test)]
mod journey_events_tests;
mod journey_facts;
#[cfg(test)]
mod journey_local_time_tests;
pub mod journey_report;
pub mod journey_report_html;
pub mod journey_runner;
#[cfg(test)]
mod journey_runner_tests;
pub mod journey_simulation;
#[cfg(test)]
mod journey_simulation_tests;
pub mod journeys;
pub(crate) mod judge;
pub(crate) mod keys;
pub(crate) mod preferences;
pub(crate) mod preview;
pub(crate) mod recovery;
pub(crate) mod report;
pub(crate) mod report_html;
pub mod secure_message;
pub mod send;
pub(crate) mod tls_gaps;
pub(crate) mod tracking;
pub(crate) mod unsubscribe;

#[cfg(test)]
pub(crate) mod test_support;

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub use audience::AudienceEstimator;
pub use audit::Auditor;
pub use authorization::HipaaAuthorizations;
pub use campaigns::CampaignAdmin;
pub use catalog::CampaignCatalog;
pub use consent::ConsentIntake;
pub use consent_ledger::ConsentLedger;
pub use contacts::ContactAdmin;
pub use control::CampaignLifecycle;
pub use counters::{BatchCounts, Counters};
pub use error::AppError;
pub use events::EventConsumer;
pub use fanout::Fanout;
pub use journey_admin::JourneyAdmin;
pub use journey_entry::JourneyEntries;
pub use journey_report::JourneyReport;
pub use journey_runner::JourneyRunner;
pub use journey_simulation::JourneySimulator;
pub use judge::AudienceJudge;
pub use keys::KeyRotation;
pub use preferences::Preferences;
pub use report::Reports;
pub use secure_message::SecureMessages;
pub use send::Sender;
pub use tracking::Tracking;
pub use unsubscribe::Unsubscribe;

use crate::config::{RateShare, Settings};
use crate::crypto::{Envelope, Keyring};
use crate::ports::{
    ActivityStore, AuditLog, CampaignStore, Clock, ConsentStore, ContactStore, IntakeStore, JourneyStore,
    MailTransport, Metrics, Queue, SecureMessageStore, SendLedger, SuppressionList,
};

/// The outside systems the use cases need.
#[derive(Clone)]
pub struct Ports {
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentStore>,
    pub suppression: Arc<dyn SuppressionList>,
    pub audit: Arc<dyn AuditLog>,
    pub activity: Arc<dyn ActivityStore>,
    pub intake: Arc<dyn IntakeStore>,
    pub campaigns: Arc<dyn CampaignStore>,
    pub ledger: Arc<dyn SendLedger>,
    pub secure_messages: Arc<dyn SecureMessageStore>,
    pub journeys: Arc<dyn JourneyStore>,
    pub fanout_queue: Arc<dyn Queue>,
    pub send_queue: Arc<dyn Queue>,
    pub transport: Arc<dyn MailTransport>,
    pub metrics: Arc<dyn Metrics>,
    pub clock: Arc<dyn Clock>,
}

/// The composition root: every use-case service, wired once. It has no use
/// cases of its own; handlers and workers call the service they need
/// (`app.sender.process(..)`, `app.consent.submit(..)`). The ports, keys and
/// settings stay reachable for wiring and tests.
pub struct App {
    pub ports: Ports,
    pub envelope: Arc<Envelope>,
    pub keyring: Arc<Keyring>,
    pub settings: Arc<Settings>,
    pub audit: Arc<Auditor>,
    pub catalog: Arc<CampaignCatalog>,
    pub consent_ledger: Arc<ConsentLedger>,
    pub consent: ConsentIntake,
    pub preferences: Arc<Preferences>,
    pub unsubscribe: Unsubscribe,
    pub contacts: ContactAdmin,
    pub authorizations: HipaaAuthorizations,
    pub campaigns: CampaignAdmin,
    pub lifecycle: Arc<CampaignLifecycle>,
    pub fanout: Fanout,
    pub audience: AudienceEstimator,
    pub sender: Sender,
    pub secure_messages: Arc<SecureMessages>,
    pub events: Arc<EventConsumer>,
    pub tracking: Tracking,
    pub reports: Reports,
    pub keys: KeyRotation,
    pub journeys: JourneyAdmin,
    pub journey_runner: Arc<JourneyRunner>,
    pub journey_entries: JourneyEntries,
    pub journey_simulator: JourneySimulator,
}

/// This process's share of `SendRatePerSecond` as a limiter. A burst of one
/// keeps every one-second window at or under the rate.
fn rate_limiter(rate_share: RateShare) -> Arc<DefaultDirectRateLimiter> {
    let quota = Quota::with_period(rate_share.interval())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
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
        let p = &ports;
        // One budget for campaign mail and confirmations: both leave by the same transport.
        let limiter = rate_limiter(rate_share);
        let clock = p.clock.clone();
        let audit = Arc::new(Auditor::new(p.audit.clone(), clock.clone()));
        let catalog = Arc::new(CampaignCatalog::new(p.campaigns.clone(), settings.schema.clone()));
        let consent_ledger = Arc::new(ConsentLedger::new(p.consent.clone(), envelope.clone(), clock.clone()));
        let counters = Arc::new(Counters::new(p.campaigns.clone(), p.metrics.clone(), settings.reputation));
        let secure_messages = Arc::new(SecureMessages {
            store: p.secure_messages.clone(),
            contacts: p.contacts.clone(),
            transport: p.transport.clone(),
            catalog: catalog.clone(),
            audit: audit.clone(),
            envelope: envelope.clone(),
            keyring: keyring.clone(),
            settings: settings.clone(),
            limiter: limiter.clone(),
            clock: clock.clone(),
        });
        let lifecycle = Arc::new(CampaignLifecycle {
            campaigns: p.campaigns.clone(),
            ledger: p.ledger.clone(),
            fanout_queue: p.fanout_queue.clone(),
            send_queue: p.send_queue.clone(),
            catalog: catalog.clone(),
            reputation: settings.reputation,
            clock: clock.clone(),
            retry: crate::domain::RetryPolicy::new(settings.throughput.max_receive_count),
            visibility: settings.throughput.visibility_timeout(),
        });
        let judge = Arc::new(AudienceJudge {
            suppression: p.suppression.clone(),
            consent: p.consent.clone(),
            activity: p.activity.clone(),
            ledger: p.ledger.clone(),
            envelope: envelope.clone(),
            frequency_cap: settings.frequency_cap,
            clock: clock.clone(),
        });
        let preferences = Arc::new(Preferences {
            contacts: p.contacts.clone(),
            consent: p.consent.clone(),
            suppression: p.suppression.clone(),
            consent_ledger: consent_ledger.clone(),
            keyring: keyring.clone(),
            settings: settings.clone(),
            clock: clock.clone(),
        });
        let events = Arc::new(EventConsumer {
            ledger: p.ledger.clone(),
            contacts: p.contacts.clone(),
            suppression: p.suppression.clone(),
            activity: p.activity.clone(),
            campaigns: p.campaigns.clone(),
            metrics: p.metrics.clone(),
            consent_ledger: consent_ledger.clone(),
            counters: counters.clone(),
            lifecycle: lifecycle.clone(),
            send_queue: p.send_queue.clone(),
            catalog: catalog.clone(),
            settings: settings.clone(),
            clock: clock.clone(),
        });
        let journey_runner = Arc::new(JourneyRunner {
            journeys: p.journeys.clone(),
            contacts: p.contacts.clone(),
            ledger: p.ledger.clone(),
            judge: judge.clone(),
            send_queue: p.send_queue.clone(),
            envelope: envelope.clone(),
            settings: settings.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
        });
        App {
            consent: ConsentIntake {
                contacts: p.contacts.clone(),
                consent: p.consent.clone(),
                activity: p.activity.clone(),
                intake: p.intake.clone(),
                send_queue: p.send_queue.clone(),
                transport: p.transport.clone(),
                limiter: limiter.clone(),
                consent_ledger: consent_ledger.clone(),
                journeys: journey_runner.clone(),
                envelope: envelope.clone(),
                keyring: keyring.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            unsubscribe: Unsubscribe {
                contacts: p.contacts.clone(),
                suppression: p.suppression.clone(),
                catalog: catalog.clone(),
                consent_ledger: consent_ledger.clone(),
                counters: counters.clone(),
                preferences: preferences.clone(),
                keyring: keyring.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            contacts: ContactAdmin {
                contacts: p.contacts.clone(),
                consent: p.consent.clone(),
                suppression: p.suppression.clone(),
                consent_ledger: consent_ledger.clone(),
                audit: audit.clone(),
                envelope: envelope.clone(),
                keyring: keyring.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            authorizations: HipaaAuthorizations {
                contacts: p.contacts.clone(),
                consent_ledger: consent_ledger.clone(),
                clock: clock.clone(),
            },
            campaigns: CampaignAdmin {
                campaigns: p.campaigns.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            fanout: Fanout {
                campaigns: p.campaigns.clone(),
                contacts: p.contacts.clone(),
                fanout_queue: p.fanout_queue.clone(),
                send_queue: p.send_queue.clone(),
                catalog: catalog.clone(),
                judge: judge.clone(),
                audit: audit.clone(),
                lifecycle: lifecycle.clone(),
                page_size: settings.fanout_page_size,
            },
            audience: AudienceEstimator {
                contacts: p.contacts.clone(),
                catalog: catalog.clone(),
                judge: judge.clone(),
                audit: audit.clone(),
                keyring: keyring.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            secure_messages: secure_messages.clone(),
            sender: Sender {
                ledger: p.ledger.clone(),
                campaigns: p.campaigns.clone(),
                contacts: p.contacts.clone(),
                suppression: p.suppression.clone(),
                consent: p.consent.clone(),
                activity: p.activity.clone(),
                transport: p.transport.clone(),
                metrics: p.metrics.clone(),
                catalog: catalog.clone(),
                audit: audit.clone(),
                counters,
                envelope: envelope.clone(),
                keyring: keyring.clone(),
                settings: settings.clone(),
                limiter,
                tls_gaps: Default::default(),
                secure: secure_messages.clone(),
                clock: clock.clone(),
            },
            tracking: Tracking {
                catalog: catalog.clone(),
                events: events.clone(),
                keyring: keyring.clone(),
                clock: clock.clone(),
            },
            reports: Reports {
                campaigns: p.campaigns.clone(),
                ledger: p.ledger.clone(),
                catalog: catalog.clone(),
                settings: settings.clone(),
                lifecycle: lifecycle.clone(),
            },
            journeys: JourneyAdmin {
                journeys: p.journeys.clone(),
                campaigns: p.campaigns.clone(),
                ledger: p.ledger.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            },
            journey_runner: journey_runner.clone(),
            journey_entries: JourneyEntries {
                journeys: p.journeys.clone(),
                contacts: p.contacts.clone(),
                judge: judge.clone(),
                envelope: envelope.clone(),
                audit: audit.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
                runner: journey_runner.clone(),
            },
            journey_simulator: JourneySimulator {
                journeys: p.journeys.clone(),
                contacts: p.contacts.clone(),
                judge,
                envelope: envelope.clone(),
                audit: audit.clone(),
                settings: settings.clone(),
                keyring: keyring.clone(),
                clock: clock.clone(),
            },
            keys: KeyRotation { contacts: p.contacts.clone(), envelope: envelope.clone(), audit: audit.clone(), clock },
            events,
            preferences,
            lifecycle,
            consent_ledger,
            catalog,
            audit,
            ports,
            envelope,
            keyring,
            settings,
        }
    }
}
