//! A patient's whole visit in Debian's headless Chromium: the example form
//! on a clinic's page (another origin) → the consent recorded with its
//! proof → the confirmation page's button → the preference center changes
//! topics → "unsubscribe from all". Playwright drives the system browser
//! (tests/support/browser.py).

use std::path::Path;

use carepost::domain::{ConsentEntryKind, ConsentStatus, EmailAddress};
use carepost::ports::SuppressionReason;
use serde_json::Value;

use super::forms::forms_for;
use super::helpers::{confirmation_link, mails_in, spawn_app_with};

/// Runs one step of tests/support/browser.py and returns what it saw.
async fn browser(args: &[&str]) -> Value {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/browser.py");
    let output = tokio::process::Command::new(python).arg(script).args(args).output().await.expect("python runs");
    assert!(output.status.success(), "browser step {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// A clinic's web site on another local origin, serving one page with the form.
async fn clinic_site(listener: tokio::net::TcpListener, page: String) {
    let app = axum::Router::new()
        .route("/signup.html", axum::routing::get(move || async move { axum::response::Html(page) }));
    axum::serve(listener, app).await.expect("clinic site serves");
}

#[tokio::test]
async fn a_patient_signs_up_on_a_clinic_page_confirms_changes_topics_and_unsubscribes_in_chromium() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clinic = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let test = spawn_app_with(|c| c.knobs.forms = Some(forms_for(&clinic))).await;
    let app = &test.stack.app;
    let markup = carepost::http::consent::example_form_markup(&app.settings, app.settings.form("newsletter").unwrap());
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>Clinic</title></head><body><h1>Our newsletter</h1>{markup}</body></html>"
    );
    tokio::spawn(clinic_site(listener, page));

    // 1. The form on the clinic's page.
    let submitted = browser(&[
        "submit-form",
        &format!("{clinic}/signup.html"),
        "robin@example.org",
        "Robin",
        "wellness-tips",
        "condition-updates",
    ])
    .await;

    assert_eq!(submitted["url"], format!("{}/thanks", test.client.base), "303 to the form's thank-you page");
    assert_eq!(submitted["heading"], "Thank you");
    let index = app.keyring.blind_index.index(&EmailAddress::parse("robin@example.org").unwrap());
    let contact = app.ports.contacts.find_by_email_index(&index).await.unwrap().expect("contact created").id;
    let history = app.ports.consent.history(&contact).await.unwrap();
    let request = &history[0].evidence;
    assert_eq!(request.kind, ConsentEntryKind::Requested);
    assert_eq!(request.form_id.as_deref(), Some("newsletter"));
    assert_eq!(
        request.consent_text_sha256.as_deref(),
        Some(app.settings.form("newsletter").unwrap().consent_text_sha256.as_str())
    );
    assert_eq!(
        request.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        ["wellness-tips", "condition-updates"]
    );
    let proof = app.consent_ledger.open_proof(&contact, &request.sealed_proof).await.unwrap();
    assert_eq!(proof["origin"], clinic.as_str(), "the posting page's origin is kept as proof");
    assert!(proof["user_agent"].as_str().unwrap().contains("Chrome"), "{proof}");
    assert_eq!(proof["ip"], "127.0.0.1");

    // 2. The confirmation link opens a page; only its button confirms.
    let link = confirmation_link(&mails_in(&test.client.outbox, "confirm-")[0]);
    let confirmed = browser(&["press", &link, "Confirm my subscription"]).await;

    assert_eq!(confirmed["heading"], "Subscription confirmed");
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert!(grants.iter().all(|g| g.status == ConsentStatus::Active) && grants.len() == 2, "{grants:?}");

    // 3. The preference center: drop one topic, add another.
    let preferences = app.preferences.url(&contact);
    let saved = browser(&["preferences", &preferences, "condition-updates=off", "appointment-reminders=on"]).await;

    assert!(saved["text"].as_str().unwrap().contains("Your choices are saved."), "{saved}");
    let mut statuses: Vec<(String, ConsentStatus)> = app
        .ports
        .consent
        .grants(&contact)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.category.to_string(), g.status))
        .collect();
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        statuses,
        vec![
            ("appointment-reminders".into(), ConsentStatus::Active),
            ("condition-updates".into(), ConsentStatus::Withdrawn),
            ("wellness-tips".into(), ConsentStatus::Active),
        ]
    );

    // 4. Unsubscribe from everything.
    let out = browser(&["press", &preferences, "Unsubscribe from all emails"]).await;

    assert!(out["text"].as_str().unwrap().contains("You are unsubscribed from all emails."), "{out}");
    assert!(app.ports.consent.grants(&contact).await.unwrap().iter().all(|g| g.status == ConsentStatus::Withdrawn));
    assert_eq!(app.ports.suppression.reason(&index).await.unwrap(), Some(SuppressionReason::UnsubscribeAll));
    assert_eq!(carepost::domain::verify_chain(&app.ports.consent.history(&contact).await.unwrap()), Ok(()));
}
