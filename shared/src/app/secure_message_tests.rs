//! The secure-message fallback on in-memory stores, a scripted transport
//! and a manual clock: the notice, the code, the proof, the lockout.

use std::time::Duration;

use super::*;
use crate::app::send::SendOutcome;
use crate::app::test_support::Harness;
use crate::domain::{BounceKind, MailEventKind, SendJob, TlsFallback};
use crate::ports::{LedgerState, TransportErrorKind};

fn secure_harness() -> Harness {
    Harness::with(|s| s.tls_fallback = TlsFallback::SecureMessage, |p| p)
}

/// The raw message with quoted-printable soft breaks and folded headers undone.
fn text_of(mail: &OutgoingMail) -> String {
    String::from_utf8_lossy(&mail.raw).replace("=\r\n", "").replace("\r\n ", " ").replace("=3D", "=")
}

/// The page token in a notice: what follows `/s/` up to the first character
/// no token has.
fn token_in(notice: &str) -> String {
    let start = notice.find("/s/").expect("a page link") + 3;
    notice[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

fn code_in(mail: &str) -> String {
    let start = mail.find(" is ").expect("the code") + 4;
    mail[start..start + 6].to_owned()
}

/// A patient whose relay refused the message for want of TLS.
async fn refused_for_tls(h: &Harness) -> (SendJob, String) {
    let contact = h.patient("jane.probe@example.org", &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    let job = SendJob { campaign_id: campaign, contact_id: contact };
    h.transport.fail_next(&[TransportErrorKind::TlsUnavailable]);
    let outcome = h.app.sender.process(&job).await.unwrap();
    assert_eq!(outcome, SendOutcome::Failed("tls_unavailable".into()));
    let notice = h.transport.accepted().pop().expect("the notice");
    (job, text_of(&notice))
}

#[tokio::test]
async fn a_message_refused_for_tls_becomes_a_notice_without_phi_and_a_page_that_shows_it_after_code_and_birth_date() {
    let h = secure_harness();
    let (job, notice) = refused_for_tls(&h).await;
    let token = token_in(&notice);

    let before = h.app.secure_messages.page(&token).await.unwrap();
    let wrong_code = h.app.secure_messages.open(&token, "000000", "1980-04-02").await.unwrap();
    assert_eq!(h.app.secure_messages.send_code(&token).await.unwrap(), CodeOutcome::Sent);
    let code = code_in(&text_of(&h.transport.accepted().pop().unwrap()));
    let wrong_birth = h.app.secure_messages.open(&token, &code, "1990-01-01").await.unwrap();
    let shown = h.app.secure_messages.open(&token, &code, "1980-04-02").await.unwrap();
    let reused = h.app.secure_messages.open(&token, &code, "1980-04-02").await.unwrap();

    for phi in ["Probe", "1980", "News from the clinic", "Hello"] {
        assert!(!notice.contains(phi), "the notice holds no PHI, not even the subject: found {phi}");
    }
    assert!(notice.contains("TLS-Required: No") && notice.contains("A secure message from"), "{notice}");
    assert_eq!(before.state, PageState::Ready);
    assert_eq!(wrong_code, Opened::Wrong { attempts_left: 4 });
    assert_eq!(wrong_birth, Opened::Wrong { attempts_left: 3 });
    match shown {
        Opened::Shown(content) => {
            assert_eq!(content.subject, "News from the clinic");
            assert!(content.text.contains("Hello"));
        }
        other => panic!("not shown: {other:?}"),
    }
    assert_eq!(reused, Opened::Wrong { attempts_left: 4 }, "a code opens the message once");
    let entries = h.app.audit.entries(0, 100).await.unwrap();
    let views: Vec<_> = entries.iter().filter(|e| e.event.action == "secure_message.view").collect();
    assert_eq!(views.len(), 1, "the view is audited");
    assert_eq!(views[0].event.contact_id, Some(job.contact_id));
    let report = h.app.reports.campaign_report(&job.campaign_id).await.unwrap();
    assert_eq!((report.tls_unavailable, report.secure_notices), (1, 1));
}

#[tokio::test]
async fn five_wrong_answers_lock_the_message_for_good_and_the_lockout_is_audited() {
    let h = secure_harness();
    let (_, notice) = refused_for_tls(&h).await;
    let token = token_in(&notice);
    h.app.secure_messages.send_code(&token).await.unwrap();
    let code = code_in(&text_of(&h.transport.accepted().pop().unwrap()));

    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(h.app.secure_messages.open(&token, "999999", "1980-04-02").await.unwrap());
    }
    let right_after = h.app.secure_messages.open(&token, &code, "1980-04-02").await.unwrap();

    assert_eq!(answers.last(), Some(&Opened::Locked));
    assert_eq!(right_after, Opened::Locked, "the right answer no longer opens it");
    assert_eq!(h.app.secure_messages.page(&token).await.unwrap().state, PageState::Locked);
    assert_eq!(h.app.secure_messages.send_code(&token).await.unwrap(), CodeOutcome::Locked);
    let entries = h.app.audit.entries(0, 100).await.unwrap();
    assert!(entries.iter().any(|e| e.event.action == "secure_message.locked"));
    assert!(entries.iter().all(|e| e.event.action != "secure_message.view"));
}

#[tokio::test]
async fn codes_are_limited_to_three_an_hour_and_each_works_ten_minutes() {
    let h = secure_harness();
    let (_, notice) = refused_for_tls(&h).await;
    let token = token_in(&notice);

    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(h.app.secure_messages.send_code(&token).await.unwrap());
    }
    let code = code_in(&text_of(&h.transport.accepted().pop().unwrap()));
    h.clock.advance(Duration::from_secs(11 * 60));
    let late = h.app.secure_messages.open(&token, &code, "1980-04-02").await.unwrap();
    h.clock.advance(Duration::from_secs(50 * 60));
    let next_hour = h.app.secure_messages.send_code(&token).await.unwrap();

    assert_eq!(outcomes, vec![CodeOutcome::Sent, CodeOutcome::Sent, CodeOutcome::Sent, CodeOutcome::TooMany]);
    assert_eq!(late, Opened::Wrong { attempts_left: 4 }, "an expired code does not open it");
    assert_eq!(next_hour, CodeOutcome::Sent);
}

#[tokio::test]
async fn a_retried_job_sends_the_notice_once() {
    let h = secure_harness();
    let (job, _) = refused_for_tls(&h).await;
    let notices = h.transport.accepted().len();

    let again = h.app.sender.process(&job).await.unwrap();
    let queued = h
        .app
        .sender
        .secure_notice(&crate::domain::SecureNoticeJob {
            notice_campaign_id: job.campaign_id,
            notice_contact_id: job.contact_id,
        })
        .await
        .unwrap();

    assert_eq!(again, SendOutcome::AlreadyDone);
    assert_eq!(queued, SendOutcome::AlreadyDone);
    assert_eq!(h.transport.accepted().len(), notices, "no second notice");
}

#[tokio::test]
async fn an_ses_expiry_for_lack_of_tls_queues_the_notice_and_the_send_worker_sends_it() {
    let h = secure_harness();
    let contact = h.patient("jane.probe@example.org", &["wellness-tips"]).await;
    let campaign = h.sending_campaign("wellness-tips").await;
    h.app.sender.process(&SendJob { campaign_id: campaign, contact_id: contact }).await.unwrap();
    let id = match h.ledger().state(&campaign, &contact).await.unwrap() {
        Some(LedgerState::Sent { provider_message_id }) => provider_message_id,
        other => panic!("not sent: {other:?}"),
    };
    let event = crate::domain::MailEvent {
        provider_message_id: id,
        kind: MailEventKind::Bounce(BounceKind::TlsUnavailable),
        tagged: None,
        machine: false,
        detail: Default::default(),
    };

    h.app.events.process(&event).await.unwrap();
    h.app.events.process(&event).await.unwrap();
    let handled = h.work_send_queue().await;

    assert_eq!(handled, 2, "the event and its repeat each queued a job");
    let notices: Vec<_> = h.transport.accepted().into_iter().filter(|m| m.tls_optional).collect();
    assert_eq!(notices.len(), 1, "one notice for both");
    assert!(text_of(&notices[0]).contains("/s/"));
    let report = h.app.reports.campaign_report(&campaign).await.unwrap();
    assert_eq!(report.secure_notices, 1);
}

#[tokio::test]
async fn a_campaign_choosing_drop_sends_no_notice_where_the_stack_would() {
    let h = secure_harness();
    let contact = h.patient("jane.probe@example.org", &["wellness-tips"]).await;
    let input = serde_json::from_value(serde_json::json!({
        "name": "Drop", "category": "wellness-tips", "segment": {"exists": {"attr": "date_of_birth"}},
        "template": {"subject": "News", "html": "<p>Hello</p>", "text": "Hello"}, "tls_fallback": "drop"
    }))
    .unwrap();
    let campaign = h.app.campaigns.create(input).await.unwrap();
    let campaigns = &h.app.ports.campaigns;
    use crate::domain::CampaignStatus::{Draft, FanningOut, Sending};
    campaigns.transition(&campaign, Draft, FanningOut).await.unwrap();
    campaigns.transition(&campaign, FanningOut, Sending).await.unwrap();

    h.transport.fail_next(&[TransportErrorKind::TlsUnavailable]);
    let outcome = h.app.sender.process(&SendJob { campaign_id: campaign, contact_id: contact }).await.unwrap();

    assert_eq!(outcome, SendOutcome::Failed("tls_unavailable".into()));
    assert!(h.transport.accepted().is_empty(), "no notice");
}

#[tokio::test]
async fn a_token_for_no_stored_message_or_a_forged_one_is_a_bad_link() {
    let h = secure_harness();
    let (job, _) = refused_for_tls(&h).await;
    let expires = h.clock.now() + time::Duration::days(1);
    let other = CampaignId::new_random();
    let no_message = h.app.keyring.tokens.sign(TokenPurpose::SecureMessage, &job.contact_id, other.as_bytes(), expires);
    let wrong_purpose =
        h.app.keyring.tokens.sign(TokenPurpose::Unsubscribe, &job.contact_id, job.campaign_id.as_bytes(), expires);

    for token in [no_message, wrong_purpose, "garbage".to_owned()] {
        assert!(matches!(h.app.secure_messages.page(&token).await, Err(AppError::BadToken)));
    }
}
