//! The public consent endpoint probed as an attacker would: a stranger
//! cannot widen a patient's consent, an anonymous script cannot post at all
//! (only the form's server, by its signature), parsing is strict and quiet,
//! and every page carries its security headers.

use carepost::domain::{ConsentStatus, EmailAddress};
use carepost::forms::{FormsConfig, ServerSecret};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use super::helpers::{TestApp, confirmation_link, mails_in, spawn_app, spawn_app_with};

const SECRET: &str = "clinic-crm-secret-0123456789abcdef";

async fn post(test: &TestApp, origin: Option<&str>, content_type: &str, body: impl Into<String>) -> reqwest::Response {
    let mut request = test
        .client
        .http
        .post(format!("{}/v1/consent", test.client.base))
        .header("content-type", content_type)
        .body(body.into());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    test.client.settled().await;
    response
}

fn signup(email: &str, topics: &[&str]) -> String {
    json!({"form_id": "web-signup", "email": email, "categories": topics}).to_string()
}

async fn contact_of(test: &TestApp, email: &str) -> Option<carepost::domain::ContactId> {
    let index = test.stack.app.keyring.blind_index.index(&EmailAddress::parse(email).unwrap());
    test.stack.app.ports.contacts.find_by_email_index(&index).await.unwrap().map(|r| r.id)
}

