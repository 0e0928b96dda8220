//! The daily entry scan on the in-memory harness and a manual clock, ticked
//! every hour as the timer would: a recall that enters each patient on the
//! day after a last visit that day falls on, a segment journey that takes
//! in who newly matches at the next pass and nobody twice, a pass read page
//! by page across ticks, a segment on engagement (re-engagement), and a
//! journey's cap.

use std::time::Duration;

use super::journey_entry::ENTRY_SCAN_EVERY;
use super::journey_runner::EnrolOutcome;
use super::test_support::Harness;
use crate::domain::{ContactId, ExternalId, JourneyId, ProfileInput};
use crate::ports::{Clock, Engagement};

const HOUR: Duration = Duration::from_secs(3600);

fn one_send(entry: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "Entry test", "category": "wellness-tips", "entry": {entry}{extra},
        "steps": [{{"type": "send", "id": "hello", "template": {{"subject": "Time for a check-up",
          "html": "<p>Book a visit.</p><p><a href=\"{{{{ unsubscribe_url }}}}\">Unsubscribe</a></p>",
          "text": "Book a visit. {{{{ unsubscribe_url }}}}"}}}}]}}"#
    )
}

/// A patient with these attributes, consenting to wellness tips unless `consents` is false.
async fn patient(h: &Harness, email: &str, profile: ProfileInput, consents: bool) -> ContactId {
    let external = ExternalId::parse(&format!("ext-{}", email.split('@').next().unwrap())).unwrap();
    let id = h.app.contacts.upsert("test", external, email, &profile).await.unwrap().contact_id;
    if consents {
        h.grant(&id, &["wellness-tips"]).await;
    }
    id
}

fn visited(days_ago: i64, h: &Harness) -> ProfileInput {
    let day = (h.clock.now() - time::Duration::days(days_ago)).date();
    ProfileInput { first_name: Some("Probe".into()), last_visit: Some(day.to_string()), ..ProfileInput::default() }
}

async fn live(h: &Harness, definition: &str) -> JourneyId {
    let journey = h.app.journeys.create(definition).await.unwrap();
    h.app.journeys.launch(&journey).await.unwrap();
    journey
}

/// One timer tick: entry scans, the sweep, the sender; answers the passes completed.
async fn tick(h: &Harness) -> u64 {
    let entries = h.app.journey_entries.scan_while(|| true).await.unwrap();
    h.app.journey_runner.drain(10).await.unwrap();
    h.work_send_queue().await;
    entries.completed
}

/// Whom each mail went to, with the (UTC) date it went on.
fn mailed(h: &Harness, sent: &mut Vec<(String, time::Date)>) {
    for mail in h.transport.accepted().into_iter().skip(sent.len()) {
        sent.push((mail.to.clone(), h.clock.now().date()));
    }
}

