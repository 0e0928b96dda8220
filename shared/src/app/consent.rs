//! Consent capture, double opt-in confirmation and withdrawal. Each change is
//! a hash-chained ledger entry carrying its proof; PHI proof fields (IP, user
//! agent, origin) are sealed inside the entry.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::{AppError, ConsentLedger};
use crate::config::Settings;
use crate::crypto::{Envelope, Keyring, TokenPurpose};
use crate::domain::{
    ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentRequestId, ConsentStatus, ContactId,
    EmailAddress, InvalidField, Profile, ProfileInput, Sensitive,
};
use crate::mail::{MessageParts, build_message};
use crate::ports::{
    ActivityStore, Clock, ConsentStore, ContactRecord, ContactStore, MailTransport, OutgoingMail, StoreError, Window,
};

/// Where a submission came from; kept, sealed, as proof. All of it is PHI:
/// `Sensitive` keeps it out of `Debug` and serializes as the plain value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestProof {
    pub ip: Sensitive<Option<IpAddr>>,
    pub user_agent: Sensitive<Option<String>>,
    pub origin: Sensitive<Option<String>>,
}

/// A consent form or API submission, as received (`profile`'s `Debug` is redacted).
#[derive(Debug, Clone, Default)]
pub struct ConsentSubmission {
    pub form_id: String,
    pub email: Sensitive<String>,
    pub categories: Vec<String>,
    pub profile: ProfileInput,
    /// A field hidden from people; bots fill it in.
    pub honeypot: Sensitive<Option<String>>,
    pub method: Option<ConsentMethod>,
    /// The HTTP layer verified the form's server-to-server signature. A
    /// submission with neither this nor a browser Origin is refused.
    pub server_authenticated: bool,
}

/// What a confirmation link asks for, shown on its page: who asks and the
/// topics (labels) that pressing the button grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationRequest {
    pub clinic_name: String,
    pub topics: Vec<String>,
}

/// The answer is the same whether or not the address was known, so the
/// endpoint cannot be used to find out who is a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    pub thank_you_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    AlreadyConfirmed,
}

/// The least time between two confirmation emails to one address.
const CONFIRMATION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

fn parse_categories(raw: &[String], allowed: &[ConsentCategory]) -> Result<Vec<ConsentCategory>, InvalidField> {
    if raw.is_empty() {
        return Err(InvalidField::new("categories", "choose at least one category"));
    }
    let mut out = Vec::new();
    for name in raw {
        let category = ConsentCategory::parse(name.trim())
            .ok()
            .filter(|c| allowed.contains(c))
            .ok_or_else(|| InvalidField::new("categories", "holds a topic this form does not offer"))?;
        if !out.contains(&category) {
            out.push(category);
        }
    }
    Ok(out)
}

