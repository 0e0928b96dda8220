//! An appointment reminder on the in-memory harness and a manual clock,
//! swept every hour as the timer would: two patients in zones fifteen hours
//! apart each get the week-before and the day-before reminder at nine in
//! the morning of their own day, never in the journey's quiet hours.

use std::time::Duration;

use jiff::tz::TimeZone;
use time::OffsetDateTime;

use super::test_support::Harness;
use crate::domain::journey::EventName;
use crate::domain::{ContactSchema, ExternalId, ProfileInput};
use crate::ports::Clock;

const HOUR: Duration = Duration::from_secs(3600);

const SCHEMA: &str = r#"{"attributes": [
  {"name": "first_name", "class": "identifier"},
  {"name": "date_of_birth", "class": "identifier"},
  {"name": "next_appointment", "type": "scheduled_date", "class": "identifier", "code": 20},
  {"name": "time_zone", "type": "text", "class": "phi", "code": 21}
]}"#;

fn appointment_reminder() -> String {
    let send = |id: &str, subject: &str, next: Option<&str>| {
        let next = next.map(|n| format!(r#", "next": "{n}""#)).unwrap_or_default();
        format!(
            r#"{{"type": "send", "id": "{id}"{next}, "template": {{"subject": "{subject}",
                "html": "<p>See you soon.</p><p><a href=\"{{{{ unsubscribe_url }}}}\">Unsubscribe</a></p>",
                "text": "See you soon. {{{{ unsubscribe_url }}}}"}}}}"#
        )
    };
    format!(
        r#"{{"name": "Appointment reminder", "category": "wellness-tips",
        "entry": {{"event": {{"name": "appointment.booked"}}}},
        "steps": [
          {{"type": "wait", "id": "week-before", "until": {{"attribute": "next_appointment", "offset_days": -7}},
            "at_local_time": "09:00", "next": "remind-week"}},
          {},
          {{"type": "wait", "id": "day-before", "until": {{"attribute": "next_appointment", "offset_days": -1}},
            "at_local_time": "09:00", "next": "remind-day"}},
          {}
        ],
        "quiet_hours": {{"from": "20:00", "to": "08:00"}},
        "time_zone": "America/Chicago"}}"#,
        send("remind-week", "Your appointment is in a week", Some("day-before")),
        send("remind-day", "Your appointment is tomorrow", None),
    )
}

/// The hour and the date it was at `at` in `zone`.
fn local(at: OffsetDateTime, zone: &str) -> (i8, jiff::civil::Date) {
    let there =
        jiff::Timestamp::from_second(at.unix_timestamp()).unwrap().to_zoned_datetime(TimeZone::get(zone).unwrap());
    (there.time().hour(), there.date())
}

#[tokio::test]
async fn reminders_go_a_week_and_a_day_before_each_appointment_at_nine_in_the_patients_own_zone() {
    let h = Harness::with(|s| s.schema = std::sync::Arc::new(ContactSchema::parse(SCHEMA).unwrap()), |p| p);
    let journey = h.app.journeys.create(&appointment_reminder()).await.unwrap();
    h.app.journeys.launch(&journey).await.unwrap();
    let appointment = (h.clock.now() + time::Duration::days(10)).date();
    let patients = [("chicago@example.org", "America/Chicago"), ("tokyo@example.org", "Asia/Tokyo")];
    for (email, zone) in patients {
        let mut profile = ProfileInput { first_name: Some("Probe".into()), ..ProfileInput::default() };
        profile.custom.insert("next_appointment".into(), serde_json::json!(appointment.to_string()));
        profile.custom.insert("time_zone".into(), serde_json::json!(zone));
        let external = ExternalId::parse(&format!("ext-{}", &email[..5])).unwrap();
        let id = h.app.contacts.upsert("test", external.clone(), email, &profile).await.unwrap().contact_id;
        h.grant(&id, &["wellness-tips"]).await;
        let booked = EventName::parse("appointment.booked").unwrap();
        assert_eq!(h.app.journey_runner.record_event(&external, &booked, h.clock.now()).await.unwrap(), 1);
    }

    // Every hour for twelve days, as the timer would; each mail stamped with the hour it went.
    let mut sent: Vec<(String, String, OffsetDateTime)> = Vec::new();
    for _ in 0..12 * 24 {
        h.app.journey_runner.drain(10).await.unwrap();
        h.work_send_queue().await;
        for mail in h.transport.accepted().into_iter().skip(sent.len()) {
            let raw = String::from_utf8_lossy(&mail.raw).into_owned();
            let subject = raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_owned();
            sent.push((mail.to.clone(), subject, h.clock.now()));
        }
        h.clock.advance(HOUR);
    }

    for (email, zone) in patients {
        let theirs: Vec<_> = sent.iter().filter(|(to, _, _)| to.contains(email)).collect();
        let subjects: Vec<&str> = theirs.iter().map(|(_, s, _)| s.as_str()).collect();
        assert_eq!(subjects, ["Your appointment is in a week", "Your appointment is tomorrow"], "{email}");
        for ((_, subject, at), days_before) in theirs.iter().zip([7, 1]) {
            let (hour, date) = local(*at, zone);
            assert_eq!(hour, 9, "{email}: {subject} went at {hour}:xx on {date}");
            let expected =
                jiff::civil::date(appointment.year() as i16, appointment.month() as i8, appointment.day() as i8)
                    - jiff::Span::new().days(days_before);
            assert_eq!(date, expected, "{email}: {subject} on the wrong day");
        }
    }
}
