//! The journey runner on the in-memory harness and a manual clock: a
//! welcome series walked end to end through the real send path, the
//! engagement branch, consent withdrawn mid-journey, duplicate and
//! concurrent sweeps, pause and resume, versions.

use std::time::Duration;

use super::journey_runner::{EnrolOutcome, SETTLE_RECHECK};
use super::journeys::step_campaign;
use super::test_support::{Harness, category};
use crate::domain::journey::StepId;
use crate::domain::journey::walk::ExitReason;
use crate::domain::{CampaignCounter, ConsentMethod, ContactId, JourneyId};
use crate::ports::{Clock, Engagement, Standing};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn welcome_series(subject_of_second: &str) -> String {
    let unsubscribe = r#"<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"#;
    format!(
        r#"{{
        "name": "Welcome series", "category": "wellness-tips",
        "entry": {{"consent_confirmed": {{"topic": "wellness-tips"}}}},
        "steps": [
          {{"type": "send", "id": "welcome", "next": "wait-3-days",
            "template": {{"subject": "Welcome", "html": "<p>Hello</p>{unsubscribe}", "text": "Hello {{{{ unsubscribe_url }}}}"}}}},
          {{"type": "wait", "id": "wait-3-days", "days": 3, "next": "opened-welcome"}},
          {{"type": "branch", "id": "opened-welcome", "when": {{"opened": {{"step": "welcome"}}}},
            "then": "tips", "else": "reminder"}},
          {{"type": "send", "id": "tips",
            "template": {{"subject": "Three tips", "html": "<p>Tips</p>{unsubscribe}", "text": "Tips {{{{ unsubscribe_url }}}}"}}}},
          {{"type": "send", "id": "reminder",
            "template": {{"subject": "{subject_of_second}", "html": "<p>Again</p>{unsubscribe}", "text": "Again {{{{ unsubscribe_url }}}}"}}}}
        ]}}"#
    )
}

async fn live_journey(h: &Harness, definition: &str) -> JourneyId {
    let id = h.app.journeys.create(definition).await.unwrap();
    h.app.journeys.launch(&id).await.unwrap();
    id
}

/// One sweep, then every send job it queued worked through the sender.
async fn sweep_and_send(h: &Harness) -> super::journey_runner::SweepReport {
    let report = h.app.journey_runner.sweep(100).await.unwrap();
    h.work_send_queue().await;
    report
}

fn subjects(h: &Harness) -> Vec<String> {
    let subject = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw).into_owned();
        text.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned)).expect("a subject line")
    };
    h.transport.accepted().iter().map(|m| subject(&m.raw)).collect()
}

async fn standing(h: &Harness, journey: &JourneyId, contact: &ContactId) -> Standing {
    h.app.ports.journeys.enrolment(journey, contact).await.unwrap().unwrap().standing
}

fn step(name: &str) -> StepId {
    StepId::parse(name).unwrap()
}

#[tokio::test]
async fn a_welcome_series_sends_the_welcome_waits_three_days_then_the_branch_picks_by_opens() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("In case you missed it")).await;
    let opener = h.patient("opener@example.com", &["wellness-tips"]).await;
    let quiet = h.patient("quiet@example.com", &["wellness-tips"]).await;
    for contact in [&opener, &quiet] {
        assert_eq!(h.app.journey_runner.enrol(&journey, contact).await.unwrap(), EnrolOutcome::Entered);
    }

    let first = sweep_and_send(&h).await;
    assert_eq!((first.due, first.queued), (2, 2));
    assert_eq!(subjects(&h), ["Welcome", "Welcome"]);
    let welcome = step_campaign(&journey, 1, &step("welcome"));
    assert!(h.ledger().first_event(&welcome, &opener, CampaignCounter::Opened).await.unwrap());

    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;
    assert!(
        matches!(standing(&h, &journey, &opener).await, Standing::Active { position, .. } if position.step == step("wait-3-days"))
    );
    h.clock.advance(DAY);
    let early = sweep_and_send(&h).await;
    assert_eq!(early.due, 0, "nobody is due before the three days are over");

    h.clock.advance(2 * DAY);
    sweep_and_send(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;

    let mut sent = subjects(&h);
    sent.sort();
    assert_eq!(sent, ["In case you missed it", "Three tips", "Welcome", "Welcome"]);
    for contact in [&opener, &quiet] {
        let now = standing(&h, &journey, contact).await;
        assert!(matches!(now, Standing::Exited { reason: ExitReason::Completed, .. }), "{now:?}");
    }
    let tips = step_campaign(&journey, 1, &step("tips"));
    assert!(h.ledger().state(&tips, &opener).await.unwrap().is_some(), "the opener got the tips");
    assert!(h.ledger().state(&tips, &quiet).await.unwrap().is_none(), "the other did not");
}

