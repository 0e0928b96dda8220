//! SES v2 as the mail transport: `SendEmail` with the raw RFC 5322 bytes, the
//! envelope sender and recipient, the configured configuration set (its event
//! destination feeds the `ses-events` queue) and tags free of PHI.
//!
//! SES copies tags into every event it publishes, so they hold IDs only:
//! `kind`, and for a campaign send (mail key `<campaign id>-<contact id>`)
//! `campaign_id` and `contact_id`, random UUIDs. With them a Send event
//! settles a claim whose `SendEmail` answer was lost (`MailEvent::tagged`).
//!
//! Open and click tracking is decided per message, not by the configuration
//! set: every `SendEmail` carries SES's `ConfigurationOverrides.Tracking`
//! with both switches set from the campaign's opt-in
//! (`OutgoingMail::provider_tracking`), so a campaign that did not opt in
//! gets no SES pixel and no rewritten links although the configuration set
//! publishes open and click events.
//!
//! Failures are classified from the error code, the HTTP status and the
//! kind of SDK failure; the message names the code only, because SES's text
//! may echo an address.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{
    ConfigurationOverrides, Destination, EmailContent, FeatureStatus, MessageTag, RawMessage,
    TrackingConfigurationOverrides,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::sanitize_code;
use crate::domain::{CampaignId, ContactId, ProviderMessageId, Tracking};
use crate::ports::{MailTransport, OutgoingMail, TransportError, TransportErrorKind};

const OP: &str = "ses SendEmail";

/// How a failed `SendEmail` should be handled, from the error code, the
/// service's message and the HTTP status alone (no PHI reaches the result).
///
/// * Throttled: `TooManyRequestsException`, `LimitExceededException`, a
///   `Throttling` code, "Maximum sending rate exceeded", HTTP 429.
/// * Transient (an operator must act; messages retry, then reach the
///   dead-letter queue and its alarm rather than being marked failed):
///   `SendingPausedException`, `AccountSuspendedException`,
///   `MailFromDomainNotVerifiedException`, `NotFoundException` (missing
///   configuration set), and any other 4xx.
/// * Permanent: `MessageRejected`, `BadRequestException`.
/// * Ambiguous: any 5xx: the request reached SES and it may have accepted
///   the message, so it is not handed over again blindly.
pub fn classify_ses_error(code: Option<&str>, message: Option<&str>, http_status: Option<u16>) -> TransportErrorKind {
    let bare = code.map(|c| c.rsplit('#').next().unwrap_or(c));
    let throttled = matches!(
        bare,
        Some("TooManyRequestsException" | "LimitExceededException" | "Throttling" | "ThrottlingException")
    ) || message.is_some_and(|m| m.contains("Maximum sending rate exceeded"))
        || http_status == Some(429);
    if throttled {
        return TransportErrorKind::Throttled;
    }
    match bare {
        Some(
            "SendingPausedException"
            | "AccountSuspendedException"
            | "MailFromDomainNotVerifiedException"
            | "NotFoundException",
        ) => TransportErrorKind::Transient,
        Some("MessageRejected" | "BadRequestException") => TransportErrorKind::Permanent,
        _ if http_status.is_some_and(|s| s >= 500) => TransportErrorKind::Ambiguous,
        _ => TransportErrorKind::Transient,
    }
}

/// True if the error chain shows the request never left this process: the
/// connection was refused or could not be set up (DNS, connect timeout, TLS).
fn never_sent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable)
        {
            return true;
        }
        // hyper-util's connect failures: "client error (Connect)".
        if e.to_string().starts_with("client error (Connect)") {
            return true;
        }
        next = e.source();
    }
    false
}

fn transport_error<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> TransportError {
    use TransportErrorKind::{Ambiguous, Transient};
    match err {
        SdkError::ServiceError(service) => {
            let (code, status) = (service.err().code(), service.raw().status().as_u16());
            let kind = classify_ses_error(code, service.err().message(), Some(status));
            let what = match code {
                Some(code) => format!("{OP}: {}", sanitize_code(code)),
                None => format!("{OP}: http {status}"),
            };
            TransportError::new(kind, what)
        }
        SdkError::DispatchFailure(failure) => {
            let refused = failure.as_connector_error().is_some_and(|c| c.is_user() || never_sent(c));
            if refused {
                TransportError::new(Transient, format!("{OP}: could not connect"))
            } else {
                TransportError::new(Ambiguous, format!("{OP}: connection lost"))
            }
        }
        SdkError::TimeoutError(_) => TransportError::new(Ambiguous, format!("{OP}: timeout")),
        SdkError::ResponseError(_) => TransportError::new(Ambiguous, format!("{OP}: unreadable response")),
        SdkError::ConstructionFailure(_) => TransportError::new(Transient, format!("{OP}: request could not be built")),
        _ => TransportError::new(Ambiguous, format!("{OP}: failed")),
    }
}

