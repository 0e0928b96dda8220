//! The one settings source of both runtimes, and the settings the use cases
//! read.
//!
//! [`Knobs`] is one deserialisable structure with defaults. The Lambda
//! runtime loads it from the environment the SAM template sets
//! (`SEND_RATE_PER_SECOND`, `FORMS_JSON`, …); the embedded runtime from the
//! same names prefixed `CAREPOST_` and from the CLI's flags, which win.
//! [`Knobs::validate`] checks it once, at start, and builds [`Settings`];
//! every error names the setting. Throughput knobs carry the names of the
//! SAM template's parameters so operators tune one vocabulary.

use std::time::Duration;

use crate::domain::{ConsentCategory, ContactSchema, PublicBaseUrl, Sender};
use crate::forms::FormsConfig;

pub use crate::domain::policy::{DEFAULT_MIN_CELL, FrequencyCap, ReputationGuard};
pub use crate::forms::{EXAMPLE_CONSENT_TEXT, FormDefinition, sha256_hex};
pub use knobs::{KNOB_NAMES, Knobs, Runtime, SettingsError, Vars, text_knob};

mod knobs;

/// DESIGN §5. Defaults suit a laptop; the SAM template sets them in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Throughput {
    /// `SendRatePerSecond`: the account-wide sending rate.
    pub send_rate_per_second: u32,
    /// `SenderMaxConcurrency`: concurrent senders (Lambda: ESM maximum concurrency).
    pub sender_max_concurrency: u32,
    /// `SenderBatchSize`: send jobs per receive.
    pub sender_batch_size: u32,
    /// `SenderBatchingWindowSeconds`: how long a receive waits for a batch.
    pub sender_batching_window_seconds: u32,
    /// `FanoutShards`: parallel-scan segments per campaign.
    pub fanout_shards: u16,
    /// `FanoutMaxConcurrency`: concurrent fan-out workers.
    pub fanout_max_concurrency: u32,
    /// `VisibilityTimeoutSeconds`: how long a received message stays hidden.
    pub visibility_timeout_seconds: u32,
    /// `MaxReceiveCount`: receives before a message goes to the dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for Throughput {
    fn default() -> Self {
        Self {
            send_rate_per_second: 14,
            sender_max_concurrency: 2,
            sender_batch_size: 10,
            sender_batching_window_seconds: 1,
            fanout_shards: 4,
            fanout_max_concurrency: 2,
            visibility_timeout_seconds: 30,
            max_receive_count: 5,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} {message}")]
pub struct ThroughputError {
    pub name: &'static str,
    pub message: &'static str,
}

impl Throughput {
    /// The same limits the SAM template's parameter constraints enforce.
    pub fn validate(&self) -> Result<(), ThroughputError> {
        let check = |ok: bool, name, message| if ok { Ok(()) } else { Err(ThroughputError { name, message }) };
        check((1..=10_000).contains(&self.send_rate_per_second), "SendRatePerSecond", "must be 1 to 10000")?;
        check((2..=1000).contains(&self.sender_max_concurrency), "SenderMaxConcurrency", "must be 2 to 1000")?;
        check((1..=10_000).contains(&self.sender_batch_size), "SenderBatchSize", "must be 1 to 10000")?;
        check(self.sender_batching_window_seconds <= 300, "SenderBatchingWindowSeconds", "must be 0 to 300")?;
        check((1..=1024).contains(&self.fanout_shards), "FanoutShards", "must be 1 to 1024")?;
        check((1..=1000).contains(&self.fanout_max_concurrency), "FanoutMaxConcurrency", "must be 1 to 1000")?;
        check(
            (1..=43_200).contains(&self.visibility_timeout_seconds),
            "VisibilityTimeoutSeconds",
            "must be 1 to 43200",
        )?;
        check((5..=1000).contains(&self.max_receive_count), "MaxReceiveCount", "must be 5 to 1000")?;
        Ok(())
    }

    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.visibility_timeout_seconds))
    }
}

/// One process's part of `SendRatePerSecond`, as a fraction where the split
/// does not divide evenly (50 / 4 = 12.5 per second, not 12).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateShare {
    interval: Duration,
}

impl RateShare {
    /// The whole account rate: one process whose tasks share one limiter.
    pub fn whole(throughput: &Throughput) -> RateShare {
        RateShare::split(throughput.send_rate_per_second, 1)
    }

    /// Each of `SenderMaxConcurrency` concurrent senders gets an equal share,
    /// so together they never pass the account rate.
    pub fn per_sender(throughput: &Throughput) -> RateShare {
        RateShare::split(throughput.send_rate_per_second, throughput.sender_max_concurrency)
    }

    fn split(rate: u32, senders: u32) -> RateShare {
        let (rate, senders) = (u64::from(rate.max(1)), u64::from(senders.max(1)));
        RateShare { interval: Duration::from_nanos(1_000_000_000 * senders / rate) }
    }

