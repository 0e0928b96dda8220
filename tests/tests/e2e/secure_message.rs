//! The `secure_message` fallback end to end on the embedded stack: a relay
//! that will not carry mail to servers without TLS (the SMTP sink's
//! `--no-tls-while`, honouring `TLS-Required: No`), the notices it does
//! carry, and the page in Debian's headless Chromium: a wrong date of birth
//! refused, the right code and date showing the message, five wrong codes
//! locking another; axe-core on every page; every view and lockout in the
//! audit log. And the SES path: an expiry for lack of TLS sends the notice.

use std::time::Duration;

use carepost::domain::{ContactId, MailEvent, TlsFallback};
use carepost::ports::LedgerState;
use carepost::runtime::TransportChoice;
use carepost::synthetic;
use reqwest::Method;
use serde_json::{Value, json};

use super::browser::browser;
use super::helpers::{Mail, confirmation_link, everyone, mails_in, spawn_app_with};
use super::smtp::{settings, start_sink_with};

fn serious(violations: &Value) -> Vec<Value> {
    violations
        .as_array()
        .expect("axe ran")
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .cloned()
        .collect()
}

fn page_link(notice: &Mail) -> String {
    notice.text.split_whitespace().find(|w| w.contains("/s/")).expect("the page link").to_owned()
}

fn notices_in(dir: &std::path::Path) -> Vec<Mail> {
    mails_in(dir, "").into_iter().filter(|m| m.subject.starts_with("A secure message from")).collect()
}

