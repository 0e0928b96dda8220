//! Building the application from a Lambda function's environment: one
//! `SdkConfig`, the AWS adapters, the settings. A missing or invalid
//! variable fails at init with its name.

use std::sync::Arc;

use crate::adapters::aws::TableNames;
use crate::adapters::aws::dynamodb::{
    DynamoActivityStore, DynamoAuditLog, DynamoCampaignStore, DynamoConsentStore, DynamoContactStore,
    DynamoSecretStore, DynamoSendLedger, DynamoSuppressionList,
};
use crate::adapters::aws::kms::KmsKeyProvider;
use crate::adapters::aws::sesv2::SesTransport;
use crate::adapters::aws::sqs::SqsQueue;
use crate::app::{App, Ports};
use crate::config::{RateShare, ReputationGuard, Settings, Throughput};
use crate::crypto::{CacheLimits, Envelope, Keyring};
use crate::domain::{EmailAddress, PublicBaseUrl, Sender};
use crate::ports::KeyProvider;

#[derive(Debug, thiserror::Error)]
pub enum AwsSettingsError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("could not load the root secret: {0}")]
    Keyring(String),
}

/// Everything a function reads from its environment (set by the SAM template).
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub tables: TableNames,
    pub fanout_queue_url: String,
    pub send_queue_url: String,
    pub send_dlq_url: Option<String>,
    pub kms_key_id: String,
    pub ses_configuration_set: Option<String>,
    pub public_base_url: PublicBaseUrl,
    pub sender: Sender,
    pub throughput: Throughput,
    /// `ACCEPTANCE_GRACE_SECONDS`: how long a claim whose SES answer was lost
    /// waits for SES's Send event before the message may be handed over again.
    pub acceptance_grace: std::time::Duration,
    /// `REPUTATION_MIN_SAMPLE`: deliveries plus bounces in the last hour
    /// before the reputation guard judges a campaign's rates.
    pub reputation_min_sample: u32,
    /// `RETENTION_DAYS`: how long send-ledger rows and contact activity are
    /// kept (their DynamoDB TTL); default 400.
    pub retention: std::time::Duration,
    /// `SOFT_BOUNCE_LIMIT` soft bounces within `SOFT_BOUNCE_DAYS` suppress an
    /// address (defaults 3 and 7).
    pub soft_bounce_limit: u32,
    pub soft_bounce_window: std::time::Duration,
    /// `FORMS_JSON` (the topics and forms, as in docs/forms.example.json);
    /// without it, the example topics and the `web-signup` form, posted from
    /// the `ALLOWED_ORIGINS` (comma-separated).
    pub forms: Option<crate::forms::FormsConfig>,
    /// `CONTACT_SCHEMA_JSON` (as in docs/schema.example.json); empty: the built-in attributes.
    pub schema: Option<crate::domain::ContactSchema>,
    /// `FREQUENCY_CAP` (`N/DAYS`, e.g. `3/7`); empty: no cap.
    pub frequency_cap: Option<crate::config::FrequencyCap>,
    pub allowed_origins: Vec<String>,
}

