//! The SMTP transport against a real SMTP server (aiosmtpd from the
//! project's venv): plain delivery to a loopback sink, STARTTLS required
//! everywhere else, and a whole campaign delivered over SMTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use carepost::adapters::embedded::{SmtpSecurity, SmtpSettings, SmtpTransport};
use carepost::ports::{MailTransport, OutgoingMail, TransportErrorKind};
use carepost::runtime::TransportChoice;
use carepost::synthetic;
use tokio::io::AsyncBufReadExt;

use super::helpers::{everyone, mails_in, spawn_app_with};

fn python() -> PathBuf {
    let path = std::env::var("CAREPOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(path.exists(), "{} is missing: `make test` creates the venv with aiosmtpd", path.display());
    path
}

pub struct Sink {
    _child: tokio::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

async fn start_sink() -> Sink {
    start_sink_with(&[]).await
}

/// A sink started with extra arguments (`--reject-while FILE`).
pub async fn start_sink_with(extra: &[&std::ffi::OsStr]) -> Sink {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_sink.py"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("smtp sink starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
    assert!(matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"), "smtp sink did not start: {ready:?}");
    Sink { _child: child, port, dir }
}

fn mail() -> OutgoingMail {
    OutgoingMail {
        key: "k".into(),
        message_id: "<t.1@carepost>".into(),
        from: "news@clinic.example".into(),
        to: "pat@example.org".into(),
        raw: b"From: news@clinic.example\r\nTo: pat@example.org\r\nSubject: hi\r\nMessage-ID: <t.1@carepost>\r\n\r\nbody\r\n".to_vec(),
        provider_tracking: Default::default(),
        tls_optional: false,
    }
}

pub fn settings(port: u16, security: SmtpSecurity) -> SmtpSettings {
    SmtpSettings { host: "127.0.0.1".into(), port, security, username: None, password: None }
}

#[tokio::test]
async fn the_smtp_transport_delivers_to_a_loopback_sink() {
    let sink = start_sink().await;
    let transport = SmtpTransport::new(&settings(sink.port, SmtpSecurity::InsecureLoopback)).unwrap();
    let id = transport.send(&mail()).await.expect("accepted");
    assert_eq!(id.as_str(), "<t.1@carepost>");
    let stored = mails_in(sink.dir.path(), "");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].to, "pat@example.org");
}

#[tokio::test]
async fn the_smtp_transport_refuses_a_server_without_starttls() {
    let sink = start_sink().await;
    let transport = SmtpTransport::new(&settings(sink.port, SmtpSecurity::RequireStartTls)).unwrap();
    let err = transport.send(&mail()).await.expect_err("no STARTTLS, no mail");
    assert_eq!(err.kind, TransportErrorKind::TlsUnavailable, "{err}");
    assert!(!err.to_string().contains("pat@example.org"), "{err}");
    assert!(mails_in(sink.dir.path(), "").is_empty(), "nothing was delivered in the clear");
}

#[tokio::test]
async fn plain_smtp_is_refused_for_a_remote_host() {
    let mut s = settings(25, SmtpSecurity::InsecureLoopback);
    s.host = "smtp.example.org".into();
    assert!(SmtpTransport::new(&s).is_err());
}

#[tokio::test]
async fn a_campaign_is_delivered_through_the_smtp_relay() {
    let sink = start_sink().await;
    let port = sink.port;
    let app =
        spawn_app_with(|c| c.transport = TransportChoice::Smtp(settings(port, SmtpSecurity::InsecureLoopback))).await;
    let c = &app.client;
    let people = synthetic::generate(3, 21);
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    // Confirmation emails went to the sink too: confirm from there.
    let confirmations = mails_in(sink.dir.path(), "");
    assert_eq!(confirmations.len(), 3);
    for m in &confirmations {
        let link = super::helpers::confirmation_link(m);
        assert!(c.http.post(&link).send().await.unwrap().status().is_success());
    }
    let (_, report) = c.run_campaign("wellness-tips", everyone()).await;
    assert_eq!(report["sent"], 3);
    let campaign_mail: Vec<_> =
        mails_in(sink.dir.path(), "").into_iter().filter(|m| !m.list_unsubscribe.is_empty()).collect();
    assert_eq!(campaign_mail.len(), 3);
}

#[tokio::test]
async fn tls_accounting_a_relay_refusing_a_server_without_tls_is_counted_apart_and_suppresses_no_one() {
    let switch = tempfile::tempdir().unwrap();
    let no_tls = switch.path().join("no-tls");
    let sink = start_sink_with(&["--no-tls-while".as_ref(), no_tls.as_os_str()]).await;
    let port = sink.port;
    let app =
        spawn_app_with(|c| c.transport = TransportChoice::Smtp(settings(port, SmtpSecurity::InsecureLoopback))).await;
    let c = &app.client;
    let mut people = synthetic::generate(3, 22);
    people[0].email = "notls.probe@example.org".into();
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    for m in &mails_in(sink.dir.path(), "") {
        let link = super::helpers::confirmation_link(m);
        assert!(c.http.post(&link).send().await.unwrap().status().is_success());
    }
    std::fs::write(&no_tls, b"").unwrap();

    let (first, report) = c.run_campaign("wellness-tips", everyone()).await;
    let (_, again) = c.run_campaign("wellness-tips", everyone()).await;
    // The relay learns TLS for that server; the operator retries the failures.
    std::fs::remove_file(&no_tls).unwrap();
    let (status, _) = c.admin(reqwest::Method::POST, &format!("/v1/campaigns/{first}/retry-failed"), None).await;
    assert!(status.is_success());
    let retried = c.wait_completed(&first, Duration::from_secs(60)).await.unwrap();

    assert_eq!((&report["sent"], &report["failed"], &report["tls_unavailable"]), (&2.into(), &1.into(), &1.into()));
    assert_eq!(again["audience"], 3, "not suppressed: the patient is still in the next campaign's audience");
    assert_eq!(again["tls_unavailable"], 1);
    assert_eq!((&retried["sent"], &retried["failed"]), (&3.into(), &0.into()), "{retried}");
    let domain = &report["by_domain"][0];
    assert_eq!(
        (&domain["domain"], &domain["recipients"], &domain["tls_unavailable"]),
        (&"example.org".into(), &3.into(), &1.into()),
        "{report}"
    );
    let delivered: Vec<_> = mails_in(sink.dir.path(), "").into_iter().filter(|m| m.to.starts_with("notls")).collect();
    assert_eq!(delivered.len(), 2, "the confirmation, then the campaign once, after the retry");
}
