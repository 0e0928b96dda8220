//! Consent intake's branches on in-memory stores and a manual clock.

use std::time::Duration;

use super::{ConfirmOutcome, ConsentSubmission, RequestProof};
use crate::app::AppError;
use crate::app::test_support::Harness;
use crate::crypto::TokenPurpose;
use crate::domain::{
    ConsentCategory, ConsentEntryKind, ConsentMethod, ConsentRequestId, ConsentStatus, ContactId, EmailAddress,
    Sensitive,
};
use crate::ports::Clock;

/// A post from a browser on the service's own example form.
fn browser(h: &Harness) -> RequestProof {
    RequestProof { origin: Sensitive::new(Some(h.app.settings.own_origin())), ..Default::default() }
}

async fn statuses(h: &Harness, contact: &ContactId) -> Vec<(String, ConsentStatus)> {
    let mut out: Vec<(String, ConsentStatus)> = h
        .app
        .ports
        .consent
        .grants(contact)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.category.to_string(), g.status))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn link_for(h: &Harness, contact: &ContactId, request: &ConsentRequestId) -> String {
    let expires = h.clock.now() + h.app.settings.confirmation_ttl;
    h.app.keyring.tokens.sign(TokenPurpose::ConfirmConsent, contact, request.as_bytes(), expires)
}

fn submission(email: &str, topics: &[&str]) -> ConsentSubmission {
    ConsentSubmission {
        form_id: "web-signup".into(),
        email: email.into(),
        categories: topics.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}

/// Submits as the endpoint does, then lets the send worker finish the request.
async fn ask(h: &Harness, submission: ConsentSubmission, proof: RequestProof) {
    h.app.consent.submit(submission, proof).await.unwrap();
    h.work_send_queue().await;
}

async fn contact_of(h: &Harness, email: &str) -> ContactId {
    let index = h.app.keyring.blind_index.index(&EmailAddress::parse(email).unwrap());
    h.app.ports.contacts.find_by_email_index(&index).await.unwrap().expect("contact stored").id
}

async fn last_request(h: &Harness, contact: &ContactId) -> ConsentRequestId {
    let history = h.app.ports.consent.history(contact).await.unwrap();
    history.iter().rev().find(|e| e.evidence.kind == ConsentEntryKind::Requested).unwrap().evidence.request_id.unwrap()
}

#[tokio::test]
async fn a_submission_is_pending_until_confirmed_and_sends_one_confirmation() {
    let h = Harness::new();

    ask(&h, submission("jane.probe@example.org", &["wellness-tips"]), browser(&h)).await;

    let contact = contact_of(&h, "jane.probe@example.org").await;
    let grants = h.app.ports.consent.grants(&contact).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].status, ConsentStatus::Pending);
    assert_eq!(h.transport.accepted().len(), 1);
}

#[tokio::test]
async fn a_repeat_within_the_hour_sends_no_second_email_but_one_after_it_does() {
    let h = Harness::new();
    let form = || submission("jane.probe@example.org", &["wellness-tips"]);

    ask(&h, form(), browser(&h)).await;
    h.clock.advance(Duration::from_secs(59 * 60));
    ask(&h, form(), browser(&h)).await;
    let within_the_hour = h.transport.accepted().len();
    h.clock.advance(Duration::from_secs(2 * 60));
    ask(&h, form(), browser(&h)).await;

    assert_eq!(within_the_hour, 1);
    assert_eq!(h.transport.accepted().len(), 2);
}

#[tokio::test]
async fn a_confirmation_link_grants_until_it_expires_and_a_replay_changes_nothing() {
    let h = Harness::new();
    ask(&h, submission("jane.probe@example.org", &["wellness-tips"]), browser(&h)).await;
    let contact = contact_of(&h, "jane.probe@example.org").await;
    let request = last_request(&h, &contact).await;
    let ttl = h.app.settings.confirmation_ttl;
    let tokens = &h.app.keyring.tokens;
    let token = tokens.sign(TokenPurpose::ConfirmConsent, &contact, request.as_bytes(), h.clock.now() + ttl);
    let short_lived = tokens.sign(
        TokenPurpose::ConfirmConsent,
        &contact,
        request.as_bytes(),
        h.clock.now() + Duration::from_secs(60),
    );

    h.clock.advance(Duration::from_secs(120));
    let expired = h.app.consent.confirm(&short_lived, Default::default()).await;
    let confirmed = h.app.consent.confirm(&token, browser(&h)).await.unwrap();
    let replayed = h.app.consent.confirm(&token, browser(&h)).await.unwrap();

    assert!(matches!(expired, Err(AppError::BadToken)));
    assert_eq!((confirmed, replayed), (ConfirmOutcome::Confirmed, ConfirmOutcome::AlreadyConfirmed));
    let grants = h.app.ports.consent.grants(&contact).await.unwrap();
    assert!(grants[0].allows_send(h.clock.now()));
}

