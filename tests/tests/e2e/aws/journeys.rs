//! A welcome series on the AWS runtime (moto), moved only by the `fanout`
//! function's journey timer input, as the stack's schedule gives it every
//! minute: two patients confirm and enter, the tick queues each welcome, a
//! duplicate tick queues nothing, the sender mails them once; one patient
//! withdraws, three days and a morning pass on the application's clock, and
//! only the other gets the reminder. The report counts what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::app::journey_runner::SETTLE_RECHECK;
use carepost::domain::journey::EventName;
use carepost::domain::{
    ConsentCategory, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ExternalId, ProfileInput,
};
use carepost::runtime::aws::build_with_clock;
use carepost::runtime::lambda;
use serde_json::{Value, json};

use super::fault_injection::patient;
use super::harness::{ShiftedClock, moto_stack, run_sender, sent_raw_messages};

/// The shipped example without quiet hours and closed days: the test runs
/// at any hour of any day (quiet hours have their own tests).
fn welcome_series() -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/journeys.example.json"))
        .expect("the shipped example");
    let mut definition: Value = serde_json::from_str(&example).unwrap();
    definition.as_object_mut().unwrap().retain(|k, _| k != "quiet_hours" && k != "closed_days");
    definition.to_string()
}

fn timer_input() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/fanout/journey-sweep.json"))
        .expect("the sample timer input");
    serde_json::from_str(&text).unwrap()
}

async fn subjects_to(address: &str) -> Vec<String> {
    sent_raw_messages()
        .await
        .into_iter()
        .filter(|m| m.contains(&format!("To: {address}")))
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned)))
        // The journey's mail only, not the sign-up's confirmation request.
        .filter(|subject| !subject.starts_with("Please confirm"))
        .collect()
}

#[tokio::test]
async fn the_fanout_functions_timer_input_walks_a_welcome_series_once_per_step_and_withdrawal_stops_the_next_send() {
    let stack = moto_stack().await;
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await.unwrap();
    let app = running.app.clone();
    let queue = running.fanout_queue.clone();
    let journey = app.journeys.create(&welcome_series()).await.unwrap();
    app.journeys.launch(&journey).await.unwrap();
    let (stays, leaves) = ("journey.stays@example.org", "journey.leaves@example.org");
    let _ = patient(&app, stays, true).await;
    let leaver = patient(&app, leaves, true).await;
    let tick =
        || lambda::handle_fanout_payload(&app, queue.as_ref(), timer_input(), Instant::now() + Duration::from_secs(30));

    let first = tick().await.unwrap();
    let duplicate = tick().await.unwrap();
    run_sender(&stack).await;
    clock.pass(SETTLE_RECHECK + Duration::from_secs(1));
    let settled = tick().await.unwrap();
    let topic = [ConsentCategory::parse("wellness-tips").unwrap()];
    app.consent_ledger.withdraw(&leaver, &topic, ConsentMethod::Unsubscribe, Default::default()).await.unwrap();
    clock.pass(Duration::from_secs(4 * 24 * 3600));
    let after_the_wait = tick().await.unwrap();
    run_sender(&stack).await;
    clock.pass(SETTLE_RECHECK + Duration::from_secs(1));
    let last = tick().await.unwrap();
    let unknown =
        lambda::handle_fanout_payload(&app, queue.as_ref(), json!({"carepost": "other"}), Instant::now()).await;
    let report = serde_json::to_value(app.journeys.report(&journey).await.unwrap()).unwrap();

    assert_eq!((first["due"].as_u64(), first["queued"].as_u64()), (Some(2), Some(2)), "{first}");
    assert_eq!(duplicate["queued"], 0, "a duplicate tick finds both waiting for their sends to settle: {duplicate}");
    assert_eq!(settled["waiting"], 2, "both moved on to the three-day wait: {settled}");
    assert_eq!(after_the_wait["queued"], 2, "both reminders queued; the sender re-checks consent: {after_the_wait}");
    assert_eq!(last["exited"], 2, "{last}");
    assert_eq!(subjects_to(stays).await, ["Welcome to our wellness tips", "In case you missed it"]);
    assert_eq!(subjects_to(leaves).await, ["Welcome to our wellness tips"], "withdrawn: no reminder");
    assert!(matches!(unknown, Err(lambda::FanoutPayloadError::UnknownShape)));
    assert_eq!(report["entered"], 2);
    assert_eq!(report["exited"]["completed"], 1);
    assert_eq!(report["exited"]["not_sent"], 1, "the withdrawn patient left: {report}");
    let branch = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "opened-welcome").unwrap();
    let ways: Vec<(&str, &Value)> =
        branch["next"].as_array().unwrap().iter().map(|l| (l["when"].as_str().unwrap(), &l["contacts"])).collect();
    assert_eq!(ways, [("yes", &json!(0)), ("no", &json!(2))], "nobody opened: both went the no way: {report}");
}

