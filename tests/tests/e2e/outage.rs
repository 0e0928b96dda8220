//! An outage of the mail relay longer than the receives allow: every job
//! goes through its retries into the dead-letter queue, the campaign shows
//! as stalled, and once the relay is back reconciliation brings the jobs
//! back with no operator action; every patient gets exactly one email.

use std::time::{Duration, Instant};

use carepost::adapters::embedded::SmtpSecurity;
use carepost::runtime::TransportChoice;
use carepost::synthetic;

use super::campaign_control::campaign_mail_per_recipient;
use super::helpers::{confirmation_link, everyone, mails_in, spawn_app_with};
use super::smtp::{settings, start_sink_with};

#[tokio::test]
async fn a_relay_outage_longer_than_the_retries_stalls_the_campaign_and_reconciliation_completes_it_once_each() {
    let flags = tempfile::tempdir().unwrap();
    let down = flags.path().join("down");
    let sink = start_sink_with(&["--down-while".as_ref(), down.as_os_str()]).await;
    let port = sink.port;
    // MaxReceiveCount 5 (the least allowed): the jobs reach the DLQ 15-30 s into the outage.
    let app =
        spawn_app_with(|c| c.transport = TransportChoice::Smtp(settings(port, SmtpSecurity::InsecureLoopback))).await;
    let c = &app.client;
    let people = synthetic::generate(8, 46);
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    for m in mails_in(sink.dir.path(), "") {
        assert!(c.http.post(confirmation_link(&m)).send().await.unwrap().status().is_success());
    }
    std::fs::write(&down, b"").unwrap();
    let id = c.create_campaign("wellness-tips", everyone()).await;
    c.launch(&id).await;

    let start = Instant::now();
    let stalled = loop {
        let report = c.report(&id).await;
        if !report["stalled"].is_null() {
            break report;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "never shown stalled: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let sent_during_outage = campaign_mail_per_recipient(sink.dir.path()).len();
    std::fs::remove_file(&down).unwrap();
    let done = c.wait_completed(&id, Duration::from_secs(120)).await.expect("reconciliation completes the campaign");

    assert_eq!(stalled["status"], "sending");
    let counts = &stalled["stalled"];
    assert!(counts["stranded"].as_u64().unwrap() + counts["dead_lettered"].as_u64().unwrap() > 0, "{stalled}");
    assert!(stalled["stalled"]["reason"].as_str().unwrap().contains("redrive"));
    assert_eq!(sent_during_outage, 0);
    assert_eq!(done["sent"].as_u64(), Some(8));
    assert!(done.get("stalled").is_none());
    let per = campaign_mail_per_recipient(sink.dir.path());
    assert_eq!(per.len(), 8);
    assert!(per.values().all(|n| *n == 1), "exactly one email each: {per:?}");
}
