//! The whole pipeline in one process: consent, double opt-in, campaign,
//! fan-out, send, one-click unsubscribe, provider events.

use carepost::ports::Queue;
use carepost::synthetic;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::{everyone, mails_in, spawn_app};

#[tokio::test]
async fn only_confirmed_patients_receive_the_campaign_with_one_click_headers() {
    let app = spawn_app().await;
    let c = &app.client;
    let people = synthetic::generate(4, 11);
    for p in &people {
        assert_eq!(c.sign_up(p, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    // Patient 3 only opens the confirmation page (as a link scanner would): a GET confirms nothing.
    let pending = mails_in(&c.outbox, "confirm-").into_iter().find(|m| m.to == people[3].email).unwrap();
    let page = c.http.get(super::helpers::confirmation_link(&pending)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("method=\"post\""));
    c.confirm(&[&people[0].email, &people[1].email, &people[2].email]).await;

    let (id, report) = c.run_campaign("wellness-tips", everyone()).await;

    let sent = mails_in(&c.outbox, &id);
    let mut recipients: Vec<_> = sent.iter().map(|m| m.to.clone()).collect();
    recipients.sort();
    let mut expected: Vec<_> = people[..3].iter().map(|p| p.email.clone()).collect();
    expected.sort();
    assert_eq!(recipients, expected);
    assert_eq!(report["sent"], 3);
    assert_eq!(report["excluded"]["consent_pending"], 1);
    for mail in &sent {
        assert_eq!(mail.list_unsubscribe.len(), 1);
        assert!(mail.list_unsubscribe[0].starts_with(&format!("<{}/u/", c.base)));
        assert_eq!(mail.list_unsubscribe_post, vec!["List-Unsubscribe=One-Click".to_owned()]);
        assert!(mail.text.contains("Hello "), "personalized body");
        assert_eq!(mail.subject, "A note from your clinic");
    }
}

#[tokio::test]
async fn one_click_unsubscribe_answers_200_without_redirect_and_stops_the_next_campaign() {
    let app = spawn_app().await;
    let c = &app.client;
    let people = synthetic::generate(3, 12);
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    c.confirm(&people.iter().map(|p| p.email.as_str()).collect::<Vec<_>>()).await;
    let (first, _) = c.run_campaign("wellness-tips", everyone()).await;
    let mail = mails_in(&c.outbox, &first).into_iter().find(|m| m.to == people[0].email).unwrap();
    let url = mail.list_unsubscribe[0].trim_start_matches('<').trim_end_matches('>').to_owned();

    let response = c
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none());
    assert!(response.headers().get("set-cookie").is_none());
    let again = c.http.post(&url).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "a repeated one-click is harmless");
    assert_eq!(c.report(&first).await["unsubscribed"], 1);
    let (second, report) = c.run_campaign("wellness-tips", everyone()).await;
    let recipients: Vec<_> = mails_in(&c.outbox, &second).into_iter().map(|m| m.to).collect();
    assert_eq!(recipients.len(), 2);
    assert!(!recipients.contains(&people[0].email));
    assert_eq!(report["excluded"]["consent_withdrawn"], 1);
}

#[tokio::test]
async fn hard_bounce_and_complaint_suppress_the_address_and_a_repeated_event_counts_once() {
    let app = spawn_app().await;
    let c = &app.client;
    let people = synthetic::generate(3, 13);
    for p in &people {
        c.sign_up(p, &["wellness-tips", "appointment-reminders"]).await;
    }
    c.confirm(&people.iter().map(|p| p.email.as_str()).collect::<Vec<_>>()).await;
    let (first, _) = c.run_campaign("wellness-tips", everyone()).await;
    let message_id = |email: &str| {
        let mail = mails_in(&c.outbox, &first).into_iter().find(|m| m.to == email).unwrap();
        let raw = std::fs::read_to_string(&mail.file).unwrap();
        let line = raw.lines().find(|l| l.starts_with("Message-ID:")).unwrap().to_owned();
        line.trim_start_matches("Message-ID:").trim().to_owned()
    };
    let bounce = json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": {"messageId": message_id(&people[0].email)}});
    let complaint = json!({"Type": "Notification", "Message": json!({"eventType": "Complaint", "mail": {"messageId": message_id(&people[1].email)}}).to_string()});
    // Providers deliver events at least once: each arrives twice.
    let events = [bounce.to_string(), complaint.to_string(), bounce.to_string(), complaint.to_string()];
    app.stack.events_queue.send_batch(&events).await.unwrap();
    for _ in 0..100 {
        if app.stack.events_queue.depth().await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let report = c.report(&first).await;
    assert_eq!((report["bounced_hard"].as_u64(), report["complained"].as_u64()), (Some(1), Some(1)));
    let (_, other_category) = c.run_campaign("appointment-reminders", everyone()).await;
    assert_eq!(other_category["sent"], 1, "only the patient with neither bounce nor complaint");
    assert_eq!(other_category["excluded"]["suppressed"], 2);
}

#[tokio::test]
async fn consent_history_is_chained_and_records_the_confirmation() {
    let app = spawn_app().await;
    let c = &app.client;
    let p = &synthetic::generate(1, 14)[0];
    c.sign_up(p, &["wellness-tips"]).await;
    c.confirm(&[&p.email]).await;
    let (status, body) = c.admin(Method::PUT, "/v1/contacts/crm-1", Some(json!({"email": p.email}))).await;
    assert_eq!(status, StatusCode::OK, "the form's contact is adopted, not duplicated: {body}");
    let id = body["contact_id"].as_str().unwrap();

    let (status, history) = c.admin(Method::GET, &format!("/v1/contacts/{id}/consent"), None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["chain_verified"], true);
    let kinds: Vec<_> = history["entries"].as_array().unwrap().iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("requested"), json!("granted")]);
    assert_eq!(history["entries"][0]["form_id"], "web-signup");
    assert_eq!(history["entries"][0]["consent_text_sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn a_filled_honeypot_is_answered_like_any_submission_and_stores_nothing() {
    let app = spawn_app().await;
    let c = &app.client;
    let response = c
        .http
        .post(format!("{}/v1/consent", c.base))
        .header("origin", &c.base)
        .form(&[
            ("form_id", "web-signup"),
            ("email", "bot@example.org"),
            ("categories", "wellness-tips"),
            ("website", "http://spam.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(mails_in(&c.outbox, "confirm-").is_empty(), "no confirmation was sent");
}
