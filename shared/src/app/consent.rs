//! Consent capture, double opt-in confirmation and withdrawal. Each change is
//! a hash-chained ledger entry carrying its proof; PHI proof fields (IP, user
//! agent, origin) are sealed inside the entry.

use std::net::IpAddr;
use std::sync::Arc;

use governor::DefaultDirectRateLimiter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AppError, ConsentLedger};
use crate::config::Settings;
use crate::crypto::{Envelope, Keyring, TokenPurpose};
use crate::domain::{
    ConfirmationJob, ConsentCategory, ConsentEntry, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentRequestId,
    ConsentStatus, ContactId, EmailAddress, IntakeId, InvalidField, Profile, ProfileInput, Sensitive,
};
use crate::error::Classify;
use crate::mail::{MessageParts, build_message};
use crate::ports::{
    ActivityStore, Clock, ConsentStore, ContactRecord, ContactStore, IntakeStore, LimitKey, LimitWindow, MailTransport,
    OutgoingMail, PendingIntake, Queue, StoreError, Window,
};

/// Where a submission came from; kept, sealed, as proof. All of it is PHI:
/// `Sensitive` keeps it out of `Debug` and serializes as the plain value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// The per-client limits count requests per clock hour.
const LIMIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// A request as the ledger records it: kind, topics, form, method, proof, time.
type Asked<'a> = (
    ConsentEntryKind,
    Vec<ConsentCategory>,
    &'a crate::config::FormDefinition,
    ConsentMethod,
    &'a RequestProof,
    OffsetDateTime,
);

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

/// Consent from web forms and API callers, and its double opt-in
/// confirmation. The endpoint only checks, seals and stores a request and
/// queues its job (`submit`), the same work whether or not the address is
/// known; the send worker does the rest (`process_intake`): the contact, the
/// ledger entry and the confirmation email, within the send rate.
pub struct ConsentIntake {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) activity: Arc<dyn ActivityStore>,
    pub(super) intake: Arc<dyn IntakeStore>,
    pub(super) send_queue: Arc<dyn Queue>,
    pub(super) transport: Arc<dyn MailTransport>,
    /// The sender's rate limiter: confirmations share campaign mail's budget.
    pub(super) limiter: Arc<DefaultDirectRateLimiter>,
    pub(super) consent_ledger: Arc<ConsentLedger>,
    /// Journeys a confirmed sign-up starts (`consent_confirmed` entries).
    pub(super) journeys: Arc<super::JourneyRunner>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

/// What a stored request asks, sealed with its proof (all of it may be PHI
/// by context: a topic can name a condition).
#[derive(Serialize, Deserialize)]
struct SealedRequest {
    categories: Vec<ConsentCategory>,
    method: ConsentMethod,
    proof: RequestProof,
}

/// Whether a confirmation waits for the send rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pacing {
    SendRate,
    Unpaced,
}

/// What the worker did with one stored request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Handled before, expired, or its form is no longer configured.
    Gone,
    /// Every topic was already granted.
    NothingNew,
    /// A single opt-in form: granted at once.
    Granted,
    /// Pending; its confirmation email was handed over.
    ConfirmationSent,
    /// Pending; the address had a confirmation within the hour, so none now.
    ConfirmationNotDue,
    /// Pending; the provider refused the address for good, so no email.
    Undeliverable,
}

