//! Journey events (`POST /v1/events`) on the in-memory harness: an event
//! enters the live journeys it starts, once; a recall's goal event takes
//! the patient out, converted, before the next email; bad references and
//! times are refused.

use std::time::Duration;

use super::AppError;
use super::journey_runner::SETTLE_RECHECK;
use super::test_support::Harness;
use crate::domain::journey::EventName;
use crate::domain::journey::walk::ExitReason;
use crate::domain::{ExternalId, JourneyId};
use crate::ports::{Clock, Standing};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn send(id: &str, next: Option<&str>, subject: &str) -> serde_json::Value {
    let mut step = serde_json::json!({"type": "send", "id": id, "template": {
        "subject": subject,
        "html": "<p>Hello</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
        "text": "Hello {{ unsubscribe_url }}"}});
    if let Some(next) = next {
        step["next"] = next.into();
    }
    step
}

fn lab_result_notice() -> String {
    serde_json::json!({"name": "Lab result", "category": "wellness-tips",
        "entry": {"event": {"name": "lab_result.available"}},
        "steps": [send("notice", None, "Your result is ready in the portal")]})
    .to_string()
}

fn recall() -> String {
    serde_json::json!({"name": "Recall", "category": "wellness-tips",
        "entry": {"consent_confirmed": {"topic": "wellness-tips"}},
        "goal": "appointment.booked",
        "steps": [send("recall", Some("wait-14-days"), "Time for your check-up"),
                  {"type": "wait", "id": "wait-14-days", "days": 14, "next": "second"},
                  send("second", None, "A reminder: book your check-up")]})
    .to_string()
}

async fn live(h: &Harness, definition: &str) -> JourneyId {
    let id = h.app.journeys.create(definition).await.unwrap();
    h.app.journeys.launch(&id).await.unwrap();
    id
}

async fn tick(h: &Harness) {
    h.app.journey_runner.drain(50).await.unwrap();
    h.work_send_queue().await;
}

fn external(email: &str) -> ExternalId {
    let safe: String = email.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    ExternalId::parse(&format!("ext-{safe}")).unwrap()
}

#[tokio::test]
async fn an_event_enters_the_live_journeys_it_starts_once_even_when_it_is_sent_twice() {
    let h = Harness::new();
    let journey = live(&h, &lab_result_notice()).await;
    let contact = h.patient("lab@example.com", &["wellness-tips"]).await;
    let lab = EventName::parse("lab_result.available").unwrap();
    let now = h.clock.now();

    let first = h.app.journey_runner.record_event(&external("lab@example.com"), &lab, now).await.unwrap();
    let again = h.app.journey_runner.record_event(&external("lab@example.com"), &lab, now).await.unwrap();
    tick(&h).await;

    assert_eq!((first, again), (1, 0), "entered once");
    assert_eq!(h.app.ports.journeys.events_of(&contact).await.unwrap(), vec![(lab, now)], "recorded once");
    assert!(h.app.ports.journeys.enrolment(&journey, &contact).await.unwrap().is_some());
    assert_eq!(h.transport.accepted().len(), 1, "the notice went out once");
}

#[tokio::test]
async fn an_event_for_an_unknown_contact_or_from_the_future_is_refused_and_records_nothing() {
    let h = Harness::new();
    live(&h, &lab_result_notice()).await;
    let contact = h.patient("known@example.com", &["wellness-tips"]).await;
    let lab = EventName::parse("lab_result.available").unwrap();
    let tomorrow = h.clock.now() + DAY;

    let unknown = h.app.journey_runner.record_event(&external("nobody@example.com"), &lab, h.clock.now()).await;
    let future = h.app.journey_runner.record_event(&external("known@example.com"), &lab, tomorrow).await;

    assert!(matches!(unknown, Err(AppError::NotFound("contact"))), "{unknown:?}");
    assert!(matches!(future, Err(AppError::Invalid(ref f)) if f.field == "occurred_at"), "{future:?}");
    assert!(h.app.ports.journeys.events_of(&contact).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_recall_whose_goal_event_happens_takes_the_patient_out_converted_before_the_next_email() {
    let h = Harness::with(|s| s.min_cell = 1, |p| p);
    let journey = live(&h, &recall()).await;
    let books = h.patient("books@example.com", &["wellness-tips"]).await;
    let waits = h.patient("waits@example.com", &["wellness-tips"]).await;
    for contact in [&books, &waits] {
        h.app.journey_runner.enrol(&journey, contact).await.unwrap();
    }
    tick(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    tick(&h).await;

    let booked = EventName::parse("appointment.booked").unwrap();
    h.app.journey_runner.record_event(&external("books@example.com"), &booked, h.clock.now()).await.unwrap();
    h.clock.advance(14 * DAY);
    tick(&h).await;
    h.clock.advance(SETTLE_RECHECK);
    tick(&h).await;
    let report = serde_json::to_value(h.app.journeys.report(&journey).await.unwrap()).unwrap();

    let standing = h.app.ports.journeys.enrolment(&journey, &books).await.unwrap().unwrap().standing;
    assert!(matches!(standing, Standing::Exited { reason: ExitReason::Converted, .. }), "{standing:?}");
    let to = |address: &str| {
        h.transport.accepted().iter().filter(|m| String::from_utf8_lossy(&m.raw).contains(address)).count()
    };
    assert_eq!(to("books@example.com"), 1, "the booked patient got the recall, not the reminder");
    assert_eq!(to("waits@example.com"), 2, "the other got both");
    assert_eq!(report["exited"]["converted"], 1, "{report}");
    assert_eq!(report["exited"]["completed"], 1, "{report}");
}