/// Reads variables through `get`, so tests can pass a map instead of the process environment.
pub fn settings_from(get: impl Fn(&str) -> Option<String>) -> Result<AwsSettings, AwsSettingsError> {
    let required = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(AwsSettingsError::Missing(name));
    let number = |name: &'static str, default: u32| -> Result<u32, AwsSettingsError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| AwsSettingsError::Invalid { name, message: "not a number".into() }),
        }
    };
    let days = |name: &'static str, default: u32| -> Result<std::time::Duration, AwsSettingsError> {
        match number(name, default)? {
            0 => Err(AwsSettingsError::Invalid { name, message: "must be at least 1".into() }),
            d => Ok(std::time::Duration::from_secs(u64::from(d) * 24 * 3600)),
        }
    };
    let d = Throughput::default();
    let throughput = Throughput {
        send_rate_per_second: number("SEND_RATE_PER_SECOND", d.send_rate_per_second)?,
        sender_max_concurrency: number("SENDER_MAX_CONCURRENCY", d.sender_max_concurrency)?,
        sender_batch_size: number("SENDER_BATCH_SIZE", d.sender_batch_size)?,
        sender_batching_window_seconds: number("SENDER_BATCHING_WINDOW_SECONDS", d.sender_batching_window_seconds)?,
        fanout_shards: u16::try_from(number("FANOUT_SHARDS", u32::from(d.fanout_shards))?)
            .map_err(|_| AwsSettingsError::Invalid { name: "FANOUT_SHARDS", message: "too large".into() })?,
        fanout_max_concurrency: number("FANOUT_MAX_CONCURRENCY", d.fanout_max_concurrency)?,
        visibility_timeout_seconds: number("VISIBILITY_TIMEOUT_SECONDS", d.visibility_timeout_seconds)?,
        max_receive_count: number("MAX_RECEIVE_COUNT", d.max_receive_count)?,
    };
    throughput.validate().map_err(|e| AwsSettingsError::Invalid { name: "throughput", message: e.to_string() })?;
    let public_base_url = PublicBaseUrl::parse(&required("PUBLIC_BASE_URL")?)
        .map_err(|e| AwsSettingsError::Invalid { name: "PUBLIC_BASE_URL", message: e.to_string() })?;
    let sender = Sender {
        name: get("SENDER_NAME").unwrap_or_else(|| "Carepost".into()),
        address: EmailAddress::parse(&required("SENDER_ADDRESS")?)
            .map_err(|e| AwsSettingsError::Invalid { name: "SENDER_ADDRESS", message: e.to_string() })?,
    };
    Ok(AwsSettings {
        tables: TableNames {
            contacts: required("CONTACTS_TABLE")?,
            consent: required("CONSENT_TABLE")?,
            campaigns: required("CAMPAIGNS_TABLE")?,
            send_ledger: required("SEND_LEDGER_TABLE")?,
            suppression: required("SUPPRESSION_TABLE")?,
            audit_log: required("AUDIT_LOG_TABLE")?,
            activity: required("ACTIVITY_TABLE")?,
        },
        fanout_queue_url: required("FANOUT_QUEUE_URL")?,
        send_queue_url: required("SEND_QUEUE_URL")?,
        send_dlq_url: get("SEND_DLQ_URL").filter(|v| !v.is_empty()),
        kms_key_id: required("KMS_KEY_ID")?,
        ses_configuration_set: get("SES_CONFIGURATION_SET").filter(|v| !v.is_empty()),
        public_base_url,
        sender,
        throughput,
        acceptance_grace: std::time::Duration::from_secs(u64::from(number("ACCEPTANCE_GRACE_SECONDS", 120)?)),
        reputation_min_sample: number("REPUTATION_MIN_SAMPLE", ReputationGuard::default().min_sample as u32)?,
        retention: days("RETENTION_DAYS", 400)?,
        soft_bounce_limit: number("SOFT_BOUNCE_LIMIT", 3)?.max(1),
        soft_bounce_window: days("SOFT_BOUNCE_DAYS", 7)?,
        forms: get("FORMS_JSON")
            .filter(|v| !v.trim().is_empty())
            .map(|json| crate::forms::FormsConfig::parse(&json))
            .transpose()
            .map_err(|e| AwsSettingsError::Invalid { name: "FORMS_JSON", message: e.to_string() })?,
        schema: get("CONTACT_SCHEMA_JSON")
            .filter(|v| !v.trim().is_empty())
            .map(|json| crate::domain::ContactSchema::parse(&json))
            .transpose()
            .map_err(|e| AwsSettingsError::Invalid { name: "CONTACT_SCHEMA_JSON", message: e.to_string() })?,
        frequency_cap: get("FREQUENCY_CAP")
            .filter(|v| !v.trim().is_empty())
            .map(|v| crate::config::FrequencyCap::parse(&v))
            .transpose()
            .map_err(|message| AwsSettingsError::Invalid { name: "FREQUENCY_CAP", message })?,
        allowed_origins: get("ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .filter(|o| !o.trim().is_empty())
            .map(crate::forms::parse_origin)
            .collect::<Result<_, _>>()
            .map_err(|message| AwsSettingsError::Invalid { name: "ALLOWED_ORIGINS", message })?,
    })
}

pub fn settings_from_env() -> Result<AwsSettings, AwsSettingsError> {
    settings_from(|name| std::env::var(name).ok())
}

