//! Web forms as configured: origins (CORS and the per-form check), topics,
//! fields, error redirects, the example form page; the double opt-in link's
//! replay and expiry; and the consent ledger's verifier.

use carepost::crypto::TokenPurpose;
use carepost::domain::{ConsentRequestId, ContactId, EmailAddress};
use carepost::forms::FormsConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::{TestApp, confirmation_link, mails_in, spawn_app_with};

pub const CLINIC_SITE: &str = "http://localhost:9999";

pub fn forms_for(origin: &str) -> FormsConfig {
    FormsConfig::parse(
        &json!({
            "categories": ["appointment-reminders", "wellness-tips", "condition-updates"],
            "forms": [{
                "id": "newsletter",
                "allowed_origins": [origin],
                "categories": ["wellness-tips", "condition-updates"],
                "consent_text": "I agree to emails about the topics I ticked.",
                "thank_you_url": "/thanks",
                "error_url": format!("{origin}/signup-error"),
                "fields": ["first_name", "zip"]
            }]
        })
        .to_string(),
    )
    .expect("valid forms")
}

async fn app() -> TestApp {
    spawn_app_with(|c| c.knobs.forms = Some(forms_for(CLINIC_SITE))).await
}

async fn post_json(test: &TestApp, origin: Option<&str>, body: serde_json::Value) -> reqwest::Response {
    let mut request = test.client.http.post(format!("{}/v1/consent", test.client.base)).json(&body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    test.client.settled().await;
    response
}

async fn contact_of(test: &TestApp, email: &str) -> Option<ContactId> {
    let index = test.stack.app.keyring.blind_index.index(&EmailAddress::parse(email).unwrap());
    test.stack.app.ports.contacts.find_by_email_index(&index).await.unwrap().map(|r| r.id)
}

#[tokio::test]
async fn a_post_from_an_origin_the_form_does_not_allow_is_refused_and_stores_nothing() {
    let test = app().await;
    let body = json!({"form_id": "newsletter", "email": "eve@example.org", "categories": ["wellness-tips"]});

    let refused = post_json(&test, Some("https://evil.example"), body.clone()).await;
    let allowed = post_json(
        &test,
        Some(CLINIC_SITE),
        json!({"email": "ann@example.org", "form_id": "newsletter", "categories": ["wellness-tips"]}),
    )
    .await;

    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    assert_eq!(contact_of(&test, "eve@example.org").await, None);
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    assert_eq!(allowed.headers()["access-control-allow-origin"], CLINIC_SITE);
}

#[tokio::test]
async fn a_preflight_is_answered_for_a_forms_origin_only() {
    let test = app().await;
    let preflight = |origin: &'static str| {
        test.client
            .http
            .request(Method::OPTIONS, format!("{}/v1/consent", test.client.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    let good = preflight(CLINIC_SITE).await.unwrap();
    let bad = preflight("https://evil.example").await.unwrap();

    assert_eq!(good.headers()["access-control-allow-origin"], CLINIC_SITE);
    assert!(good.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_missing_or_unknown_topic_or_an_uncollected_field_is_422_naming_the_field() {
    let test = app().await;
    let base = |extra: serde_json::Value| {
        let mut body = json!({"form_id": "newsletter", "email": "a@example.org", "categories": ["wellness-tips"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };

    for (extra, field) in [
        (json!({"categories": []}), "categories"),
        (json!({"categories": ["lottery"]}), "categories"),
        (json!({"categories": ["appointment-reminders"]}), "categories"),
        (json!({"date_of_birth": "1980-01-01"}), "date_of_birth"),
    ] {
        let response = post_json(&test, Some(CLINIC_SITE), base(extra.clone())).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{extra}");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["field"], field, "{extra}");
    }
    assert_eq!(contact_of(&test, "a@example.org").await, None);
}

#[tokio::test]
async fn an_html_form_error_goes_to_the_forms_error_page_naming_only_the_field() {
    let test = app().await;

    let response = test
        .client
        .http
        .post(format!("{}/v1/consent", test.client.base))
        .header("origin", CLINIC_SITE)
        .form(&[("form_id", "newsletter"), ("email", "not an address <x>"), ("categories", "wellness-tips")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], format!("{CLINIC_SITE}/signup-error?error=email"));
}

#[tokio::test]
async fn the_example_form_page_posts_here_with_the_honeypot_and_the_consent_text() {
    let test = app().await;

    let page = test.client.http.get(format!("{}/forms/newsletter", test.client.base)).send().await.unwrap();
    let missing = test.client.http.get(format!("{}/forms/nope", test.client.base)).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{}/v1/consent\"", test.client.base)), "{html}");
    assert!(html.contains("name=\"website\"") && html.contains("tabindex=\"-1\""), "the honeypot");
    assert!(html.contains("I agree to emails about the topics I ticked."));
    assert!(html.contains("value=\"condition-updates\"") && !html.contains("value=\"appointment-reminders\""));
    assert!(!html.contains("<script") && !html.contains("<link"), "no scripts or outside assets");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_replayed_or_expired_confirmation_link_is_refused() {
    let test = app().await;
    post_json(
        &test,
        Some(CLINIC_SITE),
        json!({"form_id": "newsletter", "email": "c@example.org", "categories": ["wellness-tips"]}),
    )
    .await;
    let link = confirmation_link(&mails_in(&test.client.outbox, "confirm-")[0]);
    let contact = contact_of(&test, "c@example.org").await.unwrap();
    let history = test.stack.app.ports.consent.history(&contact).await.unwrap();
    let request: ConsentRequestId = history[0].evidence.request_id.unwrap();
    let expired = test.stack.app.keyring.tokens.sign(
        TokenPurpose::ConfirmConsent,
        &contact,
        request.as_bytes(),
        time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
    );

    let first = test.client.http.post(&link).send().await.unwrap().status();
    let replay = test.client.http.post(&link).send().await.unwrap().status();
    let late = test.client.http.post(format!("{}/confirm/{expired}", test.client.base)).send().await.unwrap().status();
    let late_page =
        test.client.http.get(format!("{}/confirm/{expired}", test.client.base)).send().await.unwrap().status();

    assert_eq!(
        (first, replay, late, late_page),
        (StatusCode::OK, StatusCode::CONFLICT, StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    let granted = test.stack.app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(granted.len(), 2, "one request, one confirmation: the replay added nothing");
}

#[tokio::test]
async fn a_tampered_consent_ledger_entry_is_detected_by_the_verifier() {
    let test = app().await;
    post_json(
        &test,
        Some(CLINIC_SITE),
        json!({"form_id": "newsletter", "email": "t@example.org", "categories": ["wellness-tips"]}),
    )
    .await;
    let contact = contact_of(&test, "t@example.org").await.unwrap();
    let path = format!("/v1/contacts/{contact}/consent");
    let (_, before) = test.client.admin(Method::GET, &path, None).await;

    // Someone with database access rewrites the request as if it had asked for another topic.
    let db = rusqlite::Connection::open(&test.stack.db_path).unwrap();
    let entry: String = db
        .query_row("SELECT entry FROM consent_ledger WHERE contact_id = ?1 AND seq = 1", [contact.to_string()], |r| {
            r.get(0)
        })
        .unwrap();
    let edited = entry.replace("wellness-tips", "condition-updates");
    assert_ne!(edited, entry);
    db.execute(
        "UPDATE consent_ledger SET entry = ?1 WHERE contact_id = ?2 AND seq = 1",
        [&edited, &contact.to_string()],
    )
    .unwrap();
    let (_, after) = test.client.admin(Method::GET, &path, None).await;

    assert_eq!(before["chain_verified"], true);
    assert_eq!(after["chain_verified"], false);
}