#[tokio::test]
async fn a_filled_honeypot_is_answered_the_same_and_stores_nothing() {
    let h = Harness::new();
    let bot = ConsentSubmission {
        honeypot: Some("http://spam".to_owned()).into(),
        ..submission("bot.probe@example.org", &["wellness-tips"])
    };

    let answer = h.app.consent.submit(bot, browser(&h)).await.unwrap();

    assert_eq!(answer.thank_you_url, "/thanks");
    let index = h.app.keyring.blind_index.index(&EmailAddress::parse("bot.probe@example.org").unwrap());
    assert!(h.app.ports.contacts.find_by_email_index(&index).await.unwrap().is_none());
    assert!(h.transport.accepted().is_empty());
}

#[tokio::test]
async fn a_strangers_request_for_more_topics_is_not_granted_by_the_patients_own_link() {
    let h = Harness::new();
    let email = "jane.probe@example.org";
    ask(&h, submission(email, &["wellness-tips"]), browser(&h)).await;
    let contact = contact_of(&h, email).await;
    let patients_request = last_request(&h, &contact).await;
    let stranger = submission(email, &["wellness-tips", "appointment-reminders", "condition-updates"]);

    ask(&h, stranger, browser(&h)).await;
    let confirmed = h.app.consent.confirm(&link_for(&h, &contact, &patients_request), browser(&h)).await.unwrap();

    assert_eq!(confirmed, ConfirmOutcome::Confirmed);
    assert_eq!(
        statuses(&h, &contact).await,
        vec![
            ("appointment-reminders".into(), ConsentStatus::Pending),
            ("condition-updates".into(), ConsentStatus::Pending),
            ("wellness-tips".into(), ConsentStatus::Active),
        ]
    );
    assert_ne!(last_request(&h, &contact).await, patients_request, "the wider request is its own");
    assert_eq!(h.transport.accepted().len(), 1, "the wider request got no email within the hour");
}

#[tokio::test]
async fn a_wider_request_is_confirmed_only_by_its_own_link() {
    let h = Harness::new();
    let email = "jane.probe@example.org";
    ask(&h, submission(email, &["wellness-tips"]), browser(&h)).await;
    let contact = contact_of(&h, email).await;
    h.clock.advance(Duration::from_secs(61 * 60));
    ask(&h, submission(email, &["wellness-tips", "condition-updates"]), browser(&h)).await;
    let wider = last_request(&h, &contact).await;

    h.app.consent.confirm(&link_for(&h, &contact, &wider), browser(&h)).await.unwrap();

    assert_eq!(
        statuses(&h, &contact).await,
        vec![("condition-updates".into(), ConsentStatus::Active), ("wellness-tips".into(), ConsentStatus::Active)]
    );
    assert_eq!(h.transport.accepted().len(), 2, "each request had its own email");
}

#[tokio::test]
async fn the_confirmation_email_and_page_name_the_clinic_and_the_topic_labels() {
    let h = Harness::with(
        |s| {
            s.forms[0].clinic_name = Some("Riverside Family Clinic".into());
        },
        |p| p,
    );
    let email = "jane.probe@example.org";
    ask(&h, submission(email, &["wellness-tips", "condition-updates"]), browser(&h)).await;
    let contact = contact_of(&h, email).await;
    let token = link_for(&h, &contact, &last_request(&h, &contact).await);

    let page = h.app.consent.confirmation_request(&token).await.unwrap();

    assert_eq!(page.clinic_name, "Riverside Family Clinic");
    assert_eq!(page.topics, ["Wellness tips", "Condition updates"]);
    let mail = String::from_utf8_lossy(&h.transport.accepted()[0].raw).into_owned();
    let unfolded = mail.replace("=\r\n", "").replace("\r\n ", " ");
    assert!(unfolded.contains("Riverside Family Clinic"), "{mail}");
    assert!(unfolded.contains("Wellness tips") && unfolded.contains("Condition updates"), "{mail}");
    assert!(!unfolded.contains("wellness-tips"), "labels, not slugs: {mail}");
}

