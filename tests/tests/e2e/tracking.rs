//! First-party open and click tracking on the embedded stack (the SMTP and
//! outbox transports): opted in per campaign, signed ID-only tokens, people
//! and machines counted apart, clicks only to the campaign's own links; and
//! the embedded metrics (EMF lines) carry no PHI.

use std::time::Duration;

use carepost::crypto::TokenPurpose;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{Client, TestApp, everyone, mails_in, spawn_app};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const GMAIL_PROXY: &str = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

async fn tracked_campaign(client: &Client, tracking: Value) -> String {
    let (status, body) = client
        .admin(
            Method::POST,
            "/v1/campaigns",
            Some(json!({
                "name": "Flu clinic",
                "category": "wellness-tips",
                "segment": everyone(),
                "tracking": tracking,
                "template": {
                    "subject": "Flu shots are here",
                    "html": "<html><body><p>Hello</p><a href=\"https://clinic.example/flu?x=1&amp;y=2\">Book</a> \
                             <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></body></html>",
                    "text": "Book: https://clinic.example/flu\nUnsubscribe: {{ unsubscribe_url }}"
                }
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// One confirmed patient and one completed campaign; the patient's email.
async fn sent_campaign(app: &TestApp, tracking: Value) -> (String, super::helpers::Mail) {
    let client = &app.client;
    let patient = &carepost::synthetic::generate(1, 9)[0];
    assert_eq!(client.sign_up(patient, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    assert_eq!(client.confirm(&[patient.email.as_str()]).await, 1);
    let id = tracked_campaign(client, tracking).await;
    client.launch(&id).await;
    client.wait_completed(&id, Duration::from_secs(60)).await.expect("completes");
    let mail = mails_in(&client.outbox, "").into_iter().find(|m| m.html.contains("Book")).expect("campaign mail");
    (id, mail)
}

fn tracking_urls(html: &str, kind: &str) -> Vec<String> {
    html.split('"').filter(|part| part.contains(&format!("/t/{kind}/"))).map(str::to_owned).collect()
}

async fn get(client: &Client, url: &str, agent: &str) -> reqwest::Response {
    client.http.get(url).header("user-agent", agent).send().await.expect("answered")
}

#[tokio::test]
async fn opens_and_clicks_are_counted_once_per_message_with_machines_apart() {
    let app = spawn_app().await;
    let (id, mail) = sent_campaign(&app, json!({"opens": true, "clicks": true})).await;
    let pixels = tracking_urls(&mail.html, "o");
    let clicks = tracking_urls(&mail.html, "c");
    // One click link: the unsubscribe link (a template expression) is left alone.
    assert_eq!((pixels.len(), clicks.len()), (1, 1), "{}", mail.html);

    let proxy_open = get(&app.client, &pixels[0], GMAIL_PROXY).await;
    let person_open = get(&app.client, &pixels[0], BROWSER).await;
    let again = get(&app.client, &pixels[0], BROWSER).await;
    let click = get(&app.client, &clicks[0], BROWSER).await;
    let click_again = get(&app.client, &clicks[0], BROWSER).await;

    assert_eq!(proxy_open.status(), StatusCode::OK);
    assert_eq!(person_open.headers()["content-type"], "image/gif");
    assert_eq!(person_open.headers()["cache-control"], "no-store, private");
    assert_eq!(again.bytes().await.unwrap().len(), 43, "a 1x1 GIF");
    assert_eq!(click.status(), StatusCode::FOUND);
    assert_eq!(click.headers()["location"], "https://clinic.example/flu?x=1&y=2");
    assert_eq!(click.headers()["referrer-policy"], "no-referrer", "the token must not leak onward");
    assert_eq!(click_again.status(), StatusCode::FOUND);
    let report = app.client.report(&id).await;
    assert_eq!((report["opened"].as_u64(), report["opened_machine"].as_u64()), (Some(1), Some(1)));
    assert_eq!((report["clicked"].as_u64(), report["clicked_machine"].as_u64()), (Some(1), Some(0)));
    assert_eq!(report["duplicate_events"].as_u64(), Some(2), "the repeated open and click");
    assert_eq!(report["rates"]["click_to_open"].as_f64(), Some(100.0));
}

#[tokio::test]
async fn a_click_token_for_a_url_not_in_the_campaign_is_refused() {
    let app = spawn_app().await;
    let (id, mail) = sent_campaign(&app, json!({"clicks": true})).await;
    let genuine = tracking_urls(&mail.html, "c").pop().expect("a click link");
    let token = genuine.rsplit('/').next().unwrap();
    let verified = app
        .stack
        .app
        .keyring
        .tokens
        .verify_tracking(TokenPurpose::TrackClick, token, time::OffsetDateTime::now_utc())
        .unwrap();
    // Correctly signed, but for link number 7: the campaign has one link.
    let forged = app.stack.app.keyring.tokens.sign_tracking(
        TokenPurpose::TrackClick,
        &verified.contact_id,
        &verified.campaign,
        7,
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let base = genuine.split("/t/c/").next().unwrap();
    let mut tampered = token.to_owned().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for bad in [
        format!("{base}/t/c/{forged}"),
        format!("{base}/t/c/{tampered}"),
        format!("{base}/t/c/https%3A%2F%2Fevil.example"),
    ] {
        let response = get(&app.client, &bad, BROWSER).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
        assert!(response.headers().get("location").is_none());
    }
    assert_eq!(app.client.report(&id).await["clicked"].as_u64(), Some(0));
}

#[tokio::test]
async fn a_campaign_that_does_not_opt_in_has_no_pixel_and_its_links_untouched() {
    let app = spawn_app().await;

    let (_, mail) = sent_campaign(&app, json!({})).await;

    assert!(tracking_urls(&mail.html, "o").is_empty() && tracking_urls(&mail.html, "c").is_empty());
    assert!(mail.html.contains("href=\"https://clinic.example/flu?x=1&amp;y=2\""));
}

#[tokio::test]
async fn metrics_are_emf_lines_per_campaign_without_phi() {
    let app = spawn_app().await;
    let patient = carepost::synthetic::generate(1, 9).remove(0);
    let (id, mail) = sent_campaign(&app, json!({"opens": true})).await;
    get(&app.client, &tracking_urls(&mail.html, "o")[0], BROWSER).await;

    let metrics = std::fs::read_to_string(app._dir.path().join("data").join("metrics.jsonl")).expect("metrics file");

    let lines: Vec<Value> =
        metrics.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let total = |name: &str| -> u64 {
        lines.iter().filter(|l| l["CampaignId"] == id.as_str()).filter_map(|l| l[name].as_u64()).sum()
    };
    assert_eq!((total("Sent"), total("Opened")), (1, 1));
    assert!(lines.iter().all(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Carepost"));
    for phi in [&patient.email, &patient.first_name, &patient.last_name, &patient.date_of_birth, &patient.zip] {
        assert!(!metrics.contains(phi.as_str()), "metrics contain PHI");
    }
}
