//! Building the application from a Lambda function's environment: one
//! `SdkConfig`, the AWS adapters, the settings. A missing or invalid
//! variable fails at init with its name.

use std::sync::Arc;

use crate::adapters::aws::TableNames;
use crate::adapters::aws::dynamodb::{
    DynamoActivityStore, DynamoAuditLog, DynamoCampaignStore, DynamoConsentStore, DynamoContactStore,
    DynamoIntakeStore, DynamoSecretStore, DynamoSendLedger, DynamoSuppressionList,
};
use crate::adapters::aws::kms::KmsKeyProvider;
use crate::adapters::aws::sesv2::SesTransport;
use crate::adapters::aws::sqs::SqsQueue;
use crate::app::{App, Ports};
use crate::config::{Knobs, RateShare, Runtime, Settings, SettingsError, text_knob};
use crate::crypto::{CacheLimits, Envelope, Keyring};
use crate::ports::KeyProvider;
use crate::runtime::deferred::Deferred;
use figment::Figment;
use figment::providers::Env;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum AwsSettingsError {
    #[error("environment variable {0} is required")]
    Missing(String),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: String, message: String },
    #[error("could not load the root secret: {0}")]
    Keyring(String),
}

impl From<SettingsError> for AwsSettingsError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Missing(name) => AwsSettingsError::Missing(name),
            SettingsError::Invalid { setting, message } => AwsSettingsError::Invalid { name: setting, message },
        }
    }
}

/// Everything a function reads from its environment (set by the SAM
/// template): the names of its resources, and the validated settings.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub tables: TableNames,
    pub fanout_queue_url: String,
    pub send_queue_url: String,
    pub send_dlq_url: Option<String>,
    /// The `ses-events` queue, for the events function's back-off.
    pub events_queue_url: Option<String>,
    pub kms_key_id: String,
    pub ses_configuration_set: Option<String>,
    /// The configuration set without `TlsPolicy: REQUIRE` that secure
    /// messages' notices and codes (no PHI) go through.
    pub ses_notice_configuration_set: Option<String>,
    /// The knobs ([`Knobs`]), validated for the Lambda runtime.
    pub settings: Settings,
}

/// The names of a function's resources, as the template passes them.
#[derive(Deserialize)]
struct Resources {
    #[serde(default, deserialize_with = "text_knob")]
    contacts_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    consent_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    campaigns_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    send_ledger_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    suppression_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    audit_log_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    activity_table: Option<String>,
    journeys_table: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    fanout_queue_url: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    send_queue_url: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    send_dlq_url: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    events_queue_url: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    kms_key_id: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    ses_configuration_set: Option<String>,
    #[serde(default, deserialize_with = "text_knob")]
    ses_notice_configuration_set: Option<String>,
}

/// The variables naming resources (besides the knobs, [`crate::config::KNOB_NAMES`]).
pub const RESOURCE_NAMES: [&str; 15] = [
    "CONTACTS_TABLE",
    "CONSENT_TABLE",
    "CAMPAIGNS_TABLE",
    "SEND_LEDGER_TABLE",
    "SUPPRESSION_TABLE",
    "AUDIT_LOG_TABLE",
    "ACTIVITY_TABLE",
    "JOURNEYS_TABLE",
    "FANOUT_QUEUE_URL",
    "SEND_QUEUE_URL",
    "SEND_DLQ_URL",
    "EVENTS_QUEUE_URL",
    "KMS_KEY_ID",
    "SES_CONFIGURATION_SET",
    "SES_NOTICE_CONFIGURATION_SET",
];