#[tokio::test]
async fn a_request_without_an_origin_is_refused_unless_the_forms_server_signed_it() {
    let h = Harness::new();
    let anonymous = submission("jane.probe@example.org", &["wellness-tips"]);
    let signed =
        ConsentSubmission { server_authenticated: true, ..submission("sam.probe@example.org", &["wellness-tips"]) };

    let refused = h.app.consent.submit(anonymous, RequestProof::default()).await;
    ask(&h, signed, RequestProof::default()).await;

    assert!(matches!(refused, Err(AppError::Unauthenticated)), "{refused:?}");
    let index = h.app.keyring.blind_index.index(&EmailAddress::parse("jane.probe@example.org").unwrap());
    assert!(h.app.ports.contacts.find_by_email_index(&index).await.unwrap().is_none(), "nothing stored");
    let server = contact_of(&h, "sam.probe@example.org").await;
    let history = h.app.ports.consent.history(&server).await.unwrap();
    assert_eq!(history[0].evidence.method, ConsentMethod::Api);
    assert_eq!(history[0].evidence.categories, [ConsentCategory::parse("wellness-tips").unwrap()]);
}

#[tokio::test]
async fn a_server_signature_is_checked_against_the_forms_secret_body_and_time() {
    let secret = "s3cret-s3cret-s3cret-s3cret-s3cret-42";
    let h =
        Harness::with(|s| s.forms[0].server_secret = Some(crate::forms::ServerSecret::parse(secret).unwrap()), |p| p);
    let body = br#"{"form_id":"web-signup","email":"a@example.org","categories":["wellness-tips"]}"#;
    let now = h.clock.now().unix_timestamp();
    let signature = crate::forms::ServerSecret::parse(secret).unwrap().sign(now, body);
    let other = crate::forms::ServerSecret::parse("another-secret-another-secret-00").unwrap().sign(now, body);

    let good = h.app.consent.server_signed("web-signup", &now.to_string(), &signature, body);
    let tampered = h.app.consent.server_signed("web-signup", &now.to_string(), &signature, b"{}");
    let wrong_key = h.app.consent.server_signed("web-signup", &now.to_string(), &other, body);
    h.clock.advance(Duration::from_secs(301));
    let stale = h.app.consent.server_signed("web-signup", &now.to_string(), &signature, body);

    assert!(good);
    assert!(!tampered && !wrong_key && !stale);
}

#[tokio::test]
async fn a_confirmed_sign_up_enters_the_live_journeys_it_starts_once_even_when_the_link_is_replayed() {
    let h = Harness::new();
    let welcome = include_str!("../../../docs/journeys.example.json");
    let live = h.app.journeys.create(welcome).await.unwrap();
    h.app.journeys.launch(&live).await.unwrap();
    let draft = h.app.journeys.create(welcome).await.unwrap();
    ask(&h, submission("jane.probe@example.org", &["wellness-tips"]), browser(&h)).await;
    let contact = contact_of(&h, "jane.probe@example.org").await;
    let request = last_request(&h, &contact).await;
    let expires = h.clock.now() + h.app.settings.confirmation_ttl;
    let token = h.app.keyring.tokens.sign(TokenPurpose::ConfirmConsent, &contact, request.as_bytes(), expires);

    h.app.consent.confirm(&token, browser(&h)).await.unwrap();
    h.app.consent.confirm(&token, browser(&h)).await.unwrap();

    let journeys = &h.app.ports.journeys;
    let entered = journeys.enrolment(&live, &contact).await.unwrap().expect("entered the live journey");
    assert_eq!(entered.revision, 0, "the replay did not enter it again");
    assert_eq!(journeys.enrolment(&draft, &contact).await.unwrap(), None, "a draft starts nothing");
}
