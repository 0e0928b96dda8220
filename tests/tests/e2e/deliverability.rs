//! Messages mailbox providers trust, as Debian's SpamAssassin judges them
//! (local rules only: `-L`, no DNS blocklists on a closed network): every
//! kind of message the stack sends scores 0 or below, and the rules that
//! fired are printed so a regression says what it was.

use std::path::Path;
use std::process::Command;

use carepost::synthetic;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::{Mail, TestApp, confirmation_link, everyone, mails_in, spawn_app_with};

const PUBLIC_BASE: &str = "https://mail.clinic.example";

/// A campaign as a clinic would write one: a document-length body with a
/// visible unsubscribe link and the clinic's postal address in both parts.
fn newsletter() -> serde_json::Value {
    json!({
        "name": "Autumn newsletter",
        "category": "wellness-tips",
        "phi_personalized": false,
        "purpose": "marketing",
        "segment": everyone(),
        "template": {
            "subject": "Autumn wellness tips from your clinic",
            "preheader": "Three small habits for the colder months",
            "html": "<h1>Autumn wellness tips</h1>\
                <p>Hello,</p>\
                <p>As the days get shorter, here are three small habits that help: a short walk after lunch, \
                a glass of water with every meal, and a regular bedtime. Our nurses are happy to talk them \
                through at your next visit.</p>\
                <p>Flu vaccination appointments are open on weekday mornings. You can book at the front desk \
                or by phone.</p>\
                <p>With best wishes,<br>The team at Carepost Demo Clinic</p>\
                <hr><p style=\"font-size:12px;color:#555\">{{ postal_address }}. \
                You receive this because you subscribed to wellness tips. \
                <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "text": "Autumn wellness tips\n\nHello,\n\n\
                As the days get shorter, here are three small habits that help: a short walk after lunch, \
                a glass of water with every meal, and a regular bedtime. Our nurses are happy to talk them \
                through at your next visit.\n\nFlu vaccination appointments are open on weekday mornings. \
                You can book at the front desk or by phone.\n\nWith best wishes,\n\
                The team at Carepost Demo Clinic\n\n--\n{{ postal_address }}.\n\
                You receive this because you subscribed to wellness tips.\n\
                Unsubscribe: {{ unsubscribe_url }}\n"
        }
    })
}

/// SpamAssassin's verdict on one message: its score and the rules that fired.
fn spamassassin(file: &Path) -> (f64, String) {
    let message = std::fs::read(file).expect("message file");
    let mut child = Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spamassassin runs (`make test` installs it: scripts/install-spamassassin.sh)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    // X-Spam-Status: No, score=-0.1 required=5.0 tests=A,B,
    //  C autolearn=… version=…  (folded over lines)
    let status_start = report.find("X-Spam-Status:").expect("an X-Spam-Status header");
    let status: String = report[status_start..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with([' ', '\t']))
        .map(|(_, l)| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let score = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("score="))
        .and_then(|s| s.parse().ok())
        .expect("a score in X-Spam-Status");
    let tests = status.split("tests=").nth(1).unwrap_or("").split(" autolearn").next().unwrap_or("").to_owned();
    (score, tests)
}