    /// Time between two sends of this share.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// A configured form collects an attribute the contact schema does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("form '{form}': field '{field}' is not in the contact schema")]
pub struct FieldNotInSchema {
    pub form: String,
    pub field: &'static str,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub public_base_url: PublicBaseUrl,
    /// At most N marketing emails per contact per window; `None`: no cap.
    pub frequency_cap: Option<FrequencyCap>,
    /// Every contact attribute the deployment stores, with its type and class.
    pub schema: std::sync::Arc<crate::domain::ContactSchema>,
    pub categories: Vec<ConsentCategory>,
    pub forms: Vec<FormDefinition>,
    pub default_sender: Sender,
    /// `POSTAL_ADDRESS`: shown in marketing mail as `{{ postal_address }}`.
    pub postal_address: Option<String>,
    pub throughput: Throughput,
    /// How long a double opt-in link stays valid.
    pub confirmation_ttl: Duration,
    /// How long an unsubscribe link in a campaign email stays valid.
    pub unsubscribe_ttl: Duration,
    /// Contacts read per fan-out page.
    pub fanout_page_size: usize,
    /// How long one audience-estimate call works before answering with a
    /// resume token: under API Gateway's 29-second limit.
    pub dry_run_budget: Duration,
    /// How long past the visibility timeout a claim is held after a lost
    /// provider answer, so the provider's Send event can settle it before
    /// anyone hands the message over again. Zero where the transport
    /// deduplicates itself (the outbox) or publishes no events (SMTP).
    pub acceptance_grace: Duration,
    /// When a campaign pauses itself for its bounce or complaint rate.
    pub reputation: ReputationGuard,
    /// How long send-ledger rows and contact activity are kept.
    pub retention: Duration,
    /// An address is suppressed after this many soft bounces …
    pub soft_bounce_limit: u32,
    /// … within this period.
    pub soft_bounce_window: Duration,
    /// Whether campaigns that opt in get first-party open and click
    /// tracking (the SMTP transport; SES tracks through its configuration set).
    /// `TLS_FALLBACK`: what a campaign that sets none does for a recipient
    /// whose server cannot do TLS.
    pub tls_fallback: crate::domain::TlsFallback,
    pub first_party_tracking: bool,
    /// Breakdowns in reports and estimates show counts below this as
    /// "fewer than N".
    pub min_cell: u64,
    /// The consent endpoint's per-client limits, unless a form sets its own.
    pub consent_limits: crate::forms::ConsentLimits,
}

pub const DEFAULT_DRY_RUN_BUDGET: Duration = Duration::from_secs(20);

/// How long send-ledger rows, their event marks and contact activity are
/// kept after their last change (DynamoDB TTL; the embedded sweeper).
/// Suppression and consent evidence never expire.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

impl Settings {
    /// Example settings for a local stack, benches and tests: the default
    /// knobs with `throughput`, validated as the embedded stack on
    /// `public_base_url` would (the example topics, form and sender).
    pub fn local(public_base_url: PublicBaseUrl, throughput: Throughput) -> Settings {
        let own_url = public_base_url.as_str().to_owned();
        Knobs::from(throughput).validate(&Runtime::Embedded { own_url }).expect("the example settings are valid")
    }

    /// The limits `form`'s requests are counted against: its own, where it
    /// sets them, else the deployment's.
    pub fn consent_limits(&self, form: &FormDefinition) -> crate::forms::ConsentLimits {
        let own = form.limits.unwrap_or_default();
        crate::forms::ConsentLimits {
            per_ip_per_hour: own.per_ip_per_hour.unwrap_or(self.consent_limits.per_ip_per_hour),
            per_address_per_hour: own.per_address_per_hour.unwrap_or(self.consent_limits.per_address_per_hour),
        }
    }

    pub fn form(&self, id: &str) -> Option<&FormDefinition> {
        self.forms.iter().find(|f| f.id == id)
    }

    /// Uses a deployment's own topics and forms.
    pub fn with_forms(mut self, config: FormsConfig) -> Settings {
        self.categories = config.categories;
        self.forms = config.forms;
        self
    }

    /// Uses a deployment's contact schema. A form field the schema does not
    /// hold is an error if the forms were configured (`configured_forms`);
    /// the built-in example form just stops offering it.
    pub fn with_schema(mut self, schema: ContactSchema, configured_forms: bool) -> Result<Settings, FieldNotInSchema> {
        for form in &mut self.forms {
            if let Some(missing) = form.fields.iter().find(|a| !schema.holds(**a))
                && configured_forms
            {
                return Err(FieldNotInSchema { form: form.id.clone(), field: missing.as_str() });
            }
            form.fields.retain(|a| schema.holds(*a));
        }
        self.schema = std::sync::Arc::new(schema);
        Ok(self)
    }

    /// The service's own origin (`scheme://host[:port]`), from which the
    /// example form posts.
    pub fn own_origin(&self) -> String {
        crate::forms::origin_of(self.public_base_url.as_str())
    }

    /// Whether a page on `origin` may post `form`.
    pub fn origin_allowed(&self, form: &FormDefinition, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        origin == self.own_origin().to_ascii_lowercase() || form.allowed_origins.iter().any(|o| o.as_str() == origin)
    }
}
