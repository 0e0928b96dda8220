//! Settings shared by both runtimes. Throughput knobs carry the names of the
//! SAM template's parameters so operators tune one vocabulary.

use std::time::Duration;

use crate::domain::{ConsentCategory, EmailAddress, PublicBaseUrl, Sender};

/// DESIGN §5. Defaults suit a laptop; the SAM template sets them in AWS.
#[derive(Debug, Clone, Copy)]
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

/// A web form allowed to post consent (see `crate::forms` for the file).
#[derive(Debug, Clone)]
pub struct FormDefinition {
    pub id: String,
    /// Origins (`https://host[:port]`) whose pages may post this form. The
    /// service's own origin (the example form) is always allowed.
    pub allowed_origins: Vec<String>,
    pub categories: Vec<ConsentCategory>,
    /// The consent text the form shows.
    pub consent_text: String,
    /// SHA-256 (hex) of the consent text, kept as proof.
    pub consent_text_sha256: String,
    pub double_opt_in: bool,
    /// Where an HTML form submission is redirected (303) after it is received.
    pub thank_you_url: String,
    /// Where an HTML form submission that cannot be accepted is redirected
    /// (303, with `?error=<field>`); without one it gets the JSON error.
    pub error_url: Option<String>,
    /// The contact attributes the form may set (besides the email).
    pub fields: Vec<crate::domain::Attribute>,
}

/// At most `max` marketing emails per contact in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max: u32,
    pub window: Duration,
}

impl FrequencyCap {
    /// Parses `N/DAYS`, e.g. `3/7`: at most 3 marketing emails in any 7 days.
    pub fn parse(input: &str) -> Result<FrequencyCap, String> {
        let bad =
            || format!("frequency cap '{input}' must be N/DAYS, e.g. 3/7, with N from 1 to 100 and DAYS from 1 to 90");
        let (max, days) = input.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let days: u64 = days.trim().parse().map_err(|_| bad())?;
        if !(1..=100).contains(&max) || !(1..=90).contains(&days) {
            return Err(bad());
        }
        Ok(FrequencyCap { max, window: Duration::from_secs(days * 24 * 3600) })
    }
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
    pub first_party_tracking: bool,
    /// Breakdowns in reports and estimates show counts below this as
    /// "fewer than N".
    pub min_cell: u64,
}

pub const DEFAULT_DRY_RUN_BUDGET: Duration = Duration::from_secs(20);

/// A campaign pauses itself when, over the last `window`, its hard-bounce
/// rate passes `bounce_rate` or its complaint rate passes `complaint_rate`
/// (SES reviews an account at 5 % and 0.1 %). Rates are judged only once
/// the window holds `min_sample` deliveries and bounces, so one early
/// bounce cannot stop a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationGuard {
    pub bounce_rate: f64,
    pub complaint_rate: f64,
    pub window: Duration,
    /// Width of one time bucket of the window's counters.
    pub bucket: Duration,
    pub min_sample: u64,
}

impl Default for ReputationGuard {
    fn default() -> Self {
        Self {
            bounce_rate: 0.05,
            complaint_rate: 0.001,
            window: Duration::from_secs(3600),
            bucket: Duration::from_secs(300),
            min_sample: 200,
        }
    }
}

impl ReputationGuard {
    /// The time bucket `at` falls in.
    pub fn bucket_of(&self, at: time::OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.bucket.as_secs().max(1) as i64)
    }

    /// The first bucket of the window that ends at `now`.
    pub fn window_start(&self, now: time::OffsetDateTime) -> i64 {
        self.bucket_of(now - self.window) + 1
    }

    /// Why the campaign must pause, given the window's delivered, hard-bounced
    /// and complained counts; `None` while it is healthy.
    pub fn verdict(&self, delivered: u64, bounced_hard: u64, complained: u64) -> Option<String> {
        let minutes = self.window.as_secs() / 60;
        let percent = |x: f64| format!("{:.2}", x * 100.0).trim_end_matches('0').trim_end_matches('.').to_owned();
        let attempted = delivered + bounced_hard;
        if attempted >= self.min_sample.max(1) {
            let rate = bounced_hard as f64 / attempted as f64;
            if rate > self.bounce_rate {
                return Some(format!(
                    "bounce rate {}% over the last {minutes} minutes passed {}%",
                    percent(rate),
                    percent(self.bounce_rate)
                ));
            }
        }
        if delivered >= self.min_sample.max(1) {
            let rate = complained as f64 / delivered as f64;
            if rate > self.complaint_rate {
                return Some(format!(
                    "complaint rate {}% over the last {minutes} minutes passed {}%",
                    percent(rate),
                    percent(self.complaint_rate)
                ));
            }
        }
        None
    }
}

/// How long send-ledger rows, their event marks and contact activity are
/// kept after their last change (DynamoDB TTL; the embedded sweeper).
/// Suppression and consent evidence never expire.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

/// SHA-256 of the example consent text shipped with the project.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

pub const EXAMPLE_CONSENT_TEXT: &str = "I agree to receive emails from the clinic about the topics I ticked. \
I can withdraw at any time with the unsubscribe link in every email.";