/// A synthetic patient signed up and confirmed through the confirmation email (returned).
async fn confirmed_patient(c: &super::helpers::Client, seed: u64) -> (synthetic::Patient, Mail) {
    let patient = synthetic::generate(1, seed).remove(0);
    assert_eq!(c.sign_up(&patient, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    let confirmation = mails_in(&c.outbox, "confirm-").into_iter().find(|m| m.to == patient.email).expect("sent");
    let link = confirmation_link(&confirmation).replace(PUBLIC_BASE, &c.base);
    assert_eq!(c.http.post(&link).send().await.unwrap().status(), StatusCode::OK);
    (patient, confirmation)
}

/// A stack with an https public base URL and one patient who signed up;
/// the confirmation message, then (once confirmed) the campaign message.
async fn one_of_each_message() -> (TestApp, Mail, Mail) {
    let app = spawn_app_with(|config| config.knobs.public_base_url = Some(PUBLIC_BASE.into())).await;
    let c = &app.client;
    let (patient, confirmation) = confirmed_patient(c, 91).await;
    let (status, created) = c.admin(Method::POST, "/v1/campaigns", Some(newsletter())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let campaign = created["id"].as_str().unwrap().to_owned();
    c.launch(&campaign).await;
    c.wait_completed(&campaign, std::time::Duration::from_secs(60)).await.expect("the campaign completes");
    let sent = mails_in(&c.outbox, &campaign).into_iter().find(|m| m.to == patient.email).expect("sent");
    (app, confirmation, sent)
}

#[tokio::test]
async fn every_kind_of_message_scores_zero_or_below_with_spamassassin() {
    let (_app, confirmation, campaign) = one_of_each_message().await;

    let verdicts: Vec<(&str, f64, String)> = [("confirmation", &confirmation), ("campaign", &campaign)]
        .into_iter()
        .map(|(kind, mail)| {
            let (score, tests) = spamassassin(&mail.file);
            println!("spamassassin {kind}: score={score} tests={tests}");
            (kind, score, tests)
        })
        .collect();

    for (kind, score, tests) in &verdicts {
        assert!(*score <= 0.0, "the {kind} message scores {score} (rules: {tests})");
    }
}

/// The secure message's two emails for one patient whose domain is known to
/// lack TLS: the notice (the campaign's fallback) and, once asked for on
/// the page, the one-time code.
async fn secure_message_mail() -> (TestApp, Mail, Mail) {
    let app = spawn_app_with(|config| {
        config.knobs.public_base_url = Some(PUBLIC_BASE.into());
        config.knobs.tls_fallback = Some(carepost::domain::TlsFallback::SecureMessage);
    })
    .await;
    let c = &app.client;
    let (patient, _) = confirmed_patient(c, 92).await;
    let domain = carepost::domain::EmailAddress::parse(&patient.email).unwrap().domain();
    let now = time::OffsetDateTime::now_utc();
    let memory = app.stack.app.ports.activity.clone();
    memory.remember_tls_gap(&domain, now, now + carepost::domain::TLS_GAP_MEMORY).await.unwrap();
    let (status, created) = c.admin(Method::POST, "/v1/campaigns", Some(newsletter())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let campaign = created["id"].as_str().unwrap().to_owned();
    c.launch(&campaign).await;
    c.wait_completed(&campaign, std::time::Duration::from_secs(60)).await.expect("the campaign completes");
    let notice = mails_in(&c.outbox, "notice-").into_iter().find(|m| m.to == patient.email).expect("the notice");
    let page = notice.text.split_whitespace().find(|w| w.contains("/s/")).unwrap().replace(PUBLIC_BASE, &c.base);
    assert_eq!(c.http.post(format!("{page}/code")).send().await.unwrap().status(), StatusCode::OK);
    let code = mails_in(&c.outbox, "code-").into_iter().find(|m| m.to == patient.email).expect("the code");
    (app, notice, code)
}

#[tokio::test]
async fn the_secure_message_notice_and_code_score_zero_or_below_with_spamassassin() {
    let (_app, notice, code) = secure_message_mail().await;

    for (kind, mail) in [("secure-message notice", &notice), ("secure-message code", &code)] {
        let (score, tests) = spamassassin(&mail.file);
        println!("spamassassin {kind}: score={score} tests={tests}");
        assert!(score <= 0.0, "the {kind} scores {score} (rules: {tests})");
    }
}

#[tokio::test]
async fn campaign_mail_names_its_list_and_campaign_and_has_a_complete_html_document() {
    let (_app, confirmation, campaign) = one_of_each_message().await;
    let raw = String::from_utf8(std::fs::read(&campaign.file).unwrap()).unwrap();
    let header = |name: &str| raw.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).map(str::to_owned);

    assert_eq!(header("List-Id:").as_deref(), Some("<wellness-tips.clinic.example>"));
    let feedback = header("Feedback-ID:").expect("a Feedback-ID");
    assert!(feedback.ends_with(":wellness-tips:campaign:carepost"), "{feedback}");
    assert!(header("Message-ID:").expect("a Message-ID").ends_with("@clinic.example>"));
    assert!(campaign.html.starts_with("<!DOCTYPE html>"), "{}", campaign.html);
    assert!(campaign.html.contains("<html lang=\"en\">"));
    assert!(campaign.html.contains("<title>Autumn wellness tips from your clinic</title>"));
    assert!(campaign.html.contains("Carepost Demo Clinic, 1 Main Street, Springfield"), "the postal address");
    assert!(campaign.text.contains("Carepost Demo Clinic, 1 Main Street, Springfield"));
    assert!(confirmation.html.starts_with("<!DOCTYPE html>"), "the confirmation too");
    let confirmation_raw = String::from_utf8(std::fs::read(&confirmation.file).unwrap()).unwrap();
    assert!(!confirmation_raw.contains("List-Id:"), "transactional mail is not list mail");
}
