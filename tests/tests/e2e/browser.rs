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
pub async fn browser(args: &[&str]) -> Value {
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
    let statuses = super::helpers::consent_statuses(app, &contact).await;
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

/// Where the example-form tests leave their screenshots (1280 and 375 px).
fn screenshots() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn contact_and_profile(
    app: &carepost::app::App,
    email: &str,
) -> (carepost::domain::ContactId, carepost::domain::Profile) {
    let index = app.keyring.blind_index.index(&EmailAddress::parse(email).unwrap());
    let record = app.ports.contacts.find_by_email_index(&index).await.unwrap().expect("contact created");
    let (_, profile) = app.envelope.open(&record.id, &record.sealed, None).await.unwrap();
    (record.id, profile)
}

#[tokio::test]
async fn the_shipped_example_form_filled_as_a_patient_lands_on_thanks_and_confirms_from_the_email_in_chromium() {
    let test = super::helpers::spawn_app().await;
    let app = &test.stack.app;
    let form = format!("{}/forms/web-signup", test.client.base);
    let shots = screenshots();

    let submitted =
        browser(&["example-form", &form, shots.to_str().unwrap(), "robin.okafor@example.org", "full"]).await;

    assert_eq!(submitted["url"], format!("{}/thanks", test.client.base), "{submitted}");
    assert_eq!(submitted["heading"], "Thank you");
    let (contact, profile) = contact_and_profile(app, "robin.okafor@example.org").await;
    assert_eq!(profile.first_name.as_deref(), Some("Robin"));
    assert_eq!(profile.date_of_birth.map(|d| d.to_string()).as_deref(), Some("1984-03-09"));
    assert_eq!(profile.sex.map(|s| s.as_str()), Some("female"));
    assert_eq!((profile.zip.as_deref(), profile.language.as_deref()), (Some("02139"), Some("es")));
    assert_eq!(profile.conditions, ["asthma", "diabetes"]);
    let mails = mails_in(&test.client.outbox, "confirm-");
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].text.contains("Wellness tips") && mails[0].text.contains("Condition updates"),
        "{}",
        mails[0].text
    );

    let link = confirmation_link(&mails[0]);
    let page = browser(&["screenshot", &link, shots.join("confirm-375.png").to_str().unwrap(), "375"]).await;
    let confirmed = browser(&["press", &link, "Confirm my subscription"]).await;

    assert!(page["text"].as_str().unwrap().contains("Condition updates"), "the page names the topics: {page}");
    assert_eq!(confirmed["heading"], "Subscription confirmed");
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert_eq!(grants.len(), 2, "{grants:?}");
    assert!(grants.iter().all(|g| g.status == ConsentStatus::Active), "{grants:?}");
}

#[tokio::test]
async fn the_shipped_example_form_with_every_optional_field_empty_is_accepted_in_chromium() {
    let test = super::helpers::spawn_app().await;
    let app = &test.stack.app;
    let form = format!("{}/forms/web-signup", test.client.base);

    let submitted =
        browser(&["example-form", &form, screenshots().to_str().unwrap(), "sam.lee@example.org", "empty"]).await;

    assert_eq!(submitted["url"], format!("{}/thanks", test.client.base), "{submitted}");
    let (contact, profile) = contact_and_profile(app, "sam.lee@example.org").await;
    assert_eq!(profile, carepost::domain::Profile::default(), "nothing but the address was stored");
    let grants = app.ports.consent.grants(&contact).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].status, ConsentStatus::Pending);
    assert_eq!(mails_in(&test.client.outbox, "confirm-").len(), 1);
}