impl ConsentIntake {
    /// Checks, counts and seals a request: what the endpoint does before it
    /// stores it (`None` for a bot's filled honeypot, which stores nothing).
    async fn accept(
        &self,
        submission: ConsentSubmission,
        proof: RequestProof,
    ) -> Result<(SubmitOutcome, Option<PendingIntake>), AppError> {
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
            return Ok((outcome, None));
        }
        if let Some(field) = submission.profile.present().into_iter().find(|a| !form.fields.contains(a)) {
            return Err(InvalidField::new(field.as_str(), "is not collected by this form").into());
        }
        let email =
            EmailAddress::parse(submission.email.expose()).map_err(|e| InvalidField::new("email", e.to_string()))?;
        let categories = parse_categories(&submission.categories, &form.categories)?;
        let now = self.clock.now();
        let profile = self.settings.schema.apply(&submission.profile, Profile::default(), now.date())?;
        self.within_limits(&form, &email, &proof, now).await?;
        let method =
            submission.method.unwrap_or(if submission.server_authenticated && proof.origin.expose().is_none() {
                ConsentMethod::Api
            } else {
                ConsentMethod::WebForm
            });
        // Sealed under the ID a new contact would get; whether the address
        // is known is for the worker to find out, so this path is the same.
        let id = IntakeId::new_random();
        let candidate = ContactId::new_random();
        let request = serde_json::to_vec(&SealedRequest { categories, method, proof }).expect("request serializes");
        let intake = PendingIntake {
            id,
            form_id: form.id.clone(),
            candidate,
            sealed_contact: self.envelope.seal(&candidate, &email, &profile).await?,
            sealed_request: self.envelope.seal_proof(&candidate, &request).await?,
            received_at: now,
            expires_at: now + self.settings.confirmation_ttl,
        };
        Ok((outcome, Some(intake)))
    }

    /// Takes a request and finishes it at once, without the queue or the send
    /// rate: for seeding a stack from a trusted in-process caller (the demo,
    /// benchmarks, tests), never for the public endpoint.
    pub async fn submit_now(
        &self,
        submission: ConsentSubmission,
        proof: RequestProof,
    ) -> Result<IntakeOutcome, AppError> {
        let (_, intake) = self.accept(submission, proof).await?;
        let Some(intake) = intake else { return Ok(IntakeOutcome::Gone) };
        self.handle_intake(&intake, self.clock.now(), Pacing::Unpaced).await
    }

    pub async fn submit(&self, submission: ConsentSubmission, proof: RequestProof) -> Result<SubmitOutcome, AppError> {
        let (outcome, intake) = self.accept(submission, proof).await?;
        let Some(intake) = intake else { return Ok(outcome) };
        let id = intake.id;

        self.intake.put_intake(&intake).await?;
        if let Err(e) = self.send_queue.send_batch(&[ConfirmationJob { intake_id: id }.to_body()]).await {
            // Not queued: the client is told to try again and the stored
            // request goes, so nothing waits that no worker will see.
            if let Err(remove) = self.intake.remove_intake(&id).await {
                tracing::warn!(error = %remove, intake_id = %id, "an unqueued consent request stays until it expires");
            }
            return Err(e.into());
        }
        Ok(outcome)
    }

    /// Counts the request against its form's limits per client IP and per
    /// address (keyed hashes, never the values); `RateLimited` past either.
    async fn within_limits(
        &self,
        form: &crate::config::FormDefinition,
        email: &EmailAddress,
        proof: &RequestProof,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let limits = self.settings.consent_limits(form);
        let window = LimitWindow::holding(now, LIMIT_WINDOW);
        let hash = |what: &str, value: &[u8]| {
            LimitKey::from_digest(self.keyring.blind_index.tag(&format!("consent-limit/{}/{what}", form.id), value))
        };
        let mut keys = vec![(hash("address", email.normalized().as_bytes()), limits.per_address_per_hour)];
        if let Some(ip) = proof.ip.expose() {
            keys.push((hash("ip", ip.to_string().as_bytes()), limits.per_ip_per_hour));
        }
        let counted: Vec<LimitKey> = keys.iter().map(|(k, _)| k.clone()).collect();
        let counts = self.intake.count_requests(&counted, window).await?;
        if counts.iter().zip(&keys).any(|(count, (_, max))| count > max) {
            let retry_after_seconds = (window.end - now).whole_seconds().max(1) as u64;
            return Err(AppError::RateLimited { retry_after_seconds });
        }
        Ok(())
    }

    /// The worker's half of a request: the contact, the ledger entry and the
    /// confirmation email. Safe to run again after any failure: the request
    /// ID is the intake's, a retry finds what an earlier try recorded, and
    /// the confirmation slot is spent only once the email has left.
    pub async fn process_intake(&self, id: &IntakeId) -> Result<IntakeOutcome, AppError> {
        let now = self.clock.now();
        let Some(pending) = self.intake.intake(id, now).await? else { return Ok(IntakeOutcome::Gone) };
        let outcome = self.handle_intake(&pending, now, Pacing::SendRate).await?;
        self.intake.remove_intake(id).await?;
        Ok(outcome)
    }

    async fn handle_intake(
        &self,
        pending: &PendingIntake,
        now: OffsetDateTime,
        pacing: Pacing,
    ) -> Result<IntakeOutcome, AppError> {
        let Some(form) = self.settings.form(&pending.form_id).cloned() else { return Ok(IntakeOutcome::Gone) };
        let (email, _) = self.envelope.open(&pending.candidate, &pending.sealed_contact, Some(&[])).await?;
        let request: SealedRequest =
            serde_json::from_slice(&self.envelope.open_proof(&pending.candidate, &pending.sealed_request).await?)
                .map_err(|e| StoreError::corrupt_from("sealed consent request", e))?;
        let contact_id = self.find_or_create_contact(&email, pending).await?;
        let grants = self.consent.grants(&contact_id).await?;
        let missing: Vec<ConsentCategory> = request
            .categories
            .iter()
            .filter(|c| !grants.iter().any(|g| &g.category == *c && g.allows_send(now)))
            .cloned()
            .collect();
        if missing.is_empty() {
            if !form.double_opt_in {
                // A retried single opt-in whose grant landed: the journeys
                // it starts are entered again (a no-op once in).
                self.journeys.enter_on_consent(&contact_id, &request.categories).await?;
            }
            return Ok(IntakeOutcome::NothingNew);
        }
        let own_request = pending.id.request_id();
        let asked = |kind| (kind, missing.clone(), &form, request.method, &request.proof, pending.received_at);
        if !form.double_opt_in {
            let evidence = self.evidence(&contact_id, own_request, asked(ConsentEntryKind::Granted)).await?;
            self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
            self.journeys.enter_on_consent(&contact_id, &missing).await?;
            return Ok(IntakeOutcome::Granted);
        }
        let history = self.consent.history(&contact_id).await?;
        let recorded = |id: ConsentRequestId| {
            history.iter().any(|e| e.evidence.kind == ConsentEntryKind::Requested && e.evidence.request_id == Some(id))
        };
        // Each request names its topics and its link confirms those only. A
        // repeat of a pending request records nothing new and reuses it; a
        // request adding topics is a new request with its own link.
        let all_pending =
            missing.iter().all(|c| grants.iter().any(|g| &g.category == c && g.status == ConsentStatus::Pending));
        let same_request = if recorded(own_request) {
            Some(own_request)
        } else if all_pending {
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
                let evidence = self.evidence(&contact_id, own_request, asked(ConsentEntryKind::Requested)).await?;
                self.consent_ledger.append(evidence, ConsentStatus::Pending).await?;
                own_request
            }
        };
        // At most one confirmation email per address per hour: the public
        // form must not become a way to flood someone's inbox. A request that
        // gets no email is confirmed only by its own link, sent when it is
        // asked again after the hour.
        let window = Window::ending(now, CONFIRMATION_INTERVAL, self.settings.retention);
        if !self.activity.claim_confirmation_slot(&contact_id, &request_id, window).await? {
            return Ok(IntakeOutcome::ConfirmationNotDue);
        }
        if pacing == Pacing::SendRate {
            self.limiter.until_ready().await;
        }
        let sent = self.send_confirmation(&contact_id, &email, &request_id, &pending.id, &form, &missing).await;
        match sent {
            Ok(()) => {
                // The email is out: failing to mark it must not send it again.
                if let Err(e) = self.activity.confirmation_handed_over(&contact_id, &request_id).await {
                    tracing::warn!(error = %e, contact_id = %contact_id, "confirmation sent but its slot not marked");
                }
                Ok(IntakeOutcome::ConfirmationSent)
            }
            Err(e) => {
                // Not sent: the slot is not spent, the next try may take it.
                if let Err(release) = self.activity.release_confirmation_slot(&contact_id, &request_id).await {
                    tracing::warn!(error = %release, contact_id = %contact_id, "confirmation slot not released");
                }
                match e {
                    AppError::Transport(t) if !t.is_transient() => {
                        tracing::warn!(error = %t, contact_id = %contact_id, "confirmation refused by the provider");
                        Ok(IntakeOutcome::Undeliverable)
                    }
                    e => Err(e),
                }
            }
        }
    }

    /// A new ledger entry's evidence for a stored request, proof sealed
    /// under the contact it is about.
    async fn evidence(
        &self,
        contact_id: &ContactId,
        request_id: ConsentRequestId,
        asked: Asked<'_>,
    ) -> Result<ConsentEvidence, AppError> {
        let (kind, categories, form, method, proof, at) = asked;
        Ok(ConsentEvidence {
            contact_id: *contact_id,
            kind,
            categories,
            at,
            method,
            form_id: Some(form.id.clone()),
            consent_text_sha256: Some(form.consent_text_sha256.clone()),
            request_id: Some(request_id),
            expires_at: None,
            imported: None,
            sealed_proof: self.consent_ledger.seal_proof(contact_id, proof).await?,
        })
    }

    /// Confirms a double opt-in request from its signed link (POST only).
    pub async fn confirm(&self, token: &str, proof: RequestProof) -> Result<ConfirmOutcome, AppError> {
        let (contact_id, request) = self.requested_by(token).await?;
        // Exactly the topics this request named, those still pending: a topic
        // someone else asked for under the same address has its own request
        // and link; a topic withdrawn meanwhile stays withdrawn; with nothing
        // pending, a replay changes nothing.
        let grants = self.consent.grants(&contact_id).await?;
        let categories: Vec<ConsentCategory> = request
            .evidence
            .categories
            .iter()
            .filter(|c| grants.iter().any(|g| &g.category == *c && g.status == ConsentStatus::Pending))
            .cloned()
            .collect();
        if categories.is_empty() {
            // A replay: the journeys this sign-up starts are entered again
            // (a no-op once in), so an entry lost to an outage is made now.
            let active: Vec<ConsentCategory> = request
                .evidence
                .categories
                .iter()
                .filter(|c| grants.iter().any(|g| &g.category == *c && g.status == ConsentStatus::Active))
                .cloned()
                .collect();
            self.journeys.enter_on_consent(&contact_id, &active).await?;
            return Ok(ConfirmOutcome::AlreadyConfirmed);
        }
        let sealed_proof = self.consent_ledger.seal_proof(&contact_id, &proof).await?;
        let evidence = ConsentEvidence {
            contact_id,
            kind: ConsentEntryKind::Granted,
            categories,
            at: self.clock.now(),
            method: request.evidence.method,
            form_id: request.evidence.form_id.clone(),
            consent_text_sha256: request.evidence.consent_text_sha256.clone(),
            request_id: request.evidence.request_id,
            expires_at: None,
            imported: None,
            sealed_proof,
        };
        let confirmed = evidence.categories.clone();
        self.consent_ledger.append(evidence, ConsentStatus::Active).await?;
        self.journeys.enter_on_consent(&contact_id, &confirmed).await?;
        Ok(ConfirmOutcome::Confirmed)
    }

    /// What a confirmation link asks for, for its page; `BadToken` if the
    /// link is not valid.
    pub async fn confirmation_request(&self, token: &str) -> Result<ConfirmationRequest, AppError> {
        let (_, request) = self.requested_by(token).await?;
        let form = request.evidence.form_id.as_deref().and_then(|id| self.settings.form(id));
        Ok(ConfirmationRequest {
            clinic_name: self.clinic_name(form),
            topics: request.evidence.categories.iter().map(ConsentCategory::label).collect(),
        })
    }

    /// The contact a confirmation link was sent to and the consent request
    /// it confirms; `BadToken` if the link is not valid or names no request.
    async fn requested_by(&self, token: &str) -> Result<(ContactId, ConsentEntry), AppError> {
        let verified = self
            .keyring
            .tokens
            .verify(TokenPurpose::ConfirmConsent, token, self.clock.now())
            .map_err(|_| AppError::BadToken)?;
        let request_id = ConsentRequestId::from_bytes(verified.subject);
        let history = self.consent.history(&verified.contact_id).await?;
        let request = history
            .into_iter()
            .find(|e| e.evidence.request_id == Some(request_id) && e.evidence.kind == ConsentEntryKind::Requested)
            .ok_or(AppError::BadToken)?;
        Ok((verified.contact_id, request))
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

    /// The address's contact, or a new one with the request's sealed
    /// attributes under its candidate ID. A public form never changes a known
    /// contact's attributes: anyone can type anyone's address.
    async fn find_or_create_contact(
        &self,
        email: &EmailAddress,
        pending: &PendingIntake,
    ) -> Result<ContactId, AppError> {
        let email_index = self.keyring.blind_index.index(email);
        if let Some(existing) = self.contacts.find_by_email_index(&email_index).await? {
            return Ok(existing.id);
        }
        let record = ContactRecord {
            id: pending.candidate,
            external_id: None,
            email_index: email_index.clone(),
            sealed: pending.sealed_contact.clone(),
            updated_at: self.clock.now(),
        };
        match self.contacts.put(&record).await {
            Ok(()) => Ok(pending.candidate),
            // Two requests raced: use the one that won.
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
        intake_id: &IntakeId,
        form: &crate::config::FormDefinition,
        topics: &[ConsentCategory],
    ) -> Result<(), AppError> {
        let expires = self.clock.now() + self.settings.confirmation_ttl;
        let token = self.keyring.tokens.sign(TokenPurpose::ConfirmConsent, contact_id, request_id.as_bytes(), expires);
        let link = self.settings.public_base_url.join(&format!("/confirm/{token}"));
        let sender = &self.settings.default_sender;
        // Keyed by the intake: a retry after a lost answer is the same
        // message (the outbox keeps one), a later request a new one.
        let message_id = crate::mail::message_id(&format!("confirm.{intake_id}"), sender);
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
            tls_optional: false,
        })
        .map_err(|e| InvalidField::new("email", e.to_string()))?;
        let mail = OutgoingMail {
            key: format!("confirm-{intake_id}"),
            message_id,
            from: sender.address.as_str().to_owned(),
            to: email.as_str().to_owned(),
            raw,
            // Transactional: never tracked.
            provider_tracking: Default::default(),
            tls_optional: false,
        };
        self.transport.send(&mail).await?;
        Ok(())
    }
}

pub(crate) use crate::mail::html_escape;

#[cfg(test)]
#[path = "consent_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "consent_intake_tests.rs"]
mod intake_tests;