#[tokio::test]
async fn a_recall_enters_each_patient_on_the_day_their_last_visit_says_and_mails_them_once() {
    let h = Harness::new();
    let journey = live(&h, &one_send(r#"{"date": {"attribute": "last_visit", "offset_days": 30}}"#, "")).await;
    let start = h.clock.now();
    patient(&h, "today@example.org", visited(30, &h), true).await;
    patient(&h, "in-two-days@example.org", visited(28, &h), true).await;
    patient(&h, "long-ago@example.org", visited(60, &h), true).await;
    patient(&h, "no-consent@example.org", visited(30, &h), false).await;
    patient(&h, "no-visit@example.org", ProfileInput::default(), true).await;

    let (mut sent, mut passes) = (Vec::new(), 0);
    for _ in 0..4 * 24 {
        passes += tick(&h).await;
        mailed(&h, &mut sent);
        h.clock.advance(HOUR);
    }

    let on = |who: &str| -> Vec<time::Date> {
        sent.iter().filter(|(to, _)| to.starts_with(who)).map(|(_, days)| *days).collect()
    };
    assert_eq!(on("today@"), [start.date()], "whose day it is enters at the first pass, once: {sent:?}");
    // Enrolled the day before, due when its day begins (UTC, the journey's zone): mailed that day.
    assert_eq!(on("in-two-days@"), [(start + time::Duration::days(2)).date()], "{sent:?}");
    assert_eq!(sent.len(), 2, "a passed day, no consent and no date enter nobody: {sent:?}");
    assert_eq!(passes, 4, "one pass a day");
    let enrolled = h.app.ports.journeys.enrolments(&journey).await.unwrap();
    assert_eq!(enrolled.len(), 2);
}

#[tokio::test]
async fn a_segment_journey_takes_in_who_newly_matches_at_the_next_days_pass_and_nobody_twice() {
    let h = Harness::new();
    let segment = r#"{"segment": {"exists": {"attr": "last_visit"}}}"#;
    let journey = live(&h, &one_send(segment, "")).await;
    let start = h.clock.now();
    patient(&h, "first@example.org", visited(3, &h), true).await;
    patient(&h, "never-matches@example.org", ProfileInput::default(), true).await;

    let mut sent = Vec::new();
    for hour in 0..3 * 24 {
        if hour == 2 {
            patient(&h, "joins-later@example.org", visited(1, &h), true).await;
        }
        tick(&h).await;
        mailed(&h, &mut sent);
        h.clock.advance(HOUR);
    }

    let days = |who: &str| {
        let dates = sent.iter().filter(|(to, _)| to.starts_with(who)).map(|(_, d)| *d);
        dates.map(|d| (d - start.date()).whole_days()).collect::<Vec<_>>()
    };
    assert_eq!(days("first@"), [0], "matched at launch: the first pass, once");
    // The next pass begins a day after the first, to the hour.
    let next_pass = (start + ENTRY_SCAN_EVERY).date() - start.date();
    assert_eq!(days("joins-later@"), [next_pass.whole_days()], "matched after the day's pass: the next day's, once");
    assert!(days("never-matches@").is_empty());
    assert_eq!(h.app.ports.journeys.enrolments(&journey).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_pass_is_read_a_page_a_tick_and_goes_on_where_it_stopped() {
    let h = Harness::with(|s| s.fanout_page_size = 2, |p| p);
    let segment = r#"{"segment": {"exists": {"attr": "last_visit"}}}"#;
    let journey = live(&h, &one_send(segment, "")).await;
    for i in 0..5 {
        patient(&h, &format!("p{i}@example.org"), visited(3, &h), true).await;
    }

    // No time beyond one page a tick.
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(h.app.journey_entries.scan_while(|| false).await.unwrap());
    }
    let entered: Vec<u64> = reports.iter().map(|r| r.entered).collect();
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    h.clock.advance(ENTRY_SCAN_EVERY);
    let next_day = h.app.journey_entries.scan_while(|| true).await.unwrap();

    assert_eq!(entered, [2, 2, 1, 0], "three pages over three ticks, then nothing until the next day");
    assert_eq!(completed, 1);
    assert_eq!(reports[3].journeys, 0, "a complete pass is not begun again within the day");
    assert_eq!((next_day.journeys, next_day.read, next_day.entered), (1, 5, 0), "read again, nobody twice");
    let scan = h.app.ports.journeys.entry_scan(&journey).await.unwrap().unwrap();
    assert!(scan.complete && scan.entered == 0 && scan.from.is_some(), "{scan:?}");
    let entries = h.app.audit.entries(0, 100).await.unwrap();
    let audited: Vec<_> = entries.iter().filter(|e| e.event.action == "journey.entry").collect();
    assert_eq!(audited.len(), 6, "one entry per page decrypted, both days");
    assert!(audited.iter().all(|e| e.event.actor == "carepost:journeys"));
    assert!(!format!("{audited:?}").contains("example.org"), "IDs and counts only");
}

#[tokio::test]
async fn a_capped_journey_takes_no_more_than_its_cap_and_a_returning_contact_takes_no_slot() {
    let h = Harness::new();
    let consent = r#"{"consent_confirmed": {"topic": "wellness-tips"}}"#;
    let journey = live(&h, &one_send(consent, r#", "cap": 2"#)).await;
    let contacts = [
        h.patient("a@example.org", &[]).await,
        h.patient("b@example.org", &[]).await,
        h.patient("c@example.org", &[]).await,
    ];

    let first = h.app.journey_runner.enrol(&journey, &contacts[0]).await.unwrap();
    let again = h.app.journey_runner.enrol(&journey, &contacts[0]).await.unwrap();
    let second = h.app.journey_runner.enrol(&journey, &contacts[1]).await.unwrap();
    let third = h.app.journey_runner.enrol(&journey, &contacts[2]).await.unwrap();

    assert_eq!(
        [first, again, second, third],
        [EnrolOutcome::Entered, EnrolOutcome::AlreadyIn, EnrolOutcome::Entered, EnrolOutcome::Capped]
    );
    assert_eq!(h.app.ports.journeys.enrolments(&journey).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_re_engagement_journey_takes_in_only_the_patients_who_opened_nothing_lately() {
    let h = Harness::with(|s| s.min_cell = 1, |p| p);
    let segment = r#"{"segment": {"not": {"opened_within_days": 180}}}"#;
    let journey = live(&h, &one_send(segment, "")).await;
    let engaged = patient(&h, "engaged@example.org", visited(3, &h), true).await;
    let quiet = patient(&h, "quiet@example.org", visited(3, &h), true).await;
    let now = h.clock.now();
    let opened_at = now - time::Duration::days(10);
    let expires = now + time::Duration::days(400);
    h.app.ports.activity.record_engagement(&engaged, Engagement::Open, opened_at, expires).await.unwrap();

    let simulated = h.app.journey_simulator.simulate(&journey, 1).await.unwrap();
    let entered = h.app.journey_entries.scan_while(|| true).await.unwrap();

    assert_eq!(entered.entered, 1, "only who opened nothing in 180 days");
    let enrolled: Vec<ContactId> =
        h.app.ports.journeys.enrolments(&journey).await.unwrap().iter().map(|e| e.contact).collect();
    assert_eq!(enrolled, [quiet]);
    assert_eq!(simulated.entered, crate::app::report::Cell::Count(1), "the simulation reads opens the same way");
}
