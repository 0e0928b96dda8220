//! The SES v2 account as `carepost doctor` reads it: `GetAccount`,
//! `GetEmailIdentity`, `GetConfigurationSet` and
//! `GetConfigurationSetEventDestinations`. Read-only; errors keep the SDK
//! error as their source and name only the operation and the error code.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::sanitize_code;
use crate::ports::{
    AccountError, AccountStanding, ConfigurationSetStanding, EventDestinationStanding, IdentityStanding,
    MailFromStanding, SendingAccount, Verification,
};

pub struct SesAccount {
    client: aws_sdk_sesv2::Client,
}

impl SesAccount {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_sesv2::Client::new(config) }
    }
}

/// The error code, or what kind of failure it was when there is none.
fn unanswered<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> AccountError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = match (error.code(), &error) {
        (Some(code), _) => sanitize_code(code),
        (None, SdkError::ServiceError(e)) => format!("HTTP {}", e.raw().status().as_u16()),
        (None, SdkError::DispatchFailure(_)) => "unreachable".to_owned(),
        (None, SdkError::TimeoutError(_)) => "timeout".to_owned(),
        (None, _) => "unreadable answer".to_owned(),
    };
    AccountError { operation, code, source: Some(Box::new(error)) }
}

fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    // SES says NotFoundException; the v1 name is what some emulators answer.
    matches!(error.code(), Some("NotFoundException" | "ConfigurationSetDoesNotExist"))
}

#[async_trait]
impl SendingAccount for SesAccount {
    async fn account(&self) -> Result<AccountStanding, AccountError> {
        let answer = self.client.get_account().send().await.map_err(|e| unanswered("GetAccount", e))?;
        let quota = answer.send_quota();
        Ok(AccountStanding {
            production_access: answer.production_access_enabled(),
            sending_enabled: answer.sending_enabled(),
            max_send_rate: quota.map_or(0.0, |q| q.max_send_rate()),
            max_24_hour_send: quota.map_or(0.0, |q| q.max24_hour_send()),
        })
    }

    async fn identity(&self, identity: &str) -> Result<Option<IdentityStanding>, AccountError> {
        let answer = match self.client.get_email_identity().email_identity(identity).send().await {
            Ok(answer) => answer,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(unanswered("GetEmailIdentity", e)),
        };
        let dkim = answer
            .dkim_attributes()
            .filter(|d| d.signing_enabled())
            .map(|d| d.status().map_or(Verification::NotStarted, |s| Verification::parse(s.as_str())));
        let mail_from =
            answer.mail_from_attributes().filter(|m| !m.mail_from_domain().is_empty()).map(|m| MailFromStanding {
                domain: m.mail_from_domain().to_owned(),
                status: Verification::parse(m.mail_from_domain_status().as_str()),
            });
        Ok(Some(IdentityStanding { verified_for_sending: answer.verified_for_sending_status(), dkim, mail_from }))
    }

    async fn configuration_set(&self, name: &str) -> Result<Option<ConfigurationSetStanding>, AccountError> {
        let answer = match self.client.get_configuration_set().configuration_set_name(name).send().await {
            Ok(answer) => answer,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(unanswered("GetConfigurationSet", e)),
        };
        let tls = answer.delivery_options().and_then(|d| d.tls_policy()).map(|t| t.as_str());
        Ok(Some(ConfigurationSetStanding {
            tls_required: tls == Some("REQUIRE"),
            // Absent sending options mean SES's default: enabled.
            sending_enabled: answer.sending_options().is_none_or(|s| s.sending_enabled()),
        }))
    }

    async fn event_destinations(&self, configuration_set: &str) -> Result<Vec<EventDestinationStanding>, AccountError> {
        let answer = self
            .client
            .get_configuration_set_event_destinations()
            .configuration_set_name(configuration_set)
            .send()
            .await
            .map_err(|e| unanswered("GetConfigurationSetEventDestinations", e))?;
        Ok(answer
            .event_destinations()
            .iter()
            .map(|d| EventDestinationStanding {
                name: d.name().to_owned(),
                enabled: d.enabled(),
                events: d.matching_event_types().iter().map(|e| e.as_str().to_owned()).collect(),
                to_event_bridge: d.event_bridge_destination().is_some(),
            })
            .collect())
    }
}
