//! HIPAA marketing authorizations: PHI-personalized marketing reaches only
//! patients whose authorization is recorded, unexpired and not revoked,
//! checked at fan-out and again at send.

use std::time::Duration;

use carepost::app::send::SendOutcome;
use carepost::domain::{CampaignId, ContactId, SendJob};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{Client, mails_in, spawn_app, spawn_app_with};

const SUBJECT: &str = "A flu clinic near you";
const TEXT_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

async fn marketing_campaign(client: &Client) -> String {
    let (status, body) = client
        .admin(
            Method::POST,
            "/v1/campaigns",
            Some(json!({
                "name": "Flu clinic",
                "category": "wellness-tips",
                "phi_personalized": true,
                "purpose": "marketing",
                // Contacts signed up without attributes: anyone without conditions.
                "segment": {"not": {"exists": {"attr": "conditions"}}},
                "template": {"subject": SUBJECT,
                             "html": "<p>Hello {{ first_name }}</p><p>{{ postal_address }} \
                                      <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
                             "text": "Hello {{ first_name }}\n{{ postal_address }}\n{{ unsubscribe_url }}"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn authorize(client: &Client, contact: &ContactId, expires_at: &str) -> (StatusCode, Value) {
    client
        .admin(
            Method::PUT,
            &format!("/v1/contacts/{contact}/hipaa-authorization"),
            Some(json!({"expires_at": expires_at, "authorization_text_sha256": TEXT_HASH})),
        )
        .await
}

async fn revoke(client: &Client, contact: &ContactId) -> (StatusCode, Value) {
    client.admin(Method::DELETE, &format!("/v1/contacts/{contact}/hipaa-authorization"), None).await
}

fn next_year() -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(365)).to_string()
}

#[tokio::test]
async fn phi_marketing_is_sent_only_to_patients_with_a_valid_hipaa_authorization() {
    let test = spawn_app().await;
    let (app, client) = (&test.stack.app, &test.client);
    let mut contacts = Vec::new();
    for name in ["authorized", "revoked", "never"] {
        let email = format!("{name}@example.org");
        contacts.push(carepost::synthetic::sign_up_directly(app, &email, "wellness-tips", true).await.unwrap());
    }
    assert_eq!(authorize(client, &contacts[0], &next_year()).await.0, StatusCode::CREATED);
    assert_eq!(authorize(client, &contacts[1], &next_year()).await.0, StatusCode::CREATED);
    let (status, revoked) = revoke(client, &contacts[1]).await;
    assert_eq!((status, revoked["revoked"].as_bool()), (StatusCode::OK, Some(true)));

    let id = marketing_campaign(client).await;
    client.launch(&id).await;
    let report = client.wait_completed(&id, Duration::from_secs(60)).await.unwrap();

    assert_eq!(report["audience"].as_u64(), Some(1), "{report}");
    assert_eq!(report["excluded"]["no_hipaa_authorization"].as_u64(), Some(2));
    let sent: Vec<String> =
        mails_in(&client.outbox, "").into_iter().filter(|m| m.subject == SUBJECT).map(|m| m.to).collect();
    assert_eq!(sent, vec!["authorized@example.org".to_owned()]);
    let (_, history) = client.admin(Method::GET, &format!("/v1/contacts/{}/consent", contacts[1]), None).await;
    assert_eq!(history["chain_verified"], true);
    let kinds: Vec<(&str, &str)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["categories"][0] == "hipaa-marketing-authorization")
        .map(|e| (e["kind"].as_str().unwrap(), e["consent_text_sha256"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, vec![("granted", TEXT_HASH), ("withdrawn", "")], "granted with its text, then revoked");
}

#[tokio::test]
async fn an_authorization_revoked_after_fan_out_stops_the_send() {
    let test = spawn_app_with(|c| c.run_workers = false).await;
    let (app, client) = (&test.stack.app, &test.client);
    let contact = carepost::synthetic::sign_up_directly(app, "late@example.org", "wellness-tips", true).await.unwrap();
    authorize(client, &contact, &next_year()).await;
    let campaign = CampaignId::parse(&marketing_campaign(client).await).unwrap();
    client.launch(&campaign.to_string()).await;
    let job = SendJob { campaign_id: campaign, contact_id: contact };

    revoke(client, &contact).await;
    let outcome = app.sender.process(&job).await.unwrap();

    assert_eq!(outcome, SendOutcome::Skipped(carepost::domain::SkipReason::NoHipaaAuthorization));
}

#[tokio::test]
async fn an_authorization_needs_a_future_expiry_a_text_hash_and_a_known_contact() {
    let test = spawn_app().await;
    let (app, client) = (&test.stack.app, &test.client);
    let contact = carepost::synthetic::sign_up_directly(app, "x@example.org", "wellness-tips", true).await.unwrap();
    let yesterday = (time::OffsetDateTime::now_utc().date() - time::Duration::days(1)).to_string();

    let (past, past_body) = authorize(client, &contact, &yesterday).await;
    let (bad_hash, bad_hash_body) = client
        .admin(
            Method::PUT,
            &format!("/v1/contacts/{contact}/hipaa-authorization"),
            Some(json!({"expires_at": next_year(), "authorization_text_sha256": "abc"})),
        )
        .await;
    let (unknown, _) = authorize(client, &ContactId::new_random(), &next_year()).await;
    let (nothing_to_revoke, body) = revoke(client, &contact).await;

    assert_eq!((past, past_body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_at")));
    assert_eq!(
        (bad_hash, bad_hash_body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("authorization_text_sha256"))
    );
    assert_eq!(unknown, StatusCode::NOT_FOUND);
    assert_eq!((nothing_to_revoke, body["revoked"].as_bool()), (StatusCode::OK, Some(false)));
}