/// Consent from web forms and API callers, and its double opt-in confirmation.
pub struct ConsentIntake {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) activity: Arc<dyn ActivityStore>,
    pub(super) transport: Arc<dyn MailTransport>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl ConsentIntake {
    pub async fn submit(&self, submission: ConsentSubmission, proof: RequestProof) -> Result<SubmitOutcome, AppError> {
        let form = self
            .settings
            .form(&submission.form_id)
            .ok_or_else(|| InvalidField::new("form_id", "unknown form"))?
            .clone();
        let outcome = SubmitOutcome { thank_you_url: form.thank_you_url.clone() };
        // Browsers always say which page posted. Anything else must be the
        // form's own server, proven by its signature: an anonymous script
        // cannot ask in a patient's name.
        match proof.origin.expose().as_deref() {
            Some(origin) if !self.settings.origin_allowed(&form, origin) => return Err(AppError::OriginNotAllowed),
            None if !submission.server_authenticated => return Err(AppError::Unauthenticated),
            _ => {}
        }
        if submission.honeypot.expose().as_deref().is_some_and(|h| !h.trim().is_empty()) {
            return Ok(outcome);
        }
        if let Some(field) = submission.profile.present().into_iter().find(|a| !form.fields.contains(a)) {
            return Err(InvalidField::new(field.as_str(), "is not collected by this form").into());
        }
        let email =
            EmailAddress::parse(submission.email.expose()).map_err(|e| InvalidField::new("email", e.to_string()))?;
        let categories = parse_categories(&submission.categories, &form.categories)?;
        // Validate the attributes even when they will not be stored, so bad
        // input gets the same 4xx for known and unknown addresses.
        let now = self.clock.now();
        let profile = self.settings.schema.apply(&submission.profile, Profile::default(), now.date())?;
        let contact_id = self.find_or_create_contact(&email, &profile).await?;

        let grants = self.consent.grants(&contact_id).await?;
        let missing: Vec<ConsentCategory> =
            categories.into_iter().filter(|c| !grants.iter().any(|g| &g.category == c && g.allows_send(now))).collect();
        if missing.is_empty() {
            return Ok(outcome);
        }
        let method =
            submission.method.unwrap_or(if submission.server_authenticated && proof.origin.expose().is_none() {
                ConsentMethod::Api
            } else {
                ConsentMethod::WebForm
            });
        if !form.double_opt_in {
            let evidence =
                self.evidence(&contact_id, ConsentEntryKind::Granted, missing, &form, method, &proof, now).await?;
            self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
            return Ok(outcome);
        }
        // Each request names its topics and its link confirms those only. A
        // repeat of a pending request records nothing new and reuses it; a
        // request adding topics is a new request with its own link.
        let all_pending =
            missing.iter().all(|c| grants.iter().any(|g| &g.category == c && g.status == ConsentStatus::Pending));
        let same_request = if all_pending {
            let history = self.consent.history(&contact_id).await?;
            history
                .iter()
                .rev()
                .find(|e| {
                    e.evidence.kind == ConsentEntryKind::Requested
                        && e.evidence.categories.len() == missing.len()
                        && missing.iter().all(|c| e.evidence.categories.contains(c))
                })
                .and_then(|e| e.evidence.request_id)
        } else {
            None
        };
        let request_id = match same_request {
            Some(id) => id,
            None => {
                let evidence = self
                    .evidence(&contact_id, ConsentEntryKind::Requested, missing.clone(), &form, method, &proof, now)
                    .await?;
                let request_id = evidence.request_id.ok_or(AppError::Conflict("a request without its ID".into()))?;
                self.consent_ledger.append(evidence, ConsentStatus::Pending).await?;
                request_id
            }
        };
        // At most one confirmation email per address per hour: the public
        // form must not become a way to flood someone's inbox. A request that
        // gets no email is confirmed only by its own link, sent when it is
        // asked again after the hour.
        let slot = self
            .activity
            .claim_confirmation_slot(&contact_id, Window::ending(now, CONFIRMATION_INTERVAL, self.settings.retention))
            .await?;
        if slot {
            // The request's topics are `missing`, reused or new.
            self.send_confirmation(&contact_id, &email, &request_id, &form, &missing).await?;
        }
        Ok(outcome)
    }

    /// A new ledger entry's evidence for a form submission, proof sealed.
    #[allow(clippy::too_many_arguments)]
    async fn evidence(
        &self,
        contact_id: &ContactId,
        kind: ConsentEntryKind,
        categories: Vec<ConsentCategory>,
        form: &crate::config::FormDefinition,
        method: ConsentMethod,
        proof: &RequestProof,
        at: OffsetDateTime,
    ) -> Result<ConsentEvidence, AppError> {
        Ok(ConsentEvidence {
            contact_id: *contact_id,
            kind,
            categories,
            at,
            method,
            form_id: Some(form.id.clone()),
            consent_text_sha256: Some(form.consent_text_sha256.clone()),
            request_id: Some(ConsentRequestId::new_random()),
            expires_at: None,
            imported: None,
            sealed_proof: self.consent_ledger.seal_proof(contact_id, proof).await?,
        })
    }

    /// Confirms a double opt-in request from its signed link (POST only).
    pub async fn confirm(&self, token: &str, proof: RequestProof) -> Result<ConfirmOutcome, AppError> {
        let now = self.clock.now();
        let verified =
            self.keyring.tokens.verify(TokenPurpose::ConfirmConsent, token, now).map_err(|_| AppError::BadToken)?;
        let request_id = ConsentRequestId::from_bytes(verified.subject);
        let history = self.consent.history(&verified.contact_id).await?;
        let request = history
            .iter()
            .find(|e| e.evidence.request_id == Some(request_id) && e.evidence.kind == ConsentEntryKind::Requested)
            .ok_or(AppError::BadToken)?;
        // Exactly the topics this request named, those still pending: a topic
        // someone else asked for under the same address has its own request
        // and link; a topic withdrawn meanwhile stays withdrawn; with nothing
        // pending, a replay changes nothing.
        let grants = self.consent.grants(&verified.contact_id).await?;
        let categories: Vec<ConsentCategory> = request
            .evidence
            .categories
            .iter()
            .filter(|c| grants.iter().any(|g| &g.category == *c && g.status == ConsentStatus::Pending))
            .cloned()
            .collect();
        if categories.is_empty() {
            return Ok(ConfirmOutcome::AlreadyConfirmed);
        }
        let sealed_proof = self.consent_ledger.seal_proof(&verified.contact_id, &proof).await?;
        let evidence = ConsentEvidence {
            contact_id: verified.contact_id,
            kind: ConsentEntryKind::Granted,
            categories,
            at: now,
            method: request.evidence.method,
            form_id: request.evidence.form_id.clone(),
            consent_text_sha256: request.evidence.consent_text_sha256.clone(),
            request_id: Some(request_id),
            expires_at: None,
            imported: None,
            sealed_proof,
        };
        self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
        Ok(ConfirmOutcome::Confirmed)
    }

    /// What a confirmation link asks for, for its page; `BadToken` if the
    /// link is not valid.
    pub async fn confirmation_request(&self, token: &str) -> Result<ConfirmationRequest, AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::ConfirmConsent, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        let request_id = ConsentRequestId::from_bytes(verified.subject);
        let history = self.consent.history(&verified.contact_id).await?;
        let request = history
            .iter()
            .find(|e| e.evidence.request_id == Some(request_id) && e.evidence.kind == ConsentEntryKind::Requested)
            .ok_or(AppError::BadToken)?;
        let form = request.evidence.form_id.as_deref().and_then(|id| self.settings.form(id));
        Ok(ConfirmationRequest {
            clinic_name: self.clinic_name(form),
            topics: request.evidence.categories.iter().map(ConsentCategory::label).collect(),
        })
    }

    /// Whether a request without an Origin is signed by the form's server:
    /// `signature` is `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`
    /// under the form's `server_secret`, `timestamp` within five minutes.
    pub fn server_signed(&self, form_id: &str, timestamp: &str, signature: &str, body: &[u8]) -> bool {
        let secret = self.settings.form(form_id).and_then(|f| f.server_secret.as_ref());
        secret.is_some_and(|s| s.verify(timestamp, signature, body, self.clock.now()))
    }

    /// The clinic as a form names it, or the default sender's name.
    pub fn clinic_name(&self, form: Option<&crate::config::FormDefinition>) -> String {
        form.and_then(|f| f.clinic_name.clone()).unwrap_or_else(|| self.settings.default_sender.name.clone())
    }

    async fn find_or_create_contact(&self, email: &EmailAddress, profile: &Profile) -> Result<ContactId, AppError> {
        let email_index = self.keyring.blind_index.index(email);
        if let Some(existing) = self.contacts.find_by_email_index(&email_index).await? {
            // A public form never changes a known contact's attributes:
            // anyone can type anyone's address.
            return Ok(existing.id);
        }
        let id = ContactId::new_random();
        let record = ContactRecord {
            id,
            external_id: None,
            email_index: email_index.clone(),
            sealed: self.envelope.seal(&id, email, profile).await?,
            updated_at: self.clock.now(),
        };
        match self.contacts.put(&record).await {
            Ok(()) => Ok(id),
            // Two submissions raced: use the one that won.
            Err(StoreError::Conflict(_)) => self
                .contacts
                .find_by_email_index(&email_index)
                .await?
                .map(|r| r.id)
                .ok_or_else(|| AppError::Conflict("contact vanished".into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn send_confirmation(
        &self,
        contact_id: &ContactId,
        email: &EmailAddress,
        request_id: &ConsentRequestId,
        form: &crate::config::FormDefinition,
        topics: &[ConsentCategory],
    ) -> Result<(), AppError> {
        let expires = self.clock.now() + self.settings.confirmation_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::ConfirmConsent, contact_id, request_id.as_bytes(), expires);
        let link = self.settings.public_base_url.join(&format!("/confirm/{token}"));
        let sender = &self.settings.default_sender;
        let message_id = crate::mail::message_id(&format!("confirm.{request_id}"), sender);
        let clinic = self.clinic_name(Some(form));
        let labels: Vec<String> = topics.iter().map(ConsentCategory::label).collect();
        let text = format!(
            "Please confirm that you want emails from {clinic} about:\n\n{}\n\n\
             Open this link and press the Confirm button:\n{link}\n\n\
             Confirming grants these topics only. If you did not ask for this, ignore this email and nothing \
             will be sent.\n",
            labels.iter().map(|l| format!("  - {l}")).collect::<Vec<_>>().join("\n"),
        );
        let html = format!(
            "<p>Please confirm that you want emails from {c} about:</p><ul>{items}</ul>\
             <p><a href=\"{link}\">Confirm my subscription</a></p>\
             <p>Confirming grants these topics only. If you did not ask for this, ignore this email and nothing \
             will be sent.</p>",
            c = html_escape(&clinic),
            items = labels.iter().map(|l| format!("<li>{}</li>", html_escape(l))).collect::<String>(),
        );
        let raw = build_message(MessageParts {
            from: sender,
            to: email,
            subject: &format!("Please confirm your subscription to {clinic}"),
            message_id: &message_id,
            list: None,
            text,
            html,
        })
        .map_err(|e| InvalidField::new("email", e.to_string()))?;
        let mail = OutgoingMail {
            key: format!("confirm-{request_id}"),
            message_id,
            from: sender.address.as_str().to_owned(),
            to: email.as_str().to_owned(),
            raw,
        };
        self.transport.send(&mail).await?;
        Ok(())
    }
}

pub(crate) use crate::mail::html_escape;

#[cfg(test)]
#[path = "consent_tests.rs"]
mod tests;
