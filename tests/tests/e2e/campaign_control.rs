//! Stopping and restarting sends: the reputation guard pauses a campaign
//! whose bounce rate passes 5 % and says why, a paused campaign holds its
//! jobs, resuming sends them; failed sends are retried as a whole with
//! `carepost campaign retry-failed`. Each patient still gets exactly one email.

use std::collections::HashMap;
use std::time::Duration;

use carepost::adapters::embedded::SmtpSecurity;
use carepost::domain::{CampaignId, FanoutShardJob, MailEvent, SendJob};
use carepost::ports::{HELD_REASON, LedgerState, Queue};
use carepost::runtime::TransportChoice;
use carepost::synthetic;
use reqwest::Method;
use serde_json::json;

use super::helpers::{TestApp, carepost_binary, everyone, mails_in, spawn_app_with};
use super::smtp::{settings, start_sink_with};

/// Hands up to `max` messages of the stack's send queue to the use case, as
/// a worker would; returns the jobs it processed.
async fn send_jobs(app: &TestApp, max: usize) -> Vec<SendJob> {
    let mut done = Vec::new();
    while done.len() < max {
        let batch = app.stack.send_queue.receive(max - done.len(), Duration::from_millis(100)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let job = SendJob::parse(message.body.expose()).unwrap();
            app.stack.app.sender.process(&job).await.expect("processed");
            app.stack.send_queue.delete(&message.receipt_handle).await.unwrap();
            done.push(job);
        }
    }
    done
}

/// No workers run here: the queued consent requests are finished by hand.
async fn finish_consent_requests(app: &TestApp) {
    loop {
        let batch = app.stack.send_queue.receive(10, Duration::from_millis(100)).await.unwrap();
        if batch.is_empty() {
            return;
        }
        for message in batch {
            let job: carepost::domain::ConfirmationJob = serde_json::from_str(message.body.expose()).unwrap();
            app.stack.app.consent.process_intake(&job.intake_id).await.expect("processed");
            app.stack.send_queue.delete(&message.receipt_handle).await.unwrap();
        }
    }
}

async fn fan_out(app: &TestApp) {
    loop {
        let batch = app.stack.fanout_queue.receive(10, Duration::from_millis(100)).await.unwrap();
        if batch.is_empty() {
            return;
        }
        for message in batch {
            app.stack
                .app
                .fanout
                .process_shard(&FanoutShardJob::parse(message.body.expose()).unwrap(), None)
                .await
                .unwrap();
            app.stack.fanout_queue.delete(&message.receipt_handle).await.unwrap();
        }
    }
}

async fn provider_event(app: &TestApp, job: &SendJob, event: serde_json::Value) {
    let Some(LedgerState::Sent { provider_message_id }) =
        app.stack.app.ports.ledger.state(&job.campaign_id, &job.contact_id).await.unwrap()
    else {
        panic!("job was sent")
    };
    let mut event = event;
    event["mail"] = json!({"messageId": provider_message_id.as_str()});
    app.stack.app.events.process(&MailEvent::parse(&event.to_string()).unwrap()).await.unwrap();
}

pub fn campaign_mail_per_recipient(dir: &std::path::Path) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for mail in mails_in(dir, "").into_iter().filter(|m| !m.list_unsubscribe.is_empty()) {
        *per.entry(mail.to).or_default() += 1;
    }
    per
}

