//! A campaign message as another mail system reads it: parsed by Python's
//! standard `email` package, it has exactly one `List-Unsubscribe` (https)
//! and one `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and no header
//! smuggled in through a name; a POST of `List-Unsubscribe=One-Click` to
//! that URL unsubscribes with 200 and no redirect.

use std::path::Path;

use carepost::synthetic;
use reqwest::StatusCode;
use serde_json::Value;

use super::helpers::{everyone, mails_in, spawn_app};

fn parse_with_python(file: &Path) -> Value {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/parse_mime.py");
    let output = std::process::Command::new(python).arg(script).arg(file).output().expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON from the parser")
}

#[tokio::test]
async fn pythons_email_parser_sees_one_click_headers_once_and_the_url_unsubscribes_without_redirect() {
    let app = spawn_app().await;
    let c = &app.client;
    let mut people = synthetic::generate(2, 61);
    let injected = {
        let mut p = people[0].clone();
        p.first_name = "Ann\r\nBcc: attacker@example.org".into();
        c.sign_up(&p, &["wellness-tips"]).await
    };
    people[0].first_name = "Ann".into();
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    c.confirm(&people.iter().map(|p| p.email.as_str()).collect::<Vec<_>>()).await;
    let (campaign, _) = c.run_campaign("wellness-tips", everyone()).await;
    let mail = mails_in(&c.outbox, &campaign).into_iter().find(|m| m.to == people[0].email).unwrap();

    let parsed = parse_with_python(&mail.file);
    let url = parsed["list_unsubscribe"][0].as_str().unwrap().trim_matches(['<', '>']).to_owned();
    let response = c
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();

    assert_eq!(injected.status(), StatusCode::UNPROCESSABLE_ENTITY, "a CR/LF in a name is refused at the door");
    assert_eq!(injected.json::<Value>().await.unwrap()["field"], "first_name");
    assert_eq!(parsed["list_unsubscribe"].as_array().unwrap().len(), 1, "{parsed}");
    assert!(url.starts_with("https://") || url.starts_with("http://127.0.0.1"), "{url}");
    assert_eq!(parsed["list_unsubscribe_post"], serde_json::json!(["List-Unsubscribe=One-Click"]));
    assert_eq!(parsed["bcc"], serde_json::json!([]));
    assert_eq!(parsed["defects"], serde_json::json!([]), "the message parses cleanly");
    assert_eq!(parsed["to"], serde_json::json!([people[0].email]));
    assert!(parsed["parts"].as_array().unwrap().iter().any(|p| p == "text/plain"), "a text part is always present");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none(), "no redirect");
    assert_eq!(c.report(&campaign).await["unsubscribed"], 1);
}
