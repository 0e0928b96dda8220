//! Port: the mail service's account and the sender's DNS, as `carepost
//! doctor` reads them to say whether a deployed stack can send.
//!
//! Read-only, and about the account, never a patient: nothing here holds
//! PHI. The AWS adapter is `adapters::aws::ses_account` (SES v2), the DNS
//! one `adapters::dns` (TXT records over the system's or a given resolver).

use super::*;

/// What the account allows (SES `GetAccount`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStanding {
    /// Out of the sandbox: mail reaches any address, not only verified ones.
    pub production_access: bool,
    pub sending_enabled: bool,
    /// Messages per second the account may send.
    pub max_send_rate: f64,
    pub max_24_hour_send: f64,
}

/// A verification's state as SES reports it (DKIM, MAIL FROM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Success,
    Pending,
    Failed,
    TemporaryFailure,
    NotStarted,
    /// A state this version does not know, by SES's name.
    Other(String),
}

impl Verification {
    pub fn parse(status: &str) -> Self {
        match status {
            "SUCCESS" => Self::Success,
            "PENDING" => Self::Pending,
            "FAILED" => Self::Failed,
            "TEMPORARY_FAILURE" => Self::TemporaryFailure,
            "NOT_STARTED" => Self::NotStarted,
            other => Self::Other(other.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Pending => "PENDING",
            Self::Failed => "FAILED",
            Self::TemporaryFailure => "TEMPORARY_FAILURE",
            Self::NotStarted => "NOT_STARTED",
            Self::Other(name) => name,
        }
    }
}

/// The custom MAIL FROM domain of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFromStanding {
    pub domain: String,
    pub status: Verification,
}

/// A sending identity (SES `GetEmailIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityStanding {
    pub verified_for_sending: bool,
    /// None: DKIM signing is not set up for the identity.
    pub dkim: Option<Verification>,
    /// None: no custom MAIL FROM domain (mail goes out from amazonses.com).
    pub mail_from: Option<MailFromStanding>,
}

/// A configuration set (SES `GetConfigurationSet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationSetStanding {
    /// `TlsPolicy: REQUIRE`: SES delivers only over TLS.
    pub tls_required: bool,
    pub sending_enabled: bool,
}

/// One event destination of a configuration set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDestinationStanding {
    pub name: String,
    pub enabled: bool,
    /// SES's event type names (`SEND`, `BOUNCE`, …).
    pub events: Vec<String>,
    /// Publishes to EventBridge (the stack's rule feeds its events queue from the default bus).
    pub to_event_bridge: bool,
}

/// The account could not be read. `Display` names the operation and the
/// error code only (SES's text can echo request parameters).
#[derive(thiserror::Error)]
#[error("{operation} was not answered ({code})")]
pub struct AccountError {
    pub operation: &'static str,
    pub code: String,
    #[source]
    pub source: Option<BoxError>,
}

impl std::fmt::Debug for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountError").field("operation", &self.operation).field("code", &self.code).finish()
    }
}

impl Classify for AccountError {
    fn class(&self) -> ErrorClass {
        // Missing permissions stay missing until someone grants them.
        if self.code.contains("AccessDenied") { ErrorClass::Permanent } else { ErrorClass::Transient }
    }
}

/// The mail service's account.
#[async_trait]
pub trait SendingAccount: Send + Sync {
    async fn account(&self) -> Result<AccountStanding, AccountError>;
    /// None: no such identity.
    async fn identity(&self, identity: &str) -> Result<Option<IdentityStanding>, AccountError>;
    /// None: no such configuration set.
    async fn configuration_set(&self, name: &str) -> Result<Option<ConfigurationSetStanding>, AccountError>;
    async fn event_destinations(&self, configuration_set: &str) -> Result<Vec<EventDestinationStanding>, AccountError>;
}

/// A DNS lookup failed (not "no such name", which is an empty answer).
#[derive(thiserror::Error)]
#[error("DNS lookup of {name} failed")]
pub struct LookupError {
    pub name: String,
    #[source]
    pub source: Option<BoxError>,
}

impl std::fmt::Debug for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupError").field("name", &self.name).finish()
    }
}

/// TXT records of public DNS names (the sender's own domain, never a
/// patient's).
#[async_trait]
pub trait TxtRecords: Send + Sync {
    /// Each TXT record's strings joined; empty when the name has none or
    /// does not exist.
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError>;
}