#[tokio::test]
async fn a_strangers_extra_topics_are_not_granted_when_the_patient_confirms_their_own_email() {
    let test = spawn_app().await;
    let own = test.client.base.clone();
    let patient = post(&test, Some(&own), "application/json", signup("pat@example.org", &["wellness-tips"])).await;
    let everything = ["wellness-tips", "appointment-reminders", "condition-updates"];

    let anonymous = post(&test, None, "application/json", signup("pat@example.org", &everything)).await;
    let spoofed = post(&test, Some(&own), "application/json", signup("pat@example.org", &everything)).await;
    let link = confirmation_link(&mails_in(&test.client.outbox, "confirm-")[0]);
    let confirmed = test.client.http.post(&link).send().await.unwrap();

    assert_eq!((patient.status(), spoofed.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"], "signature_required");
    assert_eq!(confirmed.status(), StatusCode::OK);
    let contact = contact_of(&test, "pat@example.org").await.unwrap();
    let grants = super::helpers::consent_statuses(&test.stack.app, &contact).await;
    assert_eq!(
        grants,
        vec![
            ("appointment-reminders".into(), ConsentStatus::Pending),
            ("condition-updates".into(), ConsentStatus::Pending),
            ("wellness-tips".into(), ConsentStatus::Active),
        ],
        "only the topic the patient's own email named"
    );
}

#[tokio::test]
async fn only_a_request_signed_with_the_forms_secret_is_accepted_without_an_origin() {
    let mut forms = FormsConfig::example(vec![]);
    forms.forms[0].server_secret = Some(ServerSecret::parse(SECRET).unwrap());
    let test = spawn_app_with(|c| c.knobs.forms = Some(forms)).await;
    let body = signup("crm@example.org", &["wellness-tips"]);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = |timestamp: i64, secret: &str, body: &str| {
        let signature = ServerSecret::parse(secret).unwrap().sign(timestamp, body.as_bytes());
        test.client
            .http
            .post(format!("{}/v1/consent", test.client.base))
            .header("content-type", "application/json")
            .header("carepost-timestamp", timestamp.to_string())
            .header("carepost-signature", signature)
            .body(body.to_owned())
            .send()
    };

    let wrong_secret = signed(now, "not-the-clinics-secret-0123456789", &body).await.unwrap();
    let stale = signed(now - 600, SECRET, &body).await.unwrap();
    let good = signed(now, SECRET, &body).await.unwrap();
    test.client.settled().await;

    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(good.status(), StatusCode::ACCEPTED);
    let contact = contact_of(&test, "crm@example.org").await.expect("stored");
    let history = test.stack.app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(history[0].evidence.method, carepost::domain::ConsentMethod::Api);
}

#[tokio::test]
async fn trailing_garbage_wrong_media_types_and_bad_origins_are_refused() {
    let test = spawn_app().await;
    let own = test.client.base.clone();
    let body = signup("strict@example.org", &["wellness-tips"]);

    let garbage = post(&test, Some(&own), "application/json", format!("{body} {{}}")).await;
    let padding = post(&test, Some(&own), "application/jsonpadding", body.clone()).await;
    let other_param = post(&test, Some(&own), "application/json; boundary=x", body.clone()).await;
    let latin1 = post(&test, Some(&own), "application/json; charset=latin1", body.clone()).await;
    let malformed_origin = post(&test, Some("evil"), "application/json", body.clone()).await;
    let non_utf8_origin = test
        .client
        .http
        .post(format!("{}/v1/consent", test.client.base))
        .header("content-type", "application/json")
        .header("origin", HeaderValue::from_bytes(b"http://\xffevil.example").unwrap())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let with_charset = post(&test, Some(&own), "application/json; charset=UTF-8", body).await;

    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(padding.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(other_param.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(latin1.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(malformed_origin.status(), StatusCode::BAD_REQUEST);
    assert_eq!(non_utf8_origin.status(), StatusCode::BAD_REQUEST, "not taken as a request without an Origin");
    assert_eq!(with_charset.status(), StatusCode::ACCEPTED);
    assert_eq!(mails_in(&test.client.outbox, "confirm-").len(), 1, "only the well-formed request was taken");
}

#[tokio::test]
async fn error_bodies_never_echo_a_value_or_an_unknown_key() {
    let test = spawn_app().await;
    let own = test.client.base.clone();
    let probes = [
        json!({"form_id": "web-signup", "email": "pat@example.org", "categories": ["wellness-tips"], "zz_probe_key": 1}),
        json!({"form_id": "web-signup", "email": "zz_probe_value", "categories": ["wellness-tips"]}),
        json!({"form_id": "web-signup", "email": "pat@example.org", "categories": ["zz-probe-value"]}),
        json!({"form_id": "zz_probe_value", "email": "pat@example.org", "categories": ["wellness-tips"]}),
        json!({"form_id": "web-signup", "email": "pat@example.org", "categories": ["wellness-tips"], "zip": "zz_probe_value"}),
        json!({"form_id": "web-signup", "email": "pat@example.org", "categories": [{"zz_probe_key": 1}]}),
    ];

    for probe in probes {
        let response = post(&test, Some(&own), "application/json", probe.to_string()).await;
        let status = response.status();
        let text = response.text().await.unwrap();

        assert!(status.is_client_error(), "{probe}: {status}");
        assert!(!text.contains("zz_probe") && !text.contains("zz-probe"), "{probe} echoed: {text}");
    }
}

#[tokio::test]
async fn an_international_domain_is_stored_as_ascii_and_a_non_ascii_local_part_or_bidi_name_is_refused() {
    let test = spawn_app().await;
    let own = test.client.base.clone();

    let idn = post(&test, Some(&own), "application/json", signup("ana@bücher.example", &["wellness-tips"])).await;
    let local = post(&test, Some(&own), "application/json", signup("jösé@example.org", &["wellness-tips"])).await;
    let bidi = json!({"form_id": "web-signup", "email": "b@example.org", "categories": ["wellness-tips"],
        "first_name": "Ann\u{202E}gnp.exe"});
    let bidi = post(&test, Some(&own), "application/json", bidi.to_string()).await;

    assert_eq!(idn.status(), StatusCode::ACCEPTED);
    assert!(contact_of(&test, "ana@xn--bcher-kva.example").await.is_some(), "found by its ASCII form");
    assert_eq!(mails_in(&test.client.outbox, "confirm-")[0].to, "ana@xn--bcher-kva.example");
    assert_eq!(local.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let local: Value = local.json().await.unwrap();
    assert_eq!(local["field"], "email");
    assert!(local["message"].as_str().unwrap().contains("before the @"), "a clear reason: {local}");
    assert_eq!(bidi.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bidi.json::<Value>().await.unwrap()["field"], "first_name");
}

#[tokio::test]
async fn an_oversized_one_click_unsubscribe_body_gets_413() {
    let test = spawn_app().await;

    let response = test
        .client
        .http
        .post(format!("{}/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", test.client.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("List-Unsubscribe=One-Click&pad={}", "x".repeat(1024 * 1024)))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_form_error_without_an_error_url_is_a_page_naming_the_field_not_json() {
    let test = spawn_app().await;

    let response = test
        .client
        .http
        .post(format!("{}/v1/consent", test.client.base))
        .header("origin", &test.client.base)
        .form(&[("form_id", "web-signup"), ("email", "zz-not-an-address"), ("categories", "wellness-tips")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Please check the email address."), "{html}");
    assert!(!html.contains("zz-not-an-address"), "the value is not echoed");
}

#[tokio::test]
async fn every_page_carries_a_csp_nosniff_and_no_referrer_and_json_carries_nosniff() {
    let test = spawn_app().await;
    let base = &test.client.base;
    let token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let pages = [
        "/forms/web-signup".to_owned(),
        "/forms/nope".into(),
        "/thanks".into(),
        "/privacy".into(),
        format!("/confirm/{token}"),
        format!("/u/{token}"),
        format!("/preferences/{token}"),
    ];

    for path in &pages {
        let response = test.client.http.get(format!("{base}{path}")).send().await.unwrap();
        let h = response.headers();

        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("form-action 'self'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let referrer = h["referrer-policy"].to_str().unwrap();
        let expected = if path == "/forms/web-signup" { "strict-origin" } else { "no-referrer" };
        assert_eq!(referrer, expected, "{path}");
    }
    let json = test.client.http.get(format!("{base}/v1/nothing")).send().await.unwrap();
    let admin = test.client.http.get(format!("{base}/v1/campaigns")).bearer_auth(&test.client.token).send().await;
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
    assert_eq!(admin.unwrap().headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_dropped_and_the_capped_server_recovers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits =
        carepost::runtime::ServerLimits { header_read_timeout: std::time::Duration::from_secs(1), max_connections: 2 };
    let test = spawn_app_with(|c| c.server = limits).await;
    let address = test.client.base.trim_start_matches("http://").to_owned();
    let mut half_open = Vec::new();
    for _ in 0..limits.max_connections {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        half_open.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();

    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        test.client.http.get(format!("{}/healthz", test.client.base)).send(),
    )
    .await
    .expect("answered once the stalled connections are dropped")
    .unwrap();

    assert_eq!(answered.status(), StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(500), "it waited for a free connection slot");
    for mut stream in half_open {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the server closed the stalled connection");
    }
}

#[tokio::test]
async fn past_the_per_address_limit_the_endpoint_answers_429_with_retry_after_and_stores_nothing() {
    let test = spawn_app_with(|c| c.knobs.consent_limit_per_address_per_hour = 2).await;
    let own = test.client.base.clone();
    let body = signup("limited@example.org", &["wellness-tips"]);

    let first = post(&test, Some(&own), "application/json", body.clone()).await;
    let second = post(&test, Some(&own), "application/json", body.clone()).await;
    let third = post(&test, Some(&own), "application/json", body).await;
    let form = test
        .client
        .http
        .post(format!("{}/v1/consent", test.client.base))
        .header("origin", &own)
        .form(&[("form_id", "web-signup"), ("email", "limited@example.org"), ("categories", "wellness-tips")])
        .send()
        .await
        .unwrap();
    let other_address =
        post(&test, Some(&own), "application/json", signup("other@example.org", &["wellness-tips"])).await;

    assert_eq!((first.status(), second.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = third.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let json: Value = third.json().await.unwrap();
    assert!(!json.to_string().contains("limited@"), "{json}");
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(form.headers().contains_key("retry-after"));
    let page = form.text().await.unwrap();
    assert!(page.contains("Too many sign-ups"), "{page}");
    assert_eq!(other_address.status(), StatusCode::ACCEPTED, "another address is counted apart");
    assert_eq!(mails_in(&test.client.outbox, "confirm-").len(), 2, "one confirmation per address");
}

#[tokio::test]
async fn an_aborted_request_leaves_either_a_whole_request_or_nothing() {
    let test = spawn_app().await;
    let own = test.client.base.clone();
    let address = test.stack.addr;

    // 60 clients send a whole request and hang up without reading the answer.
    let mut aborted = Vec::new();
    for i in 0..60 {
        let body = signup(&format!("aborted.{i}@example.org"), &["wellness-tips"]);
        let request = format!(
            "POST /v1/consent HTTP/1.1\r\nHost: {address}\r\nOrigin: {own}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        aborted.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            drop(stream);
        }));
    }
    for task in aborted {
        task.await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    test.client.settled().await;

    let app = &test.stack.app;
    let mut whole = 0;
    for i in 0..60 {
        let Some(contact) = contact_of(&test, &format!("aborted.{i}@example.org")).await else { continue };
        let history = app.ports.consent.history(&contact).await.unwrap();
        assert_eq!(history.len(), 1, "a stored contact has its request entry");
        whole += 1;
    }
    let mails = mails_in(&test.client.outbox, "confirm-").len();
    assert_eq!(mails, whole, "every stored request got its confirmation, and nothing else was stored");
    assert_eq!(whole, 60, "every request sent whole is taken even though its client left (half-close)");
}

#[tokio::test]
async fn a_mail_outage_then_recovery_delivers_exactly_one_confirmation_per_request() {
    use carepost::adapters::embedded::SmtpSecurity;
    use carepost::runtime::TransportChoice;
    let flags = tempfile::tempdir().unwrap();
    let down = flags.path().join("down");
    std::fs::write(&down, b"").unwrap();
    let sink = super::smtp::start_sink_with(&["--down-while".as_ref(), down.as_os_str()]).await;
    let port = sink.port;
    let test = spawn_app_with(|c| {
        c.transport = TransportChoice::Smtp(super::smtp::settings(port, SmtpSecurity::InsecureLoopback));
    })
    .await;
    let own = test.client.base.clone();
    let addresses = ["outage.0@example.org", "outage.1@example.org", "outage.2@example.org"];

    let mut answers = Vec::new();
    for address in addresses {
        let request = test.client.http.post(format!("{own}/v1/consent")).header("origin", &own);
        let body = signup(address, &["wellness-tips"]);
        answers.push(request.header("content-type", "application/json").body(body).send().await.unwrap().status());
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let during = mails_in(sink.dir.path(), "").len();
    std::fs::remove_file(&down).unwrap();
    test.client.settled().await;

    assert!(answers.iter().all(|s| *s == StatusCode::ACCEPTED), "{answers:?}");
    assert_eq!(during, 0, "the relay was down");
    let mut recipients: Vec<String> = mails_in(sink.dir.path(), "").into_iter().map(|m| m.to).collect();
    recipients.sort();
    assert_eq!(recipients, addresses, "exactly one confirmation per request after recovery");
}