/// Reads a function's settings from `sources` (the environment in
/// production: [`settings_from_env`]), validated once; errors name the variable.
pub fn settings_from(sources: &Figment) -> Result<AwsSettings, AwsSettingsError> {
    let runtime = Runtime::Lambda;
    let r: Resources =
        sources.extract().map_err(|e| AwsSettingsError::from(SettingsError::from_figment(e, &runtime)))?;
    let knobs = Knobs::load(sources, &runtime)?;
    let required = |value: Option<String>, name: &str| value.ok_or_else(|| AwsSettingsError::Missing(name.to_owned()));
    Ok(AwsSettings {
        tables: TableNames {
            contacts: required(r.contacts_table, "CONTACTS_TABLE")?,
            consent: required(r.consent_table, "CONSENT_TABLE")?,
            campaigns: required(r.campaigns_table, "CAMPAIGNS_TABLE")?,
            send_ledger: required(r.send_ledger_table, "SEND_LEDGER_TABLE")?,
            suppression: required(r.suppression_table, "SUPPRESSION_TABLE")?,
            audit_log: required(r.audit_log_table, "AUDIT_LOG_TABLE")?,
            activity: required(r.activity_table, "ACTIVITY_TABLE")?,
            journeys: required(r.journeys_table, "JOURNEYS_TABLE")?,
        },
        fanout_queue_url: required(r.fanout_queue_url, "FANOUT_QUEUE_URL")?,
        send_queue_url: required(r.send_queue_url, "SEND_QUEUE_URL")?,
        send_dlq_url: r.send_dlq_url,
        events_queue_url: r.events_queue_url,
        kms_key_id: required(r.kms_key_id, "KMS_KEY_ID")?,
        ses_configuration_set: r.ses_configuration_set,
        ses_notice_configuration_set: r.ses_notice_configuration_set,
        settings: knobs.validate(&runtime)?,
    })
}

/// The function's environment: the resource names and the knobs, by the SAM template's names.
pub fn sources_from_env() -> Figment {
    Knobs::lambda_sources().merge(Env::raw().only(&RESOURCE_NAMES))
}

pub fn settings_from_env() -> Result<AwsSettings, AwsSettingsError> {
    settings_from(&sources_from_env())
}

/// The running application and the adapters a handler may need directly.
pub struct AwsApp {
    pub app: Arc<App>,
    pub key_provider: Arc<KmsKeyProvider>,
    pub fanout_queue: Arc<SqsQueue>,
    pub send_queue: Arc<SqsQueue>,
    /// Set when `EVENTS_QUEUE_URL` is (the events function's).
    pub events_queue: Option<Arc<SqsQueue>>,
}

/// One client per service. Built from one `SdkConfig`; tests may attach
/// interceptors (fault injection) to any of them.
#[derive(Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sesv2: aws_sdk_sesv2::Client,
}

impl AwsClients {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sesv2: ses_client(sdk),
        }
    }
}

/// SES v2 without SDK retries: a timeout or 5xx after the request went out
/// may mean SES accepted it, and a blind retry would mail the patient twice.
/// Throttling is retried through the queue's back-off instead.
pub fn ses_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sesv2::Client {
    let config = aws_sdk_sesv2::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    aws_sdk_sesv2::Client::from_conf(config)
}

/// Builds every adapter from the service clients.
pub async fn build(clients: AwsClients, settings: AwsSettings) -> Result<AwsApp, AwsSettingsError> {
    build_with_clock(clients, settings, Arc::new(crate::ports::SystemClock)).await
}

