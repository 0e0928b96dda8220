//! The preference center: reached from the unsubscribe page, it changes
//! topics (withdrawing unticked ones, granting ticked ones) or unsubscribes
//! from everything; no PHI on the page or in its URL.

use carepost::domain::{ConsentStatus, ContactId, EmailAddress};
use carepost::ports::SuppressionReason;
use reqwest::StatusCode;

use super::helpers::{TestApp, spawn_app};

async fn signed_up(test: &TestApp, email: &str, topics: &[&str]) -> ContactId {
    let app = &test.stack.app;
    let mut id = None;
    for topic in topics {
        id = Some(carepost::synthetic::sign_up_directly(app, email, topic, true).await.unwrap());
    }
    id.expect("at least one topic")
}

async fn statuses(test: &TestApp, contact: &ContactId) -> Vec<(String, ConsentStatus)> {
    super::helpers::consent_statuses(&test.stack.app, contact).await
}

#[tokio::test]
async fn the_preference_center_changes_topics_without_showing_phi() {
    let test = spawn_app().await;
    let contact = signed_up(&test, "prefs@example.org", &["wellness-tips", "appointment-reminders"]).await;
    let url = test.stack.app.preferences.url(&contact);

    let page = test.client.http.get(&url).send().await.unwrap().text().await.unwrap();
    let saved = test
        .client
        .http
        .post(&url)
        .form(&[("categories", "appointment-reminders"), ("categories", "condition-updates")])
        .send()
        .await
        .unwrap();

    assert!(
        page.contains("value=\"wellness-tips\" checked") && page.contains("value=\"condition-updates\">"),
        "{page}"
    );
    assert!(!page.contains("prefs@example.org") && !url.contains("prefs"), "no PHI in the page or the URL");
    assert!(!page.contains("<script") && !page.contains("https://"), "no scripts, no external assets");
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().await.unwrap().contains("Your choices are saved."));
    assert_eq!(
        statuses(&test, &contact).await,
        vec![
            ("appointment-reminders".into(), ConsentStatus::Active),
            ("condition-updates".into(), ConsentStatus::Active),
            ("wellness-tips".into(), ConsentStatus::Withdrawn),
        ]
    );
    let history = test.stack.app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(history.last().unwrap().evidence.form_id.as_deref(), Some("preference-center"));
    assert_eq!(carepost::domain::verify_chain(&history), Ok(()));
}

#[tokio::test]
async fn unsubscribe_all_from_the_preference_center_withdraws_everything_and_suppresses() {
    let test = spawn_app().await;
    let contact = signed_up(&test, "all.out@example.org", &["wellness-tips", "appointment-reminders"]).await;
    let url = test.stack.app.preferences.url(&contact);

    let response = test.client.http.post(&url).form(&[("unsubscribe_all", "yes")]).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(statuses(&test, &contact).await.iter().all(|(_, s)| *s == ConsentStatus::Withdrawn));
    let index = test.stack.app.keyring.blind_index.index(&EmailAddress::parse("all.out@example.org").unwrap());
    assert_eq!(test.stack.app.ports.suppression.reason(&index).await.unwrap(), Some(SuppressionReason::UnsubscribeAll));
}

#[tokio::test]
async fn a_bad_preference_link_or_an_unknown_topic_is_refused() {
    let test = spawn_app().await;
    let contact = signed_up(&test, "odd@example.org", &["wellness-tips"]).await;
    let url = test.stack.app.preferences.url(&contact);
    let tampered = format!("{}x", url);

    let bad_link = test.client.http.get(&tampered).send().await.unwrap();
    let unknown = test.client.http.post(&url).form(&[("categories", "lottery")]).send().await.unwrap();

    assert_eq!(bad_link.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(statuses(&test, &contact).await, vec![("wellness-tips".into(), ConsentStatus::Active)], "unchanged");
}

#[tokio::test]
async fn an_administrator_withdraws_a_topic_or_everything_on_the_patients_behalf() {
    let test = spawn_app().await;
    let contact = signed_up(&test, "caller@example.org", &["wellness-tips", "appointment-reminders"]).await;
    let path = format!("/v1/contacts/{contact}/consent/withdraw");

    let (one, one_body) = test
        .client
        .admin(reqwest::Method::POST, &path, Some(serde_json::json!({"categories": ["wellness-tips"]})))
        .await;
    let after_one = statuses(&test, &contact).await;
    let (bad, bad_body) =
        test.client.admin(reqwest::Method::POST, &path, Some(serde_json::json!({"categories": ["lottery"]}))).await;
    let (all, _) = test.client.admin(reqwest::Method::POST, &path, Some(serde_json::json!({"all": true}))).await;

    assert_eq!((one, one_body["withdrawn"].clone()), (StatusCode::OK, serde_json::json!(["wellness-tips"])));
    assert_eq!(
        after_one,
        vec![
            ("appointment-reminders".into(), ConsentStatus::Active),
            ("wellness-tips".into(), ConsentStatus::Withdrawn)
        ]
    );
    assert_eq!((bad, bad_body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("categories")));
    assert_eq!(all, StatusCode::OK);
    assert!(statuses(&test, &contact).await.iter().all(|(_, s)| *s == ConsentStatus::Withdrawn));
    let index = test.stack.app.keyring.blind_index.index(&EmailAddress::parse("caller@example.org").unwrap());
    assert_eq!(test.stack.app.ports.suppression.reason(&index).await.unwrap(), Some(SuppressionReason::UnsubscribeAll));
    let history = test.stack.app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(history.last().unwrap().evidence.method, carepost::domain::ConsentMethod::Admin);
}
