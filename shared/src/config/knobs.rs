//! Loading the knobs: one `Deserialize` structure named by the SAM
//! template's environment variables, read with figment from the Lambda
//! environment or from `CAREPOST_*` variables and the CLI's flags, and
//! validated once into `Settings`.

use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::Deserialize;

use super::{DEFAULT_DRY_RUN_BUDGET, DEFAULT_RETENTION, Settings, Throughput};
use crate::domain::{
    ContactSchema, DEFAULT_MIN_CELL, EmailAddress, FrequencyCap, PublicBaseUrl, ReputationGuard, Sender,
};
use crate::forms::{ConsentLimits, FormsConfig};

/// Every knob of a deployment, by the environment variable names of the SAM
/// template (lowercased here; `SEND_RATE_PER_SECOND` is
/// `send_rate_per_second`). Text knobs are parsed as they are read, so a
/// value of this type holds no malformed JSON, cap or origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// `SEND_RATE_PER_SECOND`, `SENDER_MAX_CONCURRENCY`, `SENDER_BATCH_SIZE`,
    /// `SENDER_BATCHING_WINDOW_SECONDS`, `FANOUT_SHARDS`,
    /// `FANOUT_MAX_CONCURRENCY`, `VISIBILITY_TIMEOUT_SECONDS`,
    /// `MAX_RECEIVE_COUNT` (DESIGN §5), read at the top level by [`Knobs::load`]
    /// (not `serde(flatten)`, which loses the setting's name from errors).
    #[serde(skip)]
    pub throughput: Throughput,
    /// `PUBLIC_BASE_URL`: base of links in emails. Required in AWS; the
    /// embedded stack defaults to `http://<listen address>`.
    #[serde(deserialize_with = "de::text")]
    pub public_base_url: Option<String>,
    /// `SENDER_NAME`; default "Carepost".
    #[serde(deserialize_with = "de::text")]
    pub sender_name: Option<String>,
    /// `SENDER_ADDRESS`. Required in AWS; the embedded stack defaults to the
    /// example clinic's address.
    #[serde(deserialize_with = "de::text")]
    pub sender_address: Option<String>,
    /// `POSTAL_ADDRESS`: the sender's postal address, which marketing mail
    /// must show (`{{ postal_address }}`); the embedded stack defaults to the
    /// example clinic's. Without it, marketing campaigns are refused.
    #[serde(deserialize_with = "de::text")]
    pub postal_address: Option<String>,
    /// `ACCEPTANCE_GRACE_SECONDS`: how long a claim whose provider answer was
    /// lost waits for the provider's Send event before the message may be
    /// handed over again. Default 120 in AWS, 0 embedded (the outbox
    /// deduplicates itself, SMTP publishes no events).
    pub acceptance_grace_seconds: Option<u32>,
    /// `REPUTATION_MIN_SAMPLE`: deliveries plus bounces in the last hour
    /// before the reputation guard judges a campaign's rates.
    pub reputation_min_sample: u64,
    /// `RETENTION_DAYS`: how long send-ledger rows and contact activity are kept.
    pub retention_days: u32,
    /// `SOFT_BOUNCE_LIMIT` soft bounces within `SOFT_BOUNCE_DAYS` suppress an address.
    pub soft_bounce_limit: u32,
    pub soft_bounce_days: u32,
    /// `FORMS_JSON` (as in docs/forms.example.json); empty: the example
    /// topics and the `web-signup` form ([`FormsConfig::example`]).
    #[serde(rename = "forms_json", deserialize_with = "de::parsed")]
    pub forms: Option<FormsConfig>,
    /// `CONTACT_SCHEMA_JSON` (as in docs/schema.example.json); empty: the built-in attributes.
    #[serde(rename = "contact_schema_json", deserialize_with = "de::parsed")]
    pub schema: Option<ContactSchema>,
    /// `FREQUENCY_CAP` (`N/DAYS`, e.g. `3/7`); empty: no cap.
    #[serde(deserialize_with = "de::parsed")]
    pub frequency_cap: Option<FrequencyCap>,
    /// `ALLOWED_ORIGINS` (comma-separated): where pages that post the example form live.
    #[serde(deserialize_with = "de::origins")]
    pub allowed_origins: Vec<crate::domain::Origin>,
    /// `DRY_RUN_BUDGET_SECONDS`: how long one audience-estimate call works
    /// before answering with a resume token; under API Gateway's 29 s.
    pub dry_run_budget_seconds: u32,
    /// `CONSENT_LIMIT_PER_IP_PER_HOUR`: consent requests one client IP may
    /// make to one form per clock hour; more are answered 429.
    pub consent_limit_per_ip_per_hour: u32,
    /// `CONSENT_LIMIT_PER_ADDRESS_PER_HOUR`: consent requests for one email
    /// address to one form per clock hour, from anywhere.
    pub consent_limit_per_address_per_hour: u32,
    /// `MIN_CELL_SIZE`: the smallest count reports, estimates and the
    /// campaign list show as a number (docs/reports.md); default 11.
    pub min_cell_size: u64,
    /// `TLS_FALLBACK`: `drop` (default) or `secure_message`, for a recipient
    /// whose server cannot do TLS; a campaign may override it.
    #[serde(deserialize_with = "de::parsed")]
    pub tls_fallback: Option<crate::domain::TlsFallback>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs::from(Throughput::default())
    }
}