impl Settings {
    /// Settings for a local stack: three example categories and one form.
    pub fn local(public_base_url: PublicBaseUrl, throughput: Throughput) -> Settings {
        let categories: Vec<ConsentCategory> = ["appointment-reminders", "wellness-tips", "condition-updates"]
            .into_iter()
            .map(|c| ConsentCategory::parse(c).expect("built-in category is valid"))
            .collect();
        Settings {
            public_base_url,
            schema: Default::default(),
            frequency_cap: None,
            forms: vec![FormDefinition {
                id: "web-signup".into(),
                allowed_origins: Vec::new(),
                categories: categories.clone(),
                consent_text: EXAMPLE_CONSENT_TEXT.into(),
                consent_text_sha256: sha256_hex(EXAMPLE_CONSENT_TEXT),
                double_opt_in: true,
                thank_you_url: "/thanks".into(),
                error_url: None,
                fields: crate::domain::Attribute::ALL
                    .into_iter()
                    .filter(|a| *a != crate::domain::Attribute::Email)
                    .collect(),
            }],
            categories,
            default_sender: Sender {
                name: "Carepost Demo Clinic".into(),
                address: EmailAddress::parse("news@clinic.example").expect("built-in sender is valid"),
            },
            throughput,
            confirmation_ttl: Duration::from_secs(7 * 24 * 3600),
            unsubscribe_ttl: Duration::from_secs(90 * 24 * 3600),
            fanout_page_size: 250,
            dry_run_budget: DEFAULT_DRY_RUN_BUDGET,
            acceptance_grace: Duration::ZERO,
            reputation: ReputationGuard::default(),
            retention: DEFAULT_RETENTION,
            soft_bounce_limit: 3,
            soft_bounce_window: Duration::from_secs(7 * 24 * 3600),
            first_party_tracking: true,
            min_cell: crate::app::report::DEFAULT_MIN_CELL,
        }
    }

    pub fn form(&self, id: &str) -> Option<&FormDefinition> {
        self.forms.iter().find(|f| f.id == id)
    }

    /// Uses a deployment's own topics and forms.
    pub fn with_forms(mut self, config: crate::forms::FormsConfig) -> Settings {
        self.categories = config.categories;
        self.forms = config.forms;
        self
    }

    /// Uses a deployment's contact schema. A form field the schema does not
    /// hold is an error if the forms were configured (`configured_forms`);
    /// the built-in example form just stops offering it.
    pub fn with_schema(
        mut self,
        schema: crate::domain::ContactSchema,
        configured_forms: bool,
    ) -> Result<Settings, String> {
        for form in &mut self.forms {
            if let Some(missing) = form.fields.iter().find(|a| !schema.holds(**a))
                && configured_forms
            {
                return Err(format!("form '{}': field '{}' is not in the contact schema", form.id, missing.as_str()));
            }
            form.fields.retain(|a| schema.holds(*a));
        }
        self.schema = std::sync::Arc::new(schema);
        Ok(self)
    }

    /// The service's own origin (`scheme://host[:port]`), from which the
    /// example form posts.
    pub fn own_origin(&self) -> String {
        let url = self.public_base_url.as_str();
        match url.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
            None => url.to_owned(),
        }
    }

    /// Whether a page on `origin` may post `form`.
    pub fn origin_allowed(&self, form: &FormDefinition, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        origin == self.own_origin().to_ascii_lowercase() || form.allowed_origins.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_rate_over_five_percent_pauses_once_the_sample_is_large_enough() {
        let guard = ReputationGuard { min_sample: 100, ..ReputationGuard::default() };
        assert_eq!(guard.verdict(94, 6, 0).as_deref(), Some("bounce rate 6% over the last 60 minutes passed 5%"));
        assert_eq!(guard.verdict(95, 5, 0), None, "exactly 5% is not past it");
        assert_eq!(guard.verdict(5, 4, 0), None, "too few to judge");
    }

    #[test]
    fn a_complaint_rate_over_a_tenth_of_a_percent_pauses() {
        let guard = ReputationGuard { min_sample: 100, ..ReputationGuard::default() };
        assert_eq!(
            guard.verdict(1000, 0, 2).as_deref(),
            Some("complaint rate 0.2% over the last 60 minutes passed 0.1%")
        );
        assert_eq!(guard.verdict(1000, 0, 1), None);
    }

    #[test]
    fn the_window_starts_after_the_bucket_that_holds_its_beginning() {
        let guard = ReputationGuard::default();
        let now = time::OffsetDateTime::from_unix_timestamp(7_200).unwrap();
        assert_eq!(guard.bucket_of(now), 24);
        assert_eq!(guard.window_start(now), 13);
    }

    #[test]
    fn a_rate_that_does_not_divide_evenly_is_split_exactly() {
        let t = Throughput { send_rate_per_second: 50, sender_max_concurrency: 4, ..Throughput::default() };
        assert_eq!(RateShare::per_sender(&t).interval(), Duration::from_millis(80));
        assert_eq!(RateShare::whole(&t).interval(), Duration::from_millis(20));
    }

    #[test]
    fn concurrency_below_two_is_refused_like_the_template_does() {
        let t = Throughput { sender_max_concurrency: 1, ..Default::default() };
        assert_eq!(t.validate().unwrap_err().name, "SenderMaxConcurrency");
        assert!(Throughput::default().validate().is_ok());
    }
}