/// The running application and the adapters a handler may need directly.
pub struct AwsApp {
    pub app: Arc<App>,
    pub key_provider: Arc<KmsKeyProvider>,
    pub fanout_queue: Arc<SqsQueue>,
    pub send_queue: Arc<SqsQueue>,
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
    let dynamo = clients.dynamodb;
    let sqs = clients.sqs;
    let key_provider = Arc::new(KmsKeyProvider::new(clients.kms, settings.kms_key_id.clone()));
    let fanout_queue = Arc::new(SqsQueue::new(sqs.clone(), settings.fanout_queue_url.clone(), None));
    let send_queue = Arc::new(SqsQueue::new(sqs, settings.send_queue_url.clone(), settings.send_dlq_url.clone()));
    let transport = Arc::new(SesTransport::new(clients.sesv2, settings.ses_configuration_set.clone()));
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
        campaigns: Arc::new(DynamoCampaignStore::new(dynamo.clone(), t.campaigns.clone())),
        ledger: Arc::new(DynamoSendLedger::new(dynamo, t.send_ledger.clone()).with_retention(settings.retention)),
        fanout_queue: fanout_queue.clone(),
        send_queue: send_queue.clone(),
        transport,
        metrics: Arc::new(crate::adapters::emf::EmfMetrics::stdout()),
        clock: Arc::new(crate::ports::SystemClock),
    };
    let mut app_settings = Settings::local(settings.public_base_url.clone(), settings.throughput);
    app_settings.default_sender = settings.sender.clone();
    app_settings.acceptance_grace = settings.acceptance_grace;
    app_settings.reputation.min_sample = u64::from(settings.reputation_min_sample);
    app_settings.retention = settings.retention;
    app_settings.soft_bounce_limit = settings.soft_bounce_limit;
    app_settings.soft_bounce_window = settings.soft_bounce_window;
    app_settings.frequency_cap = settings.frequency_cap;
    // SES tracks opens and clicks itself, through the configuration set.
    app_settings.first_party_tracking = false;
    match settings.forms.clone() {
        Some(forms) => app_settings = app_settings.with_forms(forms),
        None => app_settings.forms.iter_mut().for_each(|f| f.allowed_origins = settings.allowed_origins.clone()),
    }
    if let Some(schema) = settings.schema.clone() {
        app_settings = app_settings
            .with_schema(schema, settings.forms.is_some())
            .map_err(|message| AwsSettingsError::Invalid { name: "CONTACT_SCHEMA_JSON", message })?;
    }
    let app = Arc::new(App::new(
        ports,
        Arc::new(Envelope::new(provider, CacheLimits::default())),
        Arc::new(keyring),
        Arc::new(app_settings),
        RateShare::per_sender(&settings.throughput),
    ));
    Ok(AwsApp { app, key_provider, fanout_queue, send_queue })
}

/// `build` with the SDK configuration loaded from the environment (honours `AWS_ENDPOINT_URL`).
pub async fn build_from_env() -> Result<AwsApp, AwsSettingsError> {
    let settings = settings_from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    build(AwsClients::from_sdk(&sdk), settings).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("CONTACTS_TABLE", "c"),
            ("CONSENT_TABLE", "k"),
            ("CAMPAIGNS_TABLE", "m"),
            ("SEND_LEDGER_TABLE", "l"),
            ("SUPPRESSION_TABLE", "s"),
            ("AUDIT_LOG_TABLE", "a"),
            ("ACTIVITY_TABLE", "e"),
            ("FANOUT_QUEUE_URL", "https://sqs/f"),
            ("SEND_QUEUE_URL", "https://sqs/s"),
            ("KMS_KEY_ID", "alias/carepost"),
            ("PUBLIC_BASE_URL", "https://mail.clinic.example"),
            ("SENDER_ADDRESS", "news@clinic.example"),
            ("SEND_RATE_PER_SECOND", "50"),
        ])
    }

    #[test]
    fn a_complete_environment_parses() {
        let e = env();
        let s = settings_from(|n| e.get(n).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(s.throughput.send_rate_per_second, 50);
        assert_eq!(s.tables.send_ledger, "l");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut e = env();
        e.remove("KMS_KEY_ID");
        let err = settings_from(|n| e.get(n).map(|v| (*v).to_owned())).unwrap_err();
        assert_eq!(err.to_string(), "environment variable KMS_KEY_ID is required");
    }

    #[test]
    fn a_sender_concurrency_below_two_is_refused() {
        let mut e = env();
        e.insert("SENDER_MAX_CONCURRENCY", "1");
        let err = settings_from(|n| e.get(n).map(|v| (*v).to_owned())).unwrap_err();
        assert!(err.to_string().contains("SenderMaxConcurrency"), "{err}");
    }
}
