//! SMTP through lettre, for relays of BAA-covered providers. STARTTLS with
//! certificate verification is required; the only way around it is the
//! explicit `InsecureLoopback` setting, refused for any host but loopback.

use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::domain::ProviderMessageId;
use crate::ports::{MailTransport, OutgoingMail, TransportError, TransportErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS required, certificate verified. The default.
    RequireStartTls,
    /// Plain SMTP to a loopback test sink only.
    InsecureLoopback,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpSettingsError {
    #[error("plain SMTP is allowed only to 127.0.0.1, ::1 or localhost, not '{0}'")]
    InsecureRemote(String),
    #[error("SMTP relay '{0}' is not usable: {1}")]
    Relay(String, String),
}

pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpSettingsError> {
        let builder = match settings.security {
            SmtpSecurity::RequireStartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .map_err(|e| SmtpSettingsError::Relay(settings.host.clone(), e.to_string()))?,
            SmtpSecurity::InsecureLoopback => {
                if !matches!(settings.host.as_str(), "127.0.0.1" | "::1" | "localhost") {
                    return Err(SmtpSettingsError::InsecureRemote(settings.host.clone()));
                }
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
        };
        let mut builder = builder.port(settings.port).timeout(Some(std::time::Duration::from_secs(30)));
        if let (Some(user), Some(pass)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Self { inner: builder.build() })
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> TransportErrorKind {
    if lacks_tls(e) {
        TransportErrorKind::TlsUnavailable
    } else if e.is_permanent() {
        TransportErrorKind::Permanent
    } else if e.is_transient() && e.status().is_some_and(|c| c.to_string() == "421" || c.to_string() == "454") {
        TransportErrorKind::Throttled
    } else {
        // Connection and timeout failures: retry, then dead-letter.
        TransportErrorKind::Transient
    }
}

/// The message cannot go over TLS: the relay offers no STARTTLS (lettre's
/// own client error), the handshake or certificate failed, or the relay
/// refused for want of encryption (`530 … STARTTLS`, enhanced `x.7.10`).
/// The reply text is matched here and never kept.
fn lacks_tls(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let text = e.to_string().to_ascii_lowercase();
    (e.is_client() && text.contains("starttls"))
        || (e.status().is_some()
            && (text.contains("starttls") || text.contains(".7.10") || text.contains("tls required")))
}

fn describe(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("smtp reply {code}"),
        None if e.is_timeout() => "smtp timeout".into(),
        None if lacks_tls(e) => "smtp TLS unavailable (STARTTLS missing or certificate refused)".into(),
        None => "smtp connection or protocol failure".into(),
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError> {
        let parse = |s: &str| {
            s.parse::<Address>()
                .map_err(|_| TransportError::new(TransportErrorKind::Permanent, "envelope address is invalid"))
        };
        let envelope = Envelope::new(Some(parse(&mail.from)?), vec![parse(&mail.to)?])
            .map_err(|_| TransportError::new(TransportErrorKind::Permanent, "envelope is invalid"))?;
        self.inner
            .send_raw(&envelope, &mail.raw)
            .await
            // Only the reply code: server reply text may echo the recipient's address.
            .map_err(|e| TransportError::new(classify(&e), describe(&e)).with_source(e))?;
        Ok(ProviderMessageId::new(mail.message_id.clone()))
    }
}