/// `build` with the application's clock given: tests let reconciliation's
/// time pass without waiting for it (SQS and DynamoDB keep their own).
pub async fn build_with_clock(
    clients: AwsClients,
    settings: AwsSettings,
    clock: Arc<dyn crate::ports::Clock>,
) -> Result<AwsApp, AwsSettingsError> {
    let dynamo = clients.dynamodb;
    let sqs = clients.sqs;
    let key_provider = Arc::new(KmsKeyProvider::new(clients.kms, settings.kms_key_id.clone()));
    let fanout_queue = Arc::new(SqsQueue::new(sqs.clone(), settings.fanout_queue_url.clone(), None));
    let events_queue = settings.events_queue_url.clone().map(|url| Arc::new(SqsQueue::new(sqs.clone(), url, None)));
    let send_queue = Arc::new(SqsQueue::new(sqs, settings.send_queue_url.clone(), settings.send_dlq_url.clone()));
    let transport = Arc::new(
        SesTransport::new(clients.sesv2, settings.ses_configuration_set.clone())
            .with_notice_configuration_set(settings.ses_notice_configuration_set.clone()),
    );
    let t = &settings.tables;
    let provider: Arc<dyn KeyProvider> = key_provider.clone();
    let secrets = DynamoSecretStore::new(dynamo.clone(), t.campaigns.clone());
    let keyring = Keyring::load_or_create(provider.as_ref(), &secrets)
        .await
        .map_err(|e| AwsSettingsError::Keyring(e.to_string()))?;
    let ports = Ports {
        contacts: Arc::new(DynamoContactStore::new(dynamo.clone(), t.contacts.clone())),
        consent: Arc::new(DynamoConsentStore::new(dynamo.clone(), t.consent.clone())),
        suppression: Arc::new(DynamoSuppressionList::new(dynamo.clone(), t.suppression.clone())),
        audit: Arc::new(DynamoAuditLog::new(dynamo.clone(), t.audit_log.clone())),
        activity: Arc::new(DynamoActivityStore::new(dynamo.clone(), t.activity.clone())),
        intake: Arc::new(DynamoIntakeStore::new(dynamo.clone(), t.activity.clone())),
        secure_messages: Arc::new(crate::adapters::aws::dynamodb::DynamoSecureMessageStore::new(
            dynamo.clone(),
            t.activity.clone(),
        )),
        journeys: Arc::new(crate::adapters::aws::dynamodb::DynamoJourneyStore::new(dynamo.clone(), t.journeys.clone())),
        campaigns: Arc::new(DynamoCampaignStore::new(dynamo.clone(), t.campaigns.clone())),
        ledger: Arc::new(
            DynamoSendLedger::new(dynamo, t.send_ledger.clone()).with_retention(settings.settings.retention),
        ),
        fanout_queue: fanout_queue.clone(),
        send_queue: send_queue.clone(),
        transport,
        metrics: Arc::new(crate::adapters::emf::EmfMetrics::stdout()),
        clock,
    };
    let app_settings = settings.settings.clone();
    let app = Arc::new(App::new(
        ports,
        Arc::new(Envelope::new(provider, CacheLimits::default())),
        Arc::new(keyring),
        Arc::new(app_settings),
        RateShare::per_sender(&settings.settings.throughput),
    ));
    Ok(AwsApp { app, key_provider, fanout_queue, send_queue, events_queue })
}

/// `build` with the SDK configuration loaded from the environment (honours `AWS_ENDPOINT_URL`).
async fn build_with_settings(settings: AwsSettings) -> Result<AwsApp, AwsSettingsError> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    build(AwsClients::from_sdk(&sdk), settings).await
}

/// A function's init: the settings read and validated now (an error names
/// the variable), the application built in the background from them, and
/// `handler` made from it ([`Deferred`]: the root secret's read and
/// decrypt no longer hold up init; the first invocation waits for what is left).
pub fn start<T, F>(settings: AwsSettings, handler: F) -> Deferred<T, AwsSettingsError>
where
    T: Send + Sync + 'static,
    F: Fn(AwsApp) -> T + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    Deferred::start(move || {
        let (settings, handler) = (settings.clone(), handler.clone());
        async move { Ok(handler(build_with_settings(settings).await?)) }
    })
}