impl From<Throughput> for Knobs {
    fn from(t: Throughput) -> Self {
        Knobs {
            throughput: t,
            public_base_url: None,
            sender_name: None,
            sender_address: None,
            postal_address: None,
            acceptance_grace_seconds: None,
            reputation_min_sample: ReputationGuard::default().min_sample,
            retention_days: (DEFAULT_RETENTION.as_secs() / DAY.as_secs()) as u32,
            soft_bounce_limit: 3,
            soft_bounce_days: 7,
            forms: None,
            schema: None,
            frequency_cap: None,
            allowed_origins: Vec::new(),
            dry_run_budget_seconds: DEFAULT_DRY_RUN_BUDGET.as_secs() as u32,
            consent_limit_per_ip_per_hour: ConsentLimits::DEFAULT.per_ip_per_hour,
            consent_limit_per_address_per_hour: ConsentLimits::DEFAULT.per_address_per_hour,
            min_cell_size: DEFAULT_MIN_CELL,
            tls_fallback: None,
        }
    }
}

/// The environment variables [`Knobs`] reads (the SAM template's names).
pub const KNOB_NAMES: [&str; 26] = [
    "SEND_RATE_PER_SECOND",
    "SENDER_MAX_CONCURRENCY",
    "SENDER_BATCH_SIZE",
    "SENDER_BATCHING_WINDOW_SECONDS",
    "FANOUT_SHARDS",
    "FANOUT_MAX_CONCURRENCY",
    "VISIBILITY_TIMEOUT_SECONDS",
    "MAX_RECEIVE_COUNT",
    "PUBLIC_BASE_URL",
    "SENDER_NAME",
    "SENDER_ADDRESS",
    "POSTAL_ADDRESS",
    "ACCEPTANCE_GRACE_SECONDS",
    "REPUTATION_MIN_SAMPLE",
    "RETENTION_DAYS",
    "SOFT_BOUNCE_LIMIT",
    "SOFT_BOUNCE_DAYS",
    "FORMS_JSON",
    "CONTACT_SCHEMA_JSON",
    "FREQUENCY_CAP",
    "ALLOWED_ORIGINS",
    "DRY_RUN_BUDGET_SECONDS",
    "CONSENT_LIMIT_PER_IP_PER_HOUR",
    "CONSENT_LIMIT_PER_ADDRESS_PER_HOUR",
    "MIN_CELL_SIZE",
    "TLS_FALLBACK",
];

/// Which runtime the settings are for: what it requires, its defaults, and
/// how its errors name a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// A Lambda function: `PUBLIC_BASE_URL` and `SENDER_ADDRESS` are required;
    /// SES tracks opens and clicks through its configuration set.
    Lambda,
    /// The embedded stack (`carepost dev`, `demo`, tests), serving on `own_url`.
    Embedded { own_url: String },
}