#[tokio::test]
async fn a_relay_without_tls_gets_notices_and_the_page_shows_the_message_only_to_its_patient_in_chromium() {
    let switch = tempfile::tempdir().unwrap();
    let no_tls = switch.path().join("no-tls");
    let sink = start_sink_with(&["--no-tls-while".as_ref(), no_tls.as_os_str()]).await;
    let port = sink.port;
    let app = spawn_app_with(|c| {
        c.transport =
            TransportChoice::Smtp(settings(port, carepost::adapters::embedded::SmtpSecurity::InsecureLoopback));
        c.knobs.tls_fallback = Some(TlsFallback::SecureMessage);
    })
    .await;
    let c = &app.client;
    let mut people = synthetic::generate(3, 31);
    people[0].email = "notls.reader@example.org".into();
    people[1].email = "notls.locked@example.org".into();
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    for m in &mails_in(sink.dir.path(), "") {
        assert!(c.http.post(confirmation_link(m)).send().await.unwrap().status().is_success());
    }
    std::fs::write(&no_tls, b"").unwrap();

    let (campaign, report) = c.run_campaign("wellness-tips", everyone()).await;

    assert_eq!(
        (&report["sent"], &report["tls_unavailable"], &report["secure_notices"]),
        (&1.into(), &2.into(), &2.into()),
        "{report}"
    );
    let notices = notices_in(sink.dir.path());
    assert_eq!(notices.len(), 2, "one notice per patient the relay refused");
    for (notice, patient) in notices.iter().map(|n| (n, people.iter().find(|p| p.email == n.to).unwrap())) {
        for phi in [&patient.first_name, &patient.last_name, &patient.date_of_birth, &patient.zip] {
            assert!(!notice.text.contains(phi.as_str()) && !notice.html.contains(phi.as_str()), "no PHI in the notice");
        }
        let raw = std::fs::read_to_string(&notice.file).unwrap();
        assert!(raw.contains("TLS-Required: No"));
    }
    let link = |email: &str| page_link(notices.iter().find(|n| n.to == email).unwrap());
    let shots =
        std::env::var("CAREPOST_SHOTS").map(std::path::PathBuf::from).unwrap_or_else(|_| switch.path().to_owned());
    let sink_dir = sink.dir.path().to_str().unwrap();

    let read = browser(&[
        "secure-message",
        &link(&people[0].email),
        shots.to_str().unwrap(),
        sink_dir,
        &people[0].date_of_birth,
        "read",
    ])
    .await;
    let lock = browser(&[
        "secure-message",
        &link(&people[1].email),
        shots.to_str().unwrap(),
        sink_dir,
        &people[1].date_of_birth,
        "lock",
    ])
    .await;

    assert!(read["after_code"].as_str().unwrap().contains("We emailed you a code"), "{read}");
    assert_eq!(read["wrong_status"], 422, "a wrong date of birth is refused: {read}");
    assert!(read["wrong_text"].as_str().unwrap().contains("4 tries left"), "{read}");
    assert_eq!(read["status"], 200, "{read}");
    assert!(read["heading"].as_str().unwrap().starts_with("A secure message from"), "{read}");
    assert!(read["text"].as_str().unwrap().contains("Hello"), "the campaign's text is shown: {read}");
    assert!(read["scroll_width"].as_u64().unwrap() <= 375, "no sideways scrolling at 375 px: {read}");
    assert_eq!(lock["status"], 403, "{lock}");
    assert!(lock["locked_text"].as_str().unwrap().contains("locked"), "{lock}");
    assert!(!lock["text"].as_str().unwrap().contains("Hello"), "the right code after the lockout shows nothing");
    for (name, result) in [("read", &read), ("lock", &lock)] {
        for key in ["axe_page", "axe_final"] {
            assert_eq!(serious(&result[key]), Vec::<Value>::new(), "axe on the {name} flow's {key}");
        }
    }
    let (_, page) = c.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    let actions: Vec<&str> =
        page["entries"].as_array().unwrap().iter().filter_map(|e| e["event"]["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "secure_message.view").count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "secure_message.locked").count(), 1, "{actions:?}");
    let stack = &app.stack.app;
    let index = stack.keyring.blind_index.index(&carepost::domain::EmailAddress::parse(&people[0].email).unwrap());
    let reader: ContactId = stack.ports.contacts.find_by_email_index(&index).await.unwrap().unwrap().id;
    let suppressed = app
        .stack
        .app
        .ports
        .suppression
        .reason(&app.stack.app.ports.contacts.get(&reader).await.unwrap().unwrap().email_index)
        .await
        .unwrap();
    assert_eq!(suppressed, None, "the patient is not suppressed");
    let campaign = carepost::domain::CampaignId::parse(&campaign).unwrap();
    let row = stack.ports.ledger.state(&campaign, &reader).await.unwrap();
    assert_eq!(row, Some(LedgerState::Failed { reason: "tls_unavailable".into() }));
}

#[tokio::test]
async fn an_ses_expiry_for_lack_of_tls_sends_the_notice_per_the_campaigns_choice() {
    let test = spawn_app_with(|c| c.knobs.tls_fallback = Some(TlsFallback::Drop)).await;
    let app = &test.stack.app;
    let c = &test.client;
    let contact = synthetic::sign_up_directly(app, "no.tls@example.org", "wellness-tips", true).await.unwrap();
    let mut definition = serde_json::from_value::<Value>(json!({
        "name": "Secure", "category": "wellness-tips", "segment": {"never_opened": {}},
        "template": {"subject": "News", "html": "<p>Hello</p>", "text": "Hello\\nUnsubscribe: {{ unsubscribe_url }}"},
        "tls_fallback": "secure_message"
    }))
    .unwrap();
    definition["purpose"] = json!("treatment");
    let (status, created) = c.admin(Method::POST, "/v1/campaigns", Some(definition)).await;
    assert!(status.is_success(), "{created}");
    let campaign = created["id"].as_str().unwrap().to_owned();
    c.launch(&campaign).await;
    c.wait_completed(&campaign, Duration::from_secs(60)).await.unwrap();
    let id = carepost::domain::CampaignId::parse(&campaign).unwrap();
    let Some(LedgerState::Sent { provider_message_id }) = app.ports.ledger.state(&id, &contact).await.unwrap() else {
        panic!("not sent")
    };
    let expiry = json!({"eventType": "Bounce", "mail": {"messageId": provider_message_id.as_str()}, "bounce": {
        "bounceType": "Transient", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "no.tls@example.org", "diagnosticCode":
            "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Failed to establish connection>"}]}});

    app.events.process(&MailEvent::parse(&expiry.to_string()).unwrap()).await.unwrap();
    let mut notices = Vec::new();
    for _ in 0..100 {
        notices = mails_in(&c.outbox, "notice-");
        if !notices.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(notices.len(), 1, "the stack drops, the campaign chose secure_message");
    assert!(page_link(&notices[0]).contains("/s/"));
    // The notice is counted just after its mail is handed over, so the
    // report may trail the outbox by a moment.
    let mut report = c.report(&campaign).await;
    for _ in 0..100 {
        if report["secure_notices"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        report = c.report(&campaign).await;
    }
    assert_eq!((&report["tls_unavailable"], &report["secure_notices"]), (&1.into(), &1.into()), "{report}");
}