/// An appointment reminder a week and a day before the patient's
/// `next_appointment`, at 09:00 in the patient's own zone, never in quiet
/// hours.
fn appointment_reminder() -> String {
    let send = |id: &str, subject: &str, next: Option<&str>| {
        let mut step = json!({"type": "send", "id": id, "template": {"subject": subject,
            "html": "<p>See you soon.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "text": "See you soon. {{ unsubscribe_url }}"}});
        if let Some(next) = next {
            step["next"] = json!(next);
        }
        step
    };
    let wait = |id: &str, days: i32, next: &str| {
        json!({"type": "wait", "id": id, "until": {"attribute": "next_appointment", "offset_days": days},
               "at_local_time": "09:00", "next": next})
    };
    json!({
        "name": "Appointment reminder", "category": "wellness-tips",
        "entry": {"event": {"name": "appointment.booked"}},
        "steps": [wait("week-before", -7, "remind-week"), send("remind-week", "Your appointment is in a week", Some("day-before")),
                  wait("day-before", -1, "remind-day"), send("remind-day", "Your appointment is tomorrow", None)],
        "quiet_hours": {"from": "20:00", "to": "08:00"},
        "time_zone": "America/Chicago"
    })
    .to_string()
}

const APPOINTMENT_SCHEMA: &str = r#"{"attributes": [
  {"name": "first_name", "class": "identifier"},
  {"name": "next_appointment", "type": "scheduled_date", "class": "identifier", "code": 20},
  {"name": "time_zone", "type": "text", "class": "phi", "code": 21}
]}"#;

#[tokio::test]
async fn an_appointment_reminder_goes_a_week_and_a_day_before_at_nine_in_each_patients_own_zone() {
    let stack = moto_stack().await;
    let mut settings = stack.settings.clone();
    settings.settings.schema = Arc::new(carepost::domain::ContactSchema::parse(APPOINTMENT_SCHEMA).unwrap());
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), settings, clock.clone()).await.unwrap();
    let (app, queue) = (running.app.clone(), running.fanout_queue.clone());
    let journey = app.journeys.create(&appointment_reminder()).await.unwrap();
    app.journeys.launch(&journey).await.unwrap();
    let appointment = (app.journey_runner.now() + time::Duration::days(9)).date();
    let patients = [("reminded.chicago@example.org", "America/Chicago"), ("reminded.tokyo@example.org", "Asia/Tokyo")];
    let booked = EventName::parse("appointment.booked").unwrap();
    for (email, zone) in patients {
        let mut profile = ProfileInput { first_name: Some("Probe".into()), ..ProfileInput::default() };
        profile.custom.insert("next_appointment".into(), json!(appointment.to_string()));
        profile.custom.insert("time_zone".into(), json!(zone));
        let external = ExternalId::parse(&format!("mrn-{}", zone.len())).unwrap();
        let contact = app.contacts.upsert("clinic", external.clone(), email, &profile).await.unwrap().contact_id;
        let topic = ConsentCategory::parse("wellness-tips").unwrap();
        let now = app.journey_runner.now();
        let evidence =
            ConsentEvidence::without_proof(contact, ConsentEntryKind::Granted, vec![topic], now, ConsentMethod::Api);
        app.consent_ledger.append(evidence, ConsentStatus::Active).await.unwrap();
        assert_eq!(app.journey_runner.record_event(&external, &booked, now).await.unwrap(), 1, "{email} entered");
    }

    // The timer every hour for nine days on the application's clock; each
    // mail stamped with the hour it went.
    let mut sent: Vec<(String, String, time::OffsetDateTime)> = Vec::new();
    for _ in 0..9 * 24 {
        let report = lambda::handle_fanout_payload(
            &app,
            queue.as_ref(),
            timer_input(),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
        if report["queued"].as_u64().unwrap_or(0) > 0 {
            run_sender(&stack).await;
            let raw = sent_raw_messages().await;
            for message in raw.iter().skip(sent.len()) {
                let header =
                    |name: &str| message.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_default().to_owned();
                sent.push((header("To: "), header("Subject: "), app.journey_runner.now()));
            }
        }
        clock.pass(Duration::from_secs(3600));
    }

    for (email, zone) in patients {
        let theirs: Vec<_> = sent.iter().filter(|(to, _, _)| to.contains(email)).collect();
        let subjects: Vec<&str> = theirs.iter().map(|(_, subject, _)| subject.as_str()).collect();
        assert_eq!(subjects, ["Your appointment is in a week", "Your appointment is tomorrow"], "{email}");
        for ((_, subject, at), days_before) in theirs.iter().zip([7, 1]) {
            let there = jiff::Timestamp::from_second(at.unix_timestamp())
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::get(zone).unwrap());
            let day = appointment - time::Duration::days(days_before);
            assert_eq!(there.time().hour(), 9, "{email}: {subject} went at {there:?}");
            assert_eq!(
                (there.date().year(), there.date().month(), there.date().day()),
                (day.year() as i16, day.month() as i8, day.day() as i8),
                "{email}: {subject} on the wrong day"
            );
        }
    }
}