impl Runtime {
    /// How an operator of this runtime sets `name` (an upper-case knob name).
    pub fn setting(&self, name: &str) -> String {
        match self {
            Runtime::Lambda => name.to_owned(),
            Runtime::Embedded { .. } => {
                let name = match name {
                    "FORMS_JSON" => "FORMS",
                    "CONTACT_SCHEMA_JSON" => "SCHEMA",
                    other => other,
                };
                format!("--{} (CAREPOST_{name})", name.to_ascii_lowercase().replace('_', "-"))
            }
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{0} is required")]
    Missing(String),
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
}

impl SettingsError {
    /// Names the setting of a figment error (`SEND_RATE_PER_SECOND: invalid type …`).
    pub fn from_figment(error: figment::Error, runtime: &Runtime) -> SettingsError {
        let name = error.path.join(".").to_ascii_uppercase();
        match &error.kind {
            figment::error::Kind::MissingField(field) => {
                SettingsError::Missing(runtime.setting(&field.to_ascii_uppercase()))
            }
            kind => SettingsError::Invalid { setting: runtime.setting(&name), message: kind.to_string() },
        }
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Sender of the embedded stack when none is configured: the example clinic.
const EXAMPLE_SENDER: (&str, &str) = ("Carepost Demo Clinic", "news@clinic.example");

/// The example clinic's postal address, for the embedded stack's marketing mail.
const EXAMPLE_POSTAL_ADDRESS: &str = "Carepost Demo Clinic, 1 Main Street, Springfield";

impl Knobs {
    /// Where the Lambda runtime reads knobs: the function's environment, by the SAM names.
    pub fn lambda_sources() -> Figment {
        Figment::new().merge(Env::raw().only(&KNOB_NAMES))
    }

    /// Where the embedded runtime reads knobs, later ones winning: `base` (a
    /// command's own defaults, e.g. `carepost demo`'s faster throughput),
    /// `CAREPOST_*` variables, then `flags` (the CLI's, by knob name, unset
    /// ones left out). Forms and schema come from files there (`--forms`,
    /// `--schema`), so `CAREPOST_FORMS_JSON` is not read.
    pub fn embedded_sources(base: impl serde::Serialize, flags: impl serde::Serialize) -> Figment {
        let names: Vec<&str> =
            KNOB_NAMES.into_iter().filter(|n| !matches!(*n, "FORMS_JSON" | "CONTACT_SCHEMA_JSON")).collect();
        Figment::from(Serialized::defaults(base))
            .merge(Env::prefixed("CAREPOST_").only(&names))
            .merge(Serialized::defaults(flags))
    }

    /// Reads the knobs from `sources`; unset knobs keep their defaults.
    pub fn load(sources: &Figment, runtime: &Runtime) -> Result<Knobs, SettingsError> {
        let named = |e| SettingsError::from_figment(e, runtime);
        let knobs: Knobs = sources.extract().map_err(named)?;
        Ok(Knobs { throughput: sources.extract().map_err(named)?, ..knobs })
    }

    /// Checks every knob and builds the settings the use cases read: once,
    /// at start. Errors name the setting as `runtime` spells it.
    pub fn validate(&self, runtime: &Runtime) -> Result<Settings, SettingsError> {
        let invalid = |name: &str, message: String| SettingsError::Invalid { setting: runtime.setting(name), message };
        let lambda = *runtime == Runtime::Lambda;
        let throughput = self.throughput;
        throughput.validate().map_err(|e| invalid(&sam_to_env(e.name), e.to_string()))?;
        let public_base_url = match (&self.public_base_url, runtime) {
            (Some(url), _) => url.clone(),
            (None, Runtime::Embedded { own_url }) => own_url.clone(),
            (None, Runtime::Lambda) => return Err(SettingsError::Missing(runtime.setting("PUBLIC_BASE_URL"))),
        };
        let public_base_url =
            PublicBaseUrl::parse(&public_base_url).map_err(|e| invalid("PUBLIC_BASE_URL", e.to_string()))?;
        let address = match &self.sender_address {
            Some(address) => address.as_str(),
            None if lambda => return Err(SettingsError::Missing(runtime.setting("SENDER_ADDRESS"))),
            None => EXAMPLE_SENDER.1,
        };
        let default_sender = Sender {
            name: self.sender_name.clone().unwrap_or_else(|| if lambda { "Carepost" } else { EXAMPLE_SENDER.0 }.into()),
            address: EmailAddress::parse(address).map_err(|e| invalid("SENDER_ADDRESS", e.to_string()))?,
        };
        let days = |name: &str, value: u32| match value {
            0 => Err(invalid(name, "must be at least 1".into())),
            d => Ok(DAY * d),
        };
        if self.soft_bounce_limit == 0 {
            return Err(invalid("SOFT_BOUNCE_LIMIT", "must be at least 1".into()));
        }
        let consent_limits = ConsentLimits {
            per_ip_per_hour: self.consent_limit_per_ip_per_hour,
            per_address_per_hour: self.consent_limit_per_address_per_hour,
        };
        if consent_limits.per_ip_per_hour == 0 {
            return Err(invalid("CONSENT_LIMIT_PER_IP_PER_HOUR", "must be at least 1".into()));
        }
        if consent_limits.per_address_per_hour == 0 {
            return Err(invalid("CONSENT_LIMIT_PER_ADDRESS_PER_HOUR", "must be at least 1".into()));
        }
        if self.min_cell_size == 0 {
            return Err(invalid("MIN_CELL_SIZE", "must be at least 1 (1 shows every count)".into()));
        }
        let configured_forms = self.forms.is_some();
        let forms = self.forms.clone().unwrap_or_else(|| FormsConfig::example(self.allowed_origins.clone()));
        let mut settings = Settings {
            public_base_url,
            frequency_cap: self.frequency_cap,
            schema: Default::default(),
            categories: forms.categories,
            forms: forms.forms,
            default_sender,
            postal_address: match (&self.postal_address, lambda) {
                (Some(address), _) if address.contains(['\r', '\n']) || address.chars().count() > 300 => {
                    return Err(invalid("POSTAL_ADDRESS", "must be one line of at most 300 characters".into()));
                }
                (Some(address), _) => Some(address.clone()),
                (None, true) => None,
                (None, false) => Some(EXAMPLE_POSTAL_ADDRESS.to_owned()),
            },
            throughput,
            confirmation_ttl: DAY * 7,
            unsubscribe_ttl: DAY * 90,
            fanout_page_size: 250,
            dry_run_budget: Duration::from_secs(u64::from(self.dry_run_budget_seconds)),
            acceptance_grace: Duration::from_secs(u64::from(self.acceptance_grace_seconds.unwrap_or(if lambda {
                120
            } else {
                0
            }))),
            reputation: ReputationGuard { min_sample: self.reputation_min_sample, ..ReputationGuard::default() },
            retention: days("RETENTION_DAYS", self.retention_days)?,
            soft_bounce_limit: self.soft_bounce_limit,
            soft_bounce_window: days("SOFT_BOUNCE_DAYS", self.soft_bounce_days)?,
            // SES tracks opens and clicks itself, through the configuration set.
            first_party_tracking: !lambda,
            min_cell: self.min_cell_size,
            consent_limits,
            tls_fallback: self.tls_fallback.unwrap_or_default(),
        };
        if let Some(schema) = self.schema.clone() {
            settings = settings.with_schema(schema, configured_forms).map_err(|e| {
                let message = e.to_string();
                invalid(if configured_forms { "FORMS_JSON" } else { "CONTACT_SCHEMA_JSON" }, message)
            })?;
        }
        Ok(settings)
    }
}

/// The environment variable of a SAM parameter name (`SenderMaxConcurrency`).
fn sam_to_env(parameter: &str) -> String {
    let mut name = String::new();
    for (i, c) in parameter.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

pub use de::text as text_knob;

/// Environment-like variables from a list, read as figment's `Env` reads the
/// process environment (names are case-insensitive, values parsed alike):
/// for tests, without touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct Vars(Vec<(String, String)>);

impl Vars {
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Vars {
        Vars(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl figment::Provider for Vars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("variables")
            .interpolater(|_: &figment::Profile, k: &[&str]| k.join(".").to_ascii_uppercase())
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let dict = self
            .0
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.parse::<figment::value::Value>().expect("infallible")))
            .collect();
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Deserialisers for text knobs. Figment parses an environment value that
/// looks like a number or a boolean as one; a text knob takes it back as text.
mod de {
    use serde::de::{self, Deserializer, Visitor};

    use crate::domain::{ContactSchema, FrequencyCap};
    use crate::forms::FormsConfig;

    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()).filter(|v| !v.trim().is_empty()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Text)
        }
    }

    /// Text; empty is unset.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(Text)
    }

    /// A knob given as text and parsed by its type.
    pub trait FromKnob: Sized {
        type Error: std::fmt::Display;
        fn from_knob(text: &str) -> Result<Self, Self::Error>;
    }

    impl FromKnob for FormsConfig {
        type Error = crate::forms::ParseFormsConfigError;
        fn from_knob(text: &str) -> Result<Self, Self::Error> {
            FormsConfig::parse(text)
        }
    }

    impl FromKnob for ContactSchema {
        type Error = crate::domain::ParseContactSchemaError;
        fn from_knob(text: &str) -> Result<Self, Self::Error> {
            ContactSchema::parse(text)
        }
    }

    impl FromKnob for crate::domain::TlsFallback {
        type Error = crate::domain::policy::InvalidTlsFallback;
        fn from_knob(text: &str) -> Result<Self, Self::Error> {
            text.parse()
        }
    }

    impl FromKnob for FrequencyCap {
        type Error = crate::domain::policy::InvalidFrequencyCap;
        fn from_knob(text: &str) -> Result<Self, Self::Error> {
            FrequencyCap::parse(text)
        }
    }

    /// Text parsed by `T`; empty is unset.
    pub fn parsed<'de, D: Deserializer<'de>, T: FromKnob>(d: D) -> Result<Option<T>, D::Error> {
        text(d)?.map(|t| T::from_knob(&t)).transpose().map_err(de::Error::custom)
    }

    /// Comma-separated origins.
    pub fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<crate::domain::Origin>, D::Error> {
        crate::forms::parse_origins(&text(d)?.unwrap_or_default()).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateShare;

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

    fn embedded() -> Runtime {
        Runtime::Embedded { own_url: "http://127.0.0.1:8787".into() }
    }

    fn knobs(vars: &[(&str, &str)]) -> Result<Knobs, SettingsError> {
        Knobs::load(&Figment::from(Vars::new(vars.iter().copied())), &Runtime::Lambda)
    }

    #[test]
    fn unset_knobs_keep_the_defaults_the_template_also_has() {
        let k = knobs(&[]).unwrap();
        assert_eq!(k.throughput, Throughput::default());
        assert_eq!((k.retention_days, k.soft_bounce_limit, k.soft_bounce_days), (400, 3, 7));
        assert_eq!(k.reputation_min_sample, ReputationGuard::default().min_sample);
        let s = k.validate(&embedded()).unwrap();
        assert_eq!(s.retention, DEFAULT_RETENTION);
        assert_eq!(s.dry_run_budget, DEFAULT_DRY_RUN_BUDGET);
        assert_eq!(s.public_base_url.as_str(), "http://127.0.0.1:8787");
        assert_eq!(s.acceptance_grace, Duration::ZERO);
        assert!(s.first_party_tracking);
        assert_eq!(s.min_cell, DEFAULT_MIN_CELL);
    }

    #[test]
    fn the_lambda_runtime_has_no_demo_defaults() {
        let k = knobs(&[("PUBLIC_BASE_URL", "https://mail.clinic.example")]).unwrap();
        assert_eq!(k.validate(&Runtime::Lambda).unwrap_err(), SettingsError::Missing("SENDER_ADDRESS".into()));
        let k = knobs(&[("SENDER_ADDRESS", "news@clinic.example")]).unwrap();
        assert_eq!(k.validate(&Runtime::Lambda).unwrap_err(), SettingsError::Missing("PUBLIC_BASE_URL".into()));
    }

    #[test]
    fn numbers_and_text_are_read_as_the_environment_spells_them() {
        let k = knobs(&[("SEND_RATE_PER_SECOND", " 50 "), ("SENDER_NAME", "true"), ("FREQUENCY_CAP", "3/7")]).unwrap();
        assert_eq!(k.throughput.send_rate_per_second, 50);
        assert_eq!(k.sender_name.as_deref(), Some("true"));
        assert_eq!(k.frequency_cap.map(|c| c.max), Some(3));
        let err = knobs(&[("FANOUT_SHARDS", "70000")]).unwrap_err().to_string();
        assert!(err.starts_with("FANOUT_SHARDS: invalid value"), "{err}");
    }

    #[test]
    fn errors_name_the_setting_as_each_runtime_spells_it() {
        let k =
            Knobs { throughput: Throughput { sender_max_concurrency: 1, ..Throughput::default() }, ..Knobs::default() };
        assert_eq!(
            k.validate(&embedded()).unwrap_err().to_string(),
            "--sender-max-concurrency (CAREPOST_SENDER_MAX_CONCURRENCY): SenderMaxConcurrency must be 2 to 1000"
        );
        assert_eq!(Runtime::Lambda.setting("FORMS_JSON"), "FORMS_JSON");
        assert_eq!(embedded().setting("FORMS_JSON"), "--forms (CAREPOST_FORMS)");
        assert_eq!(sam_to_env("SenderBatchingWindowSeconds"), "SENDER_BATCHING_WINDOW_SECONDS");
    }

    #[test]
    fn a_configured_form_field_outside_the_schema_is_refused_and_the_example_form_drops_it() {
        let schema =
            ContactSchema::parse(r#"{"attributes": [{"name": "first_name", "class": "identifier"}]}"#).unwrap();
        let example = Knobs { schema: Some(schema.clone()), ..Knobs::default() }.validate(&embedded()).unwrap();
        assert_eq!(example.forms[0].fields, [crate::domain::Attribute::FirstName]);
        let forms = FormsConfig::parse(include_str!("../../../docs/forms.example.json")).unwrap();
        let err = Knobs { schema: Some(schema), forms: Some(forms), ..Knobs::default() }.validate(&embedded());
        assert!(err.unwrap_err().to_string().contains("is not in the contact schema"));
    }
}
