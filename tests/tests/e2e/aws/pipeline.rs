//! End to end on moto: consent → contact → campaign launch → fanout handler →
//! sender handler → raw messages recorded by SES (moto) → a bounce and a
//! complaint through ses-events suppress → a one-click unsubscribe through
//! webhooks stops the next campaign. Then no DynamoDB item or SQS message
//! holds seeded plaintext PHI.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use carepost::domain::{CampaignId, ContactId};
use carepost::runtime::lambda;
use carepost::synthetic::{self, Patient};
use http::StatusCode;
use serde_json::json;
use tower::ServiceExt;

use super::harness::{MotoStack, drain, moto_stack, run_sender, sent_raw_messages};
use crate::e2e::helpers::{ensure_no_probes, phi_probes};

struct RawMail {
    to: String,
    message_id_hint: String,
    text: String,
    list_unsubscribe: Vec<String>,
    list_unsubscribe_post: Vec<String>,
}

fn parse(raw: &str) -> RawMail {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("raw message parses");
    let headers = |name: &str| -> Vec<String> {
        message
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| raw[h.offset_start() as usize..h.offset_end() as usize].trim().to_owned())
            .collect()
    };
    RawMail {
        to: message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned(),
        message_id_hint: message.message_id().unwrap_or_default().to_owned(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        list_unsubscribe: headers("List-Unsubscribe"),
        list_unsubscribe_post: headers("List-Unsubscribe-Post"),
    }
}

