//! A campaign message from a stack whose public base URL is https, as
//! Python's standard `email` package reads it (RFC 8058):
//!
//! * a first name holding CR/LF that got past validation (the consent and
//!   contacts APIs refuse it with 422 naming `first_name`, as
//!   `one_click_python` shows; here it is written straight into the store)
//!   is rendered into the body and adds no header to the message or any part;
//! * the message has exactly one `List-Unsubscribe: <https://…>` and one
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and a form POST of
//!   `List-Unsubscribe=One-Click` to that URL answers 200 without a redirect
//!   and records the withdrawal in the contact's consent ledger.

use std::path::Path;

use carepost::domain::{ContactId, EmailAddress};
use carepost::ports::ContactRecord;
use carepost::synthetic;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{TestApp, confirmation_link, everyone, mails_in, spawn_app_with};

/// Links in emails point here; requests go to the local server instead.
const PUBLIC_BASE: &str = "https://mail.clinic.example";
const SMUGGLED_NAME: &str = "Ann\r\nBcc: attacker@example.org";

fn parse_with_python(file: &Path) -> Value {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/parse_mime.py");
    let output = std::process::Command::new(python).arg(script).arg(file).output().expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON from the parser")
}

/// The same path on the local server as `url` has under the public base.
fn on_local_server(app: &TestApp, url: &str) -> String {
    let path = url.strip_prefix(PUBLIC_BASE).unwrap_or_else(|| panic!("{url} is not under {PUBLIC_BASE}"));
    format!("{}{path}", app.client.base)
}

/// A stack with an https public base URL and one confirmed patient; the
/// patient's ID and email.
async fn stack_with_one_confirmed_patient() -> (TestApp, ContactId, String) {
    let app = spawn_app_with(|config| config.knobs.public_base_url = Some(PUBLIC_BASE.into())).await;
    let c = &app.client;
    let patient = synthetic::generate(1, 88).remove(0);
    assert_eq!(c.sign_up(&patient, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    let confirmation = mails_in(&c.outbox, "confirm-").into_iter().find(|m| m.to == patient.email).unwrap();
    let link = on_local_server(&app, &confirmation_link(&confirmation));
    assert_eq!(c.http.post(&link).send().await.unwrap().status(), StatusCode::OK);
    let index = app.stack.app.keyring.blind_index.index(&EmailAddress::parse(&patient.email).unwrap());
    let id = app.stack.app.ports.contacts.find_by_email_index(&index).await.unwrap().expect("contact").id;
    (app, id, patient.email)
}

/// Rewrites the stored contact with `first_name`, bypassing validation, as a
/// record from an older version or another writer might hold it.
async fn store_first_name(app: &TestApp, id: &ContactId, first_name: &str) {
    let core = &app.stack.app;
    let mut contact = core.contacts.load(id, None).await.unwrap().expect("contact");
    contact.profile.first_name = Some(first_name.into());
    let record = core.ports.contacts.get(id).await.unwrap().expect("record");
    let sealed = core.envelope.seal(id, &contact.email, &contact.profile).await.unwrap();
    core.ports.contacts.put(&ContactRecord { sealed, ..record }).await.unwrap();
}

/// Runs a campaign (`Hello {{ first_name }}` in both parts) to the outbox;
/// its ID and the patient's message as Python parsed it.
async fn campaign_message_parsed_by_python(app: &TestApp, email: &str) -> (String, Value) {
    let (campaign, report) = app.client.run_campaign("wellness-tips", everyone()).await;
    assert_eq!(report["sent"], 1, "{report}");
    let mail = mails_in(&app.client.outbox, &campaign).into_iter().find(|m| m.to == email).expect("the message");
    (campaign, parse_with_python(&mail.file))
}

#[tokio::test]
async fn a_line_break_in_a_stored_first_name_is_rendered_into_the_body_and_adds_no_header() {
    let (app, id, email) = stack_with_one_confirmed_patient().await;
    store_first_name(&app, &id, SMUGGLED_NAME).await;

    let (_, parsed) = campaign_message_parsed_by_python(&app, &email).await;

    let text = parsed["text"].as_str().expect("a text part");
    assert!(text.contains("Ann") && text.contains("attacker@example.org"), "the name reached the body: {text:?}");
    let all_headers: Vec<&str> = parsed["part_header_names"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p.as_array().unwrap())
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(!all_headers.iter().any(|h| h.eq_ignore_ascii_case("bcc")), "no Bcc in any part: {all_headers:?}");
    assert_eq!(parsed["bcc"], json!([]));
    assert_eq!(parsed["to"], json!([email]), "the only recipient");
    assert_eq!(parsed["defects"], json!([]), "the message parses cleanly");
    for one_off in ["From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"] {
        let n = parsed["header_names"].as_array().unwrap().iter().filter(|h| h.as_str() == Some(one_off)).count();
        assert_eq!(n, 1, "{one_off} appears once: {}", parsed["header_names"]);
    }
}

#[tokio::test]
async fn a_one_click_post_to_the_https_url_in_the_header_answers_200_without_redirect_and_withdraws_consent() {
    let (app, id, email) = stack_with_one_confirmed_patient().await;
    let (campaign, parsed) = campaign_message_parsed_by_python(&app, &email).await;
    let header = parsed["list_unsubscribe"][0].as_str().expect("List-Unsubscribe").to_owned();
    let url = header.strip_prefix('<').and_then(|h| h.strip_suffix('>')).expect("<url>").to_owned();

    // The helpers' client does not follow redirects: a 3xx would show as is.
    let response = app
        .client
        .http
        .post(on_local_server(&app, &url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();

    assert_eq!(parsed["list_unsubscribe"].as_array().unwrap().len(), 1, "{parsed}");
    assert!(url.starts_with(&format!("{PUBLIC_BASE}/u/")), "an https URL under the public base: {url}");
    assert_eq!(parsed["list_unsubscribe_post"], json!(["List-Unsubscribe=One-Click"]));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none(), "no redirect");
    let (status, history) = app.client.admin(Method::GET, &format!("/v1/contacts/{id}/consent"), None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let last = history["entries"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["kind"], "withdrawn", "{history}");
    assert_eq!(last["method"], "unsubscribe", "{history}");
    assert_eq!(last["categories"], json!(["wellness-tips"]), "{history}");
    assert_eq!(history["chain_verified"], true);
    assert_eq!(app.client.report(&campaign).await["unsubscribed"], 1);
}