#[tokio::test]
async fn a_contact_who_withdraws_consent_mid_journey_gets_no_further_email_and_leaves() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("In case you missed it")).await;
    let contact = h.patient("withdraws@example.com", &["wellness-tips"]).await;
    h.app.journey_runner.enrol(&journey, &contact).await.unwrap();
    sweep_and_send(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;

    let topic = [category("wellness-tips")];
    h.app.consent_ledger.withdraw(&contact, &topic, ConsentMethod::Unsubscribe, Default::default()).await.unwrap();
    h.clock.advance(3 * DAY);
    sweep_and_send(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;

    assert_eq!(subjects(&h), ["Welcome"], "the reminder was not sent");
    let now = standing(&h, &journey, &contact).await;
    assert!(
        matches!(now, Standing::Exited { reason: ExitReason::NotSent, ref from, .. } if *from == step("reminder")),
        "{now:?}"
    );
}

#[tokio::test]
async fn a_repeated_sweep_and_two_concurrent_sweeps_never_send_a_step_twice() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("In case you missed it")).await;
    let contacts =
        [h.patient("a@example.com", &["wellness-tips"]).await, h.patient("b@example.com", &["wellness-tips"]).await];
    for contact in &contacts {
        h.app.journey_runner.enrol(&journey, contact).await.unwrap();
    }

    // Two sweeps read the same due rows at once (a duplicate timer).
    let (one, two) = tokio::join!(h.app.journey_runner.sweep(100), h.app.journey_runner.sweep(100));
    let (one, two) = (one.unwrap(), two.unwrap());
    // The jobs are not worked: as if the sweep died after queueing them;
    // the next sweep, once the recheck is due, queues them again.
    h.clock.advance(SETTLE_RECHECK);
    let again = h.app.journey_runner.sweep(100).await.unwrap();
    h.work_send_queue().await;
    h.work_send_queue().await;

    assert_eq!(one.raced + two.raced, 2, "each row was moved by one sweep only");
    assert!(again.queued >= 2, "{again:?}");
    assert_eq!(subjects(&h), ["Welcome", "Welcome"], "one welcome each, whatever was queued");
}

#[tokio::test]
async fn pausing_holds_every_contact_where_it_is_and_resuming_goes_on() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("In case you missed it")).await;
    let contact = h.patient("paused@example.com", &["wellness-tips"]).await;
    h.app.journey_runner.enrol(&journey, &contact).await.unwrap();

    h.app.journeys.pause(&journey).await.unwrap();
    let held = sweep_and_send(&h).await;
    let late = h.app.journey_runner.enrol(&journey, &h.patient("late@example.com", &["wellness-tips"]).await).await;
    h.app.journeys.resume(&journey).await.unwrap();
    h.clock.advance(super::journey_runner::PAUSED_RECHECK);
    let resumed = sweep_and_send(&h).await;

    assert_eq!((held.held, held.queued), (1, 0));
    assert_eq!(late.unwrap(), EnrolOutcome::NotLive, "nobody enters a paused journey");
    assert_eq!(resumed.queued, 1);
    assert_eq!(subjects(&h), ["Welcome"]);
    assert!(h.app.journeys.resume(&journey).await.is_err(), "already live");
}