async fn request(
    router: axum::Router,
    method: &str,
    uri: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        // As a browser on the service's own example form (harness.rs's public URL).
        .header("origin", "https://mail.clinic.example")
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = lambda::http_service(router).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs a campaign through the fanout and sender handlers; returns its ID and
/// every queue message body the handlers were given.
async fn run_campaign(stack: &MotoStack, name: &str) -> (CampaignId, Vec<String>) {
    let app = stack.app();
    let (status, body) = request(
        carepost::http::campaigns_router(app.clone()),
        "POST",
        "/v1/campaigns",
        "application/json",
        json!({
            "name": name, "category": "wellness-tips", "phi_personalized": true, "purpose": "treatment",
            "segment": {"all": [{"age": {"min": 18}}, {"exists": {"attr": "journey_stage"}}]},
            "template": {"subject": "Your wellness update", "html": "<p>Hello {{ first_name | default('there') }}</p>",
                         "text": "Hello {{ first_name | default('there') }}\nUnsubscribe: {{ unsubscribe_url }}"}
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = CampaignId::parse(id["id"].as_str().unwrap()).unwrap();
    let (status, _) = request(
        carepost::http::campaigns_router(app.clone()),
        "POST",
        &format!("/v1/campaigns/{id}/launch"),
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let sqs = stack.clients.sqs.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut bodies = drain(&sqs, &stack.queues.fanout.0, 1, Duration::from_secs(60), |event| {
        let (app, queue) = (app.clone(), stack.built.fanout_queue.clone());
        async move { lambda::handle_fanout(&app, queue.as_ref(), event, deadline).await }
    })
    .await;
    bodies.extend(
        drain(&sqs, &stack.queues.send.0, 10, Duration::from_secs(60), |event| {
            let (app, queue) = (app.clone(), stack.built.send_queue.clone());
            async move { lambda::handle_send(&app, queue.as_ref(), event).await }
        })
        .await,
    );
    assert_eq!(app.lifecycle.advance(&id).await.unwrap(), carepost::domain::CampaignStatus::Completed);
    (id, bodies)
}

fn mails_for(raw: &[String], campaign: &CampaignId) -> Vec<RawMail> {
    raw.iter().map(|r| parse(r)).filter(|m| m.message_id_hint.starts_with(&campaign.to_string())).collect()
}

async fn ses_event(stack: &MotoStack, file: &str, ses_message_id: &str) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/ses-events").join(file),
    )
    .unwrap()
    .replace("010001928e8b1f2a-3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f-000000", ses_message_id);
    let response =
        lambda::handle_events(stack.app(), stack.events_queue().as_ref(), serde_json::from_str(&text).unwrap()).await;
    assert!(response.batch_item_failures.is_empty());
}

async fn ses_id(stack: &MotoStack, campaign: &CampaignId, contact: &ContactId) -> String {
    match stack.app().ports.ledger.state(campaign, contact).await.unwrap() {
        Some(carepost::ports::LedgerState::Sent { provider_message_id }) => provider_message_id.as_str().to_owned(),
        other => panic!("not sent: {other:?}"),
    }
}

async fn contact_of(stack: &MotoStack, p: &Patient) -> ContactId {
    let app = stack.app();
    let index = app.keyring.blind_index.index(&carepost::domain::EmailAddress::parse(&p.email).unwrap());
    app.ports.contacts.find_by_email_index(&index).await.unwrap().unwrap().id
}

/// Every string and binary value of every item in the stack's tables.
async fn all_items(stack: &MotoStack) -> Vec<u8> {
    let t = &stack.settings.tables;
    let mut out = Vec::new();
    for table in [&t.contacts, &t.consent, &t.campaigns, &t.send_ledger, &t.suppression] {
        let mut start = None;
        loop {
            let page =
                stack.clients.dynamodb.scan().table_name(table).set_exclusive_start_key(start).send().await.unwrap();
            for item in page.items() {
                for value in item.values() {
                    flatten(value, &mut out);
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
    }
    out
}

fn flatten(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
        AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
        AttributeValue::Ss(v) => v.iter().for_each(|s| out.extend_from_slice(s.as_bytes())),
        AttributeValue::L(v) => v.iter().for_each(|x| flatten(x, out)),
        AttributeValue::M(m) => m.values().for_each(|x| flatten(x, out)),
        _ => {}
    }
    out.push(b'\n');
}

#[tokio::test]
async fn consent_to_unsubscribe_runs_end_to_end_on_moto_and_leaves_no_plaintext_phi() {
    let stack = moto_stack().await;
    let app = stack.app();
    let people = synthetic::generate(6, 31);
    let before = sent_raw_messages().await.len();
    for p in &people {
        let body = json!({
            "form_id": "web-signup", "email": p.email, "categories": ["wellness-tips"],
            "first_name": p.first_name, "last_name": p.last_name, "date_of_birth": p.date_of_birth,
            "zip": p.zip, "conditions": p.conditions
        });
        let (status, _) = request(
            carepost::http::consent_router(app.clone()),
            "POST",
            "/v1/consent",
            "application/json",
            body.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    run_sender(&stack).await;
    // Patients 0..5 open their confirmation email and press the button; patient 5 never does.
    let confirmations: Vec<RawMail> = sent_raw_messages().await[before..].iter().map(|r| parse(r)).collect();
    for p in &people[..5] {
        let mail = confirmations.iter().find(|m| m.to == p.email).expect("confirmation email via SES");
        let link = mail.text.split_whitespace().find(|w| w.contains("/confirm/")).unwrap();
        let path = link.trim_start_matches("https://mail.clinic.example");
        let (status, _) = request(
            carepost::http::consent_router(app.clone()),
            "POST",
            path,
            "application/x-www-form-urlencoded",
            String::new(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    for p in &people {
        let body =
            json!({"email": p.email, "attributes": {"journey_stage": p.journey_stage, "last_visit": p.last_visit}});
        let (status, text) = request(
            carepost::http::contacts_router(app.clone()),
            "PUT",
            &format!("/v1/contacts/{}", p.external_id()),
            "application/json",
            body.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }

    let (first, mut queue_bodies) = run_campaign(&stack, "First").await;

    let raw = sent_raw_messages().await;
    let mails = mails_for(&raw, &first);
    let recipients: HashSet<_> = mails.iter().map(|m| m.to.clone()).collect();
    let confirmed: HashSet<_> = people[..5].iter().map(|p| p.email.clone()).collect();
    assert_eq!(recipients, confirmed);
    assert_eq!(mails.len(), 5, "one message each");
    for m in &mails {
        assert_eq!(m.list_unsubscribe.len(), 1);
        assert!(m.list_unsubscribe[0].starts_with("<https://mail.clinic.example/u/"));
        assert_eq!(m.list_unsubscribe_post, vec!["List-Unsubscribe=One-Click".to_owned()]);
    }

    let (bounced, complained, leaver) = (&people[0], &people[1], &people[2]);
    ses_event(&stack, "bounce-permanent.json", &ses_id(&stack, &first, &contact_of(&stack, bounced).await).await).await;
    ses_event(&stack, "complaint.json", &ses_id(&stack, &first, &contact_of(&stack, complained).await).await).await;
    let leaver_mail = mails.iter().find(|m| m.to == leaver.email).unwrap();
    let url = leaver_mail.list_unsubscribe[0].trim_start_matches('<').trim_end_matches('>');
    let path = url.trim_start_matches("https://mail.clinic.example");
    let (status, _) = request(
        carepost::http::webhooks_router(app.clone()),
        "POST",
        path,
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click".into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (second, more) = run_campaign(&stack, "Second").await;
    queue_bodies.extend(more);

    let again: HashSet<_> = mails_for(&sent_raw_messages().await, &second).into_iter().map(|m| m.to).collect();
    let expected: HashSet<_> = people[3..5].iter().map(|p| p.email.clone()).collect();
    assert_eq!(again, expected);
    let report = app.reports.campaign_report(&second).await.unwrap();
    assert_eq!(report.excluded.suppressed, 2);
    assert_eq!(report.excluded.consent_withdrawn, 1);
    assert_eq!(report.excluded.consent_pending, 1);

    let probes = phi_probes(&people, &["type-2-diabetes", "hypertension", "asthma", "copd", "heart-failure"]);
    ensure_no_probes("DynamoDB items", &all_items(&stack).await, &probes).unwrap();
    assert!(queue_bodies.len() >= 10, "the scan saw the fan-out and send messages");
    ensure_no_probes("SQS messages", queue_bodies.join("\n").as_bytes(), &probes).unwrap();
}