impl AwsSettings {
    /// The events function backs off on its own queue: it needs its URL.
    pub fn require_events_queue(self) -> Result<Self, AwsSettingsError> {
        match self.events_queue_url {
            Some(_) => Ok(self),
            None => Err(AwsSettingsError::Missing("EVENTS_QUEUE_URL".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    fn env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CONTACTS_TABLE", "c"),
            ("CONSENT_TABLE", "k"),
            ("CAMPAIGNS_TABLE", "m"),
            ("SEND_LEDGER_TABLE", "l"),
            ("SUPPRESSION_TABLE", "s"),
            ("AUDIT_LOG_TABLE", "a"),
            ("ACTIVITY_TABLE", "e"),
            ("JOURNEYS_TABLE", "j"),
            ("FANOUT_QUEUE_URL", "https://sqs/f"),
            ("SEND_QUEUE_URL", "https://sqs/s"),
            ("SEND_DLQ_URL", ""),
            ("KMS_KEY_ID", "alias/carepost"),
            ("PUBLIC_BASE_URL", "https://mail.clinic.example"),
            ("SENDER_NAME", "2026"),
            ("SENDER_ADDRESS", "news@clinic.example"),
            ("SEND_RATE_PER_SECOND", "50"),
            // The template passes empty parameters as empty strings.
            ("FORMS_JSON", ""),
            ("CONTACT_SCHEMA_JSON", ""),
            ("FREQUENCY_CAP", ""),
            ("ALLOWED_ORIGINS", "https://www.clinic.example,https://portal.clinic.example"),
        ]
    }

    fn load(vars: Vec<(&str, &str)>) -> Result<AwsSettings, AwsSettingsError> {
        settings_from(&Figment::from(Vars::new(vars)))
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut e = env();
        e.retain(|(n, _)| *n != name);
        e.push((name, value));
        e
    }

    #[test]
    fn a_complete_environment_parses() {
        let s = load(env()).unwrap();
        assert_eq!(s.settings.throughput.send_rate_per_second, 50);
        assert_eq!(s.tables.send_ledger, "l");
        assert_eq!(s.send_dlq_url, None, "empty is unset");
        assert_eq!(s.settings.default_sender.name, "2026", "a number-like text stays text");
        assert_eq!(s.settings.acceptance_grace, std::time::Duration::from_secs(120));
        assert!(!s.settings.first_party_tracking, "SES tracks, per message (ConfigurationOverrides)");
        assert_eq!(s.settings.frequency_cap, None);
        assert_eq!(s.settings.forms[0].id, "web-signup", "the example form when FORMS_JSON is empty");
        assert_eq!(
            s.settings.forms[0].allowed_origins,
            ["https://www.clinic.example", "https://portal.clinic.example"]
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut e = env();
        e.retain(|(n, _)| *n != "KMS_KEY_ID");
        assert_eq!(load(e).unwrap_err().to_string(), "environment variable KMS_KEY_ID is required");
        assert_eq!(
            load(with("SENDER_ADDRESS", "")).unwrap_err().to_string(),
            "environment variable SENDER_ADDRESS is required",
            "no demo sender in AWS"
        );
        let mut e = env();
        e.retain(|(n, _)| *n != "PUBLIC_BASE_URL");
        assert_eq!(load(e).unwrap_err().to_string(), "environment variable PUBLIC_BASE_URL is required");
    }

    #[test]
    fn a_sender_concurrency_below_two_is_refused() {
        let err = load(with("SENDER_MAX_CONCURRENCY", "1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SENDER_MAX_CONCURRENCY is invalid: SenderMaxConcurrency must be 2 to 1000"
        );
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        let err = load(with("SEND_RATE_PER_SECOND", "fast")).unwrap_err().to_string();
        assert!(err.starts_with("environment variable SEND_RATE_PER_SECOND is invalid: invalid type"), "{err}");
        let err = load(with("FREQUENCY_CAP", "3 a week")).unwrap_err().to_string();
        assert!(err.starts_with("environment variable FREQUENCY_CAP is invalid: frequency cap '3 a week'"), "{err}");
        let err = load(with("FORMS_JSON", r#"{"categories": []}"#)).unwrap_err().to_string();
        assert!(err.starts_with("environment variable FORMS_JSON is invalid: forms configuration"), "{err}");
        let err = load(with("ALLOWED_ORIGINS", "http://www.clinic.example")).unwrap_err().to_string();
        assert!(err.starts_with("environment variable ALLOWED_ORIGINS is invalid: origin"), "{err}");
        let err = load(with("RETENTION_DAYS", "0")).unwrap_err().to_string();
        assert_eq!(err, "environment variable RETENTION_DAYS is invalid: must be at least 1");
    }

    #[test]
    fn configured_forms_and_cap_are_used() {
        let forms = include_str!("../../../docs/forms.example.json");
        let mut e = with("FREQUENCY_CAP", "3/7");
        e.push(("FORMS_JSON", forms));
        e.retain(|(n, v)| *n != "FORMS_JSON" || *v == forms);
        let s = load(e).unwrap();
        assert_eq!(s.settings.frequency_cap.map(|c| c.max), Some(3));
        assert_eq!(s.settings.forms[0].allowed_origins, ["https://www.clinic.example"]);
    }
}
