//! Consent intake's branches on in-memory stores and a manual clock.

use std::time::Duration;

use super::{ConfirmOutcome, ConsentSubmission};
use crate::app::AppError;
use crate::app::test_support::Harness;
use crate::crypto::TokenPurpose;
use crate::domain::{ConsentEntryKind, ConsentRequestId, ConsentStatus, ContactId, EmailAddress};
use crate::ports::Clock;

fn submission(email: &str, topics: &[&str]) -> ConsentSubmission {
    ConsentSubmission {
        form_id: "web-signup".into(),
        email: email.into(),
        categories: topics.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
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

    h.app.consent.submit(submission("jane.probe@example.org", &["wellness-tips"]), Default::default()).await.unwrap();

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

    h.app.consent.submit(form(), Default::default()).await.unwrap();
    h.clock.advance(Duration::from_secs(59 * 60));
    h.app.consent.submit(form(), Default::default()).await.unwrap();
    let within_the_hour = h.transport.accepted().len();
    h.clock.advance(Duration::from_secs(2 * 60));
    h.app.consent.submit(form(), Default::default()).await.unwrap();

    assert_eq!(within_the_hour, 1);
    assert_eq!(h.transport.accepted().len(), 2);
}

#[tokio::test]
async fn a_confirmation_link_grants_until_it_expires_and_a_replay_changes_nothing() {
    let h = Harness::new();
    h.app.consent.submit(submission("jane.probe@example.org", &["wellness-tips"]), Default::default()).await.unwrap();
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
    let confirmed = h.app.consent.confirm(&token, Default::default()).await.unwrap();
    let replayed = h.app.consent.confirm(&token, Default::default()).await.unwrap();

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

    let answer = h.app.consent.submit(bot, Default::default()).await.unwrap();

    assert_eq!(answer.thank_you_url, "/thanks");
    let index = h.app.keyring.blind_index.index(&EmailAddress::parse("bot.probe@example.org").unwrap());
    assert!(h.app.ports.contacts.find_by_email_index(&index).await.unwrap().is_none());
    assert!(h.transport.accepted().is_empty());
}