/// A recall eleven months after the last visit: entered by the daily entry
/// scan on the day it falls on, a second email two weeks later, and the
/// goal (a booking) taking out whoever books first.
fn recall() -> String {
    let send = |id: &str, subject: &str| {
        json!({"type": "send", "id": id, "template": {"subject": subject,
            "html": "<p>Book your yearly check-up.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "text": "Book your yearly check-up. {{ unsubscribe_url }}"}})
    };
    let mut first = send("recall", "Time for your yearly check-up");
    first["next"] = json!("two-weeks");
    json!({
        "name": "Recall", "category": "wellness-tips",
        "entry": {"date": {"attribute": "last_visit", "offset_days": 335}},
        "goal": "appointment.booked",
        "steps": [first, {"type": "wait", "id": "two-weeks", "days": 14, "next": "recall-again"},
                  send("recall-again", "Still time to book your check-up")]
    })
    .to_string()
}

#[tokio::test]
async fn a_recall_enters_each_patient_on_their_day_after_the_last_visit_and_a_booking_ends_it_before_the_second_email()
{
    let stack = moto_stack().await;
    let clock = Arc::new(ShiftedClock::default());
    let running = build_with_clock(stack.clients.clone(), stack.settings.clone(), clock.clone()).await.unwrap();
    let (app, queue) = (running.app.clone(), running.fanout_queue.clone());
    let journey = app.journeys.create(&recall()).await.unwrap();
    app.journeys.launch(&journey).await.unwrap();
    let today = app.journey_runner.now().date();
    // Whose day is today, whose is in three days, and one whose day passed a month ago.
    let patients = [("recall.books", 335), ("recall.waits", 335), ("recall.later", 332), ("recall.passed", 365)];
    let mut externals = Vec::new();
    for (name, days_ago) in patients {
        let last_visit = (today - time::Duration::days(days_ago)).to_string();
        let profile =
            ProfileInput { first_name: Some("Probe".into()), last_visit: Some(last_visit), ..Default::default() };
        let external = ExternalId::parse(&format!("mrn-{name}")).unwrap();
        let email = format!("{name}@example.org");
        let contact = app.contacts.upsert("clinic", external.clone(), &email, &profile).await.unwrap().contact_id;
        let topic = ConsentCategory::parse("wellness-tips").unwrap();
        let now = app.journey_runner.now();
        let evidence =
            ConsentEvidence::without_proof(contact, ConsentEntryKind::Granted, vec![topic], now, ConsentMethod::Api);
        app.consent_ledger.append(evidence, ConsentStatus::Active).await.unwrap();
        externals.push(external);
    }
    let tick =
        || lambda::handle_fanout_payload(&app, queue.as_ref(), timer_input(), Instant::now() + Duration::from_secs(30));

    // The timer every two hours for twenty days on the application's clock.
    let (mut entered, mut passes) = (0, 0);
    for hour in (0..20 * 24).step_by(2) {
        if hour == 24 {
            let booked = EventName::parse("appointment.booked").unwrap();
            app.journey_runner.record_event(&externals[0], &booked, app.journey_runner.now()).await.unwrap();
        }
        let report = tick().await.unwrap();
        entered += report["entries"]["entered"].as_u64().unwrap();
        passes += report["entries"]["completed"].as_u64().unwrap();
        if report["queued"].as_u64().unwrap_or(0) > 0 {
            run_sender(&stack).await;
        }
        clock.pass(Duration::from_secs(2 * 3600));
    }
    let report = serde_json::to_value(app.journeys.report(&journey).await.unwrap()).unwrap();

    let first = ["Time for your yearly check-up"];
    assert_eq!(subjects_to("recall.books@example.org").await, first, "booked after the first: no second");
    assert_eq!(
        subjects_to("recall.waits@example.org").await,
        ["Time for your yearly check-up", "Still time to book your check-up"]
    );
    assert_eq!(
        subjects_to("recall.later@example.org").await,
        ["Time for your yearly check-up", "Still time to book your check-up"]
    );
    assert!(subjects_to("recall.passed@example.org").await.is_empty(), "a day long passed enters nobody");
    assert_eq!(entered, 3, "each entered once, by the scan");
    assert_eq!(passes, 20, "one pass a day");
    assert_eq!(report["exited"]["converted"], 1, "{report}");
    assert_eq!(report["exited"]["completed"], 2, "{report}");
}
