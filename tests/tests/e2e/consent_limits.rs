//! The public consent endpoint cannot be used to flood an inbox: repeat
//! submissions are idempotent and an address gets at most one confirmation
//! email per hour; a link confirms its own request's topics only.

use carepost::domain::{ConsentEntryKind, ConsentStatus, EmailAddress};
use reqwest::StatusCode;

use super::helpers::{mails_in, spawn_app};

#[tokio::test]
async fn repeat_submissions_record_one_request_and_send_one_confirmation_per_hour() {
    let test = spawn_app().await;
    let (app, client) = (&test.stack.app, &test.client);
    let patient = &carepost::synthetic::generate(1, 21)[0];

    for _ in 0..3 {
        assert_eq!(client.sign_up(patient, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    let index = app.keyring.blind_index.index(&EmailAddress::parse(&patient.email).unwrap());
    let contact = app.ports.contacts.find_by_email_index(&index).await.unwrap().unwrap().id;
    let requests_after_repeats = requests(app, &contact).await;
    // A new topic within the hour: recorded, but no second email.
    assert_eq!(
        client.sign_up(patient, &["wellness-tips", "appointment-reminders"]).await.status(),
        StatusCode::ACCEPTED
    );
    let confirmations = mails_in(&client.outbox, "confirm-");

    assert_eq!(requests_after_repeats, 1, "repeats of a pending request add nothing");
    assert_eq!(requests(app, &contact).await, 2);
    assert_eq!(confirmations.len(), 1, "one confirmation email within the hour");
    assert_eq!(client.confirm(&[patient.email.as_str()]).await, 1);
    let grants = super::helpers::consent_statuses(app, &contact).await;
    assert_eq!(
        grants,
        vec![("appointment-reminders".into(), ConsentStatus::Pending), ("wellness-tips".into(), ConsentStatus::Active)],
        "the email's link confirmed the topic it named; the later request needs its own link"
    );
}

async fn requests(app: &carepost::app::App, contact: &carepost::domain::ContactId) -> usize {
    let history = app.ports.consent.history(contact).await.unwrap();
    history.iter().filter(|e| e.evidence.kind == ConsentEntryKind::Requested).count()
}