#[tokio::test]
async fn contacts_finish_the_version_they_entered_and_new_entries_walk_the_new_one() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("In case you missed it")).await;
    let early = h.patient("early@example.com", &["wellness-tips"]).await;
    h.app.journey_runner.enrol(&journey, &early).await.unwrap();
    sweep_and_send(&h).await;

    let version = h.app.journeys.revise(&journey, &welcome_series("We saved you a seat")).await.unwrap();
    let late = h.patient("late@example.com", &["wellness-tips"]).await;
    h.app.journey_runner.enrol(&journey, &late).await.unwrap();
    for _ in 0..4 {
        h.clock.advance(DAY);
        sweep_and_send(&h).await;
    }
    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;

    assert_eq!(version, 2);
    let reminder = |v| step_campaign(&journey, v, &step("reminder"));
    assert!(h.ledger().state(&reminder(1), &early).await.unwrap().is_some(), "version 1's reminder");
    assert!(h.ledger().state(&reminder(2), &late).await.unwrap().is_some(), "version 2's reminder");
    let mut sent = subjects(&h);
    sent.sort();
    assert_eq!(sent, ["In case you missed it", "We saved you a seat", "Welcome", "Welcome"]);
}

#[tokio::test]
async fn a_journey_that_loops_or_names_an_unknown_topic_is_refused_whole() {
    let h = Harness::new();
    let looping = welcome_series("x").replace(r#""then": "tips""#, r#""then": "welcome""#);
    let unknown_topic = welcome_series("x").replace(r#""category": "wellness-tips""#, r#""category": "lottery""#);

    let loop_error = h.app.journeys.create(&looping).await.unwrap_err().to_string();
    let topic_error = h.app.journeys.create(&unknown_topic).await.unwrap_err().to_string();

    assert!(loop_error.contains("loops"), "{loop_error}");
    assert!(topic_error.contains("category"), "{topic_error}");
    assert!(h.app.journeys.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_timer_tick_drains_batch_after_batch_and_leaves_the_rest_for_the_next_tick() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("Again")).await;
    let batch = super::journey_runner::SWEEP_BATCH;
    for i in 0..(2 * batch + 10) {
        let contact = ContactId::new_random();
        let entered = h.app.journey_runner.enrol(&journey, &contact).await.unwrap();
        assert_eq!(entered, EnrolOutcome::Entered, "contact {i}");
    }

    let bounded = h.app.journey_runner.drain(1).await.unwrap();
    let rest = h.app.journey_runner.drain(10).await.unwrap();
    let idle = h.app.journey_runner.drain(10).await.unwrap();

    assert_eq!(bounded.due, batch as u64, "one batch when the tick allows one");
    assert_eq!(rest.due, (batch + 10) as u64, "the next tick takes the rest, batch after batch");
    assert_eq!(bounded.exited + rest.exited, (2 * batch + 10) as u64, "contacts with no record leave, not sent");
    assert_eq!(idle.due, 0, "nothing is due until their waits end");
}

#[tokio::test]
async fn the_report_counts_contacts_per_step_and_suppresses_small_cells() {
    use super::report::Cell;
    let h = Harness::with(|s| s.min_cell = 3, |p| p);
    let journey = live_journey(&h, &welcome_series("Again")).await;
    let mut contacts = Vec::new();
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        let contact = h.patient(email, &["wellness-tips"]).await;
        h.app.journey_runner.enrol(&journey, &contact).await.unwrap();
        contacts.push(contact);
    }
    let stranger = ContactId::new_random();
    h.app.journey_runner.enrol(&journey, &stranger).await.unwrap();
    sweep_and_send(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    sweep_and_send(&h).await;
    // What the event consumer counts for one person's open of the welcome.
    let welcome = step_campaign(&journey, 1, &step("welcome"));
    h.app.ports.campaigns.increment(&welcome, CampaignCounter::Opened, 1).await.unwrap();

    let report = h.app.journeys.report(&journey).await.unwrap();

    assert_eq!((report.entered, report.active), (Cell::Count(4), Cell::Count(3)));
    let row = |name: &str| report.steps.iter().find(|s| s.step == name).unwrap().clone();
    assert_eq!(row("welcome").sent, Some(Cell::Count(3)));
    assert_eq!(row("welcome").opened, Some(Cell::FewerThan(3)), "one open is below the minimum cell");
    assert_eq!(row("wait-3-days").here, Cell::Count(3));
    assert_eq!(row("wait-3-days").sent, None, "a wait sends nothing");
    assert_eq!(report.exited["not_sent"], Cell::FewerThan(3), "the contact with no record left, counted small");
    assert_eq!(report.exited["completed"], Cell::Count(0));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("example.com"), "no address in the report: {json}");
}

#[tokio::test]
async fn each_sweep_that_decrypts_contacts_writes_one_audit_entry_naming_how_many() {
    let h = Harness::new();
    let journey = live_journey(&h, &welcome_series("Again")).await;
    for email in ["one@example.com", "two@example.com"] {
        let contact = h.patient(email, &["wellness-tips"]).await;
        h.app.journey_runner.enrol(&journey, &contact).await.unwrap();
    }

    let first = sweep_and_send(&h).await;
    let idle = sweep_and_send(&h).await;

    let entries = h.app.audit.entries(0, 100).await.unwrap();
    let sweeps: Vec<_> = entries.iter().filter(|e| e.event.action == "journey.sweep").collect();
    assert_eq!((first.read, idle.read), (2, 0));
    assert_eq!(sweeps.len(), 1, "one entry for the sweep that read, none for the idle one");
    assert_eq!(sweeps[0].event.actor, "carepost:journeys");
    assert!(sweeps[0].event.reason.contains("2 contacts"), "{:?}", sweeps[0].event.reason);
    assert!(!format!("{:?}", sweeps[0]).contains("example.com"), "IDs and counts only");
}

#[tokio::test]
async fn a_branch_on_a_segment_rule_about_engagement_reads_the_contacts_opens() {
    let h = Harness::new();
    let unsubscribe = r#"<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"#;
    let definition = format!(
        r#"{{
        "name": "Re-engagement", "category": "wellness-tips",
        "entry": {{"consent_confirmed": {{"topic": "wellness-tips"}}}},
        "steps": [
          {{"type": "branch", "id": "engaged", "when": {{"matches": {{"opened_within_days": 30}}}},
            "then": "news", "else": "come-back"}},
          {{"type": "send", "id": "news",
            "template": {{"subject": "News", "html": "<p>News</p>{unsubscribe}", "text": "News {{{{ unsubscribe_url }}}}"}}}},
          {{"type": "send", "id": "come-back",
            "template": {{"subject": "We miss you", "html": "<p>Back</p>{unsubscribe}", "text": "Back {{{{ unsubscribe_url }}}}"}}}}
        ]}}"#
    );
    let journey = live_journey(&h, &definition).await;
    let reader = h.patient("reader@example.com", &["wellness-tips"]).await;
    let lapsed = h.patient("lapsed@example.com", &["wellness-tips"]).await;
    let now = h.clock.now();
    let opened_last_week = now - 7 * DAY;
    let kept = now + 365 * DAY;
    h.app.ports.activity.record_engagement(&reader, Engagement::Open, opened_last_week, kept).await.unwrap();
    h.app.ports.activity.record_engagement(&lapsed, Engagement::Open, now - 90 * DAY, kept).await.unwrap();
    for contact in [&reader, &lapsed] {
        h.app.journey_runner.enrol(&journey, contact).await.unwrap();
    }

    sweep_and_send(&h).await;

    let news = step_campaign(&journey, 1, &step("news"));
    let come_back = step_campaign(&journey, 1, &step("come-back"));
    assert!(h.ledger().state(&news, &reader).await.unwrap().is_some(), "the recent reader gets the news");
    assert!(h.ledger().state(&news, &lapsed).await.unwrap().is_none());
    assert!(h.ledger().state(&come_back, &lapsed).await.unwrap().is_some(), "the lapsed reader is asked back");
    assert!(h.ledger().state(&come_back, &reader).await.unwrap().is_none());
}