/// A tag value SES accepts: `[A-Za-z0-9_-]`, at most 256 characters.
fn tag_value(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(256).collect()
}

/// The (campaign, contact) of a campaign mail key `<campaign id>-<contact id>`.
pub fn campaign_of_key(key: &str) -> Option<(CampaignId, ContactId)> {
    const UUID_LEN: usize = 36;
    if key.len() != 2 * UUID_LEN + 1 || key.as_bytes()[UUID_LEN] != b'-' {
        return None;
    }
    Some((CampaignId::parse(key.get(..UUID_LEN)?).ok()?, ContactId::parse(key.get(UUID_LEN + 1..)?).ok()?))
}

/// The tags for a mail: IDs only, never PHI.
pub fn email_tags(key: &str) -> Vec<(&'static str, String)> {
    match campaign_of_key(key) {
        Some((campaign, contact)) => vec![
            ("kind", "campaign".into()),
            ("campaign_id", tag_value(&campaign.to_string())),
            ("contact_id", tag_value(&contact.to_string())),
        ],
        None if key.starts_with("confirm-") => vec![("kind", "confirmation".into())],
        None => vec![("kind", "other".into())],
    }
}

/// SES's per-message tracking switches: each explicitly on or off, so the
/// configuration set's own setting never decides.
pub fn tracking_overrides(tracking: Tracking) -> ConfigurationOverrides {
    let status = |on: bool| if on { FeatureStatus::Enabled } else { FeatureStatus::Disabled };
    ConfigurationOverrides::builder()
        .tracking(
            TrackingConfigurationOverrides::builder()
                .open_tracking_enabled(status(tracking.opens))
                .click_tracking_enabled(status(tracking.clicks))
                .build(),
        )
        .build()
}

pub struct SesTransport {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
    /// For mail marked `tls_optional` (no PHI): a set without `TlsPolicy: REQUIRE`.
    notice_configuration_set: Option<String>,
}

impl SesTransport {
    /// Build `client` with retries off (`runtime::aws::ses_client`): a retry
    /// after a lost answer may mail the patient twice.
    pub fn new(client: aws_sdk_sesv2::Client, configuration_set: Option<String>) -> Self {
        Self { client, configuration_set, notice_configuration_set: None }
    }

    /// Where notices and codes of secure messages go; without one they take
    /// the main set (and do not reach servers without TLS).
    pub fn with_notice_configuration_set(mut self, set: Option<String>) -> Self {
        self.notice_configuration_set = set;
        self
    }
}

#[async_trait]
impl MailTransport for SesTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError> {
        let unbuildable = |_| TransportError::new(TransportErrorKind::Permanent, format!("{OP}: message is invalid"));
        let raw = RawMessage::builder().data(Blob::new(mail.raw.clone())).build().map_err(unbuildable)?;
        let tags = email_tags(&mail.key)
            .into_iter()
            .map(|(name, value)| MessageTag::builder().name(name).value(value).build().map_err(unbuildable))
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_email()
            .from_email_address(&mail.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(match (&self.notice_configuration_set, mail.tls_optional) {
                (Some(notices), true) => Some(notices.clone()),
                _ => self.configuration_set.clone(),
            })
            .configuration_overrides(tracking_overrides(mail.provider_tracking))
            .set_email_tags(Some(tags))
            .send()
            .await
            .map_err(|e| transport_error(&e).with_source(e))?;
        match output.message_id {
            Some(id) if !id.is_empty() => Ok(ProviderMessageId::new(id)),
            _ => {
                Err(TransportError::new(TransportErrorKind::Ambiguous, format!("{OP}: accepted without a message id")))
            }
        }
    }
}