#[tokio::test]
async fn a_campaign_pauses_itself_when_its_bounce_rate_passes_five_percent_and_resumes_where_it_stopped() {
    let app = spawn_app_with(|c| {
        c.run_workers = false;
        c.knobs.reputation_min_sample = 10;
    })
    .await;
    let c = &app.client;
    let people = synthetic::generate(30, 44);
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    finish_consent_requests(&app).await;
    let emails: Vec<&str> = people.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(c.confirm(&emails).await, 30);
    let id = c.create_campaign("wellness-tips", everyone()).await;
    c.launch(&id).await;
    fan_out(&app).await;

    let first = send_jobs(&app, 20).await;
    for job in &first[..18] {
        provider_event(&app, job, json!({"eventType": "Delivery"})).await;
    }
    provider_event(&app, &first[18], json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}})).await;
    let paused = c.report(&id).await;
    let held = send_jobs(&app, 100).await;
    let mut held_states = Vec::new();
    for job in &held {
        held_states.push(app.stack.app.ports.ledger.state(&job.campaign_id, &job.contact_id).await.unwrap());
    }
    let sent_while_paused = campaign_mail_per_recipient(c.outbox.as_path()).values().sum::<usize>();
    let (status, resumed) = c.admin(Method::POST, &format!("/v1/campaigns/{id}/resume"), None).await;
    let rest = send_jobs(&app, 100).await;
    let advanced = app.stack.app.lifecycle.advance(&CampaignId::parse(&id).unwrap()).await.unwrap();

    assert_eq!(first.len(), 20);
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["paused_reason"], "bounce rate 5.26% over the last 60 minutes passed 5%");
    assert_eq!(held.len(), 10, "the remaining jobs met the pause");
    assert!(held_states.iter().all(|s| *s == Some(LedgerState::Skipped { reason: HELD_REASON.into() })));
    assert_eq!(sent_while_paused, 20, "nothing went out while paused");
    assert_eq!(
        (status.as_u16(), resumed["status"].as_str(), resumed["requeued"].as_u64()),
        (200, Some("sending"), Some(10))
    );
    assert_eq!(rest.len(), 10);
    let per = campaign_mail_per_recipient(c.outbox.as_path());
    assert_eq!(per.len(), 30);
    assert!(per.values().all(|n| *n == 1), "exactly one email each: {per:?}");
    assert_eq!(advanced, carepost::domain::CampaignStatus::Completed);
    assert!(c.report(&id).await.get("paused_reason").is_none(), "the reason is shown only while paused");
}

#[tokio::test]
async fn failed_sends_are_retried_as_a_whole_with_the_cli_and_each_patient_gets_one_email() {
    let flags = tempfile::tempdir().unwrap();
    let reject = flags.path().join("reject");
    let sink = start_sink_with(&["--reject-while".as_ref(), reject.as_os_str()]).await;
    let port = sink.port;
    let app =
        spawn_app_with(|c| c.transport = TransportChoice::Smtp(settings(port, SmtpSecurity::InsecureLoopback))).await;
    let c = &app.client;
    let mut people = synthetic::generate(6, 45);
    for (i, p) in people.iter_mut().enumerate().take(2) {
        p.email = format!("reject.{i}@example.org");
    }
    for p in &people {
        c.sign_up(p, &["wellness-tips"]).await;
    }
    for m in mails_in(sink.dir.path(), "") {
        assert!(c.http.post(super::helpers::confirmation_link(&m)).send().await.unwrap().status().is_success());
    }
    std::fs::write(&reject, b"").unwrap();
    let (id, first) = c.run_campaign("wellness-tips", everyone()).await;
    std::fs::remove_file(&reject).unwrap();

    let output = tokio::process::Command::new(carepost_binary())
        .args(["campaign", "retry-failed", &id, "--url", &c.base, "--token", &c.token, "--output", "json"])
        .output()
        .await
        .expect("the CLI runs");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let done = c.wait_completed(&id, Duration::from_secs(60)).await.expect("completes again");

    assert_eq!((first["sent"].as_u64(), first["failed"].as_u64()), (Some(4), Some(2)));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(answer["requeued"], 2);
    assert_eq!((done["sent"].as_u64(), done["failed"].as_u64()), (Some(6), Some(0)));
    let per = campaign_mail_per_recipient(sink.dir.path());
    assert_eq!(per.len(), 6);
    assert!(per.values().all(|n| *n == 1), "exactly one email each: {per:?}");
}
