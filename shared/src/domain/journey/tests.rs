use serde_json::{Value, json};
use time::macros::datetime;

use super::split::arm_for;
use super::*;
use crate::domain::ContactId;

fn template(subject: &str) -> Value {
    json!({"subject": subject, "html": "<p>Hello {{ first_name }}</p>", "text": "Hello {{ first_name }}"})
}

/// The welcome series of the issue: sign-up, an email, three days, then
/// one of two emails depending on whether the first was opened.
fn welcome_series() -> Value {
    json!({
        "name": "Welcome series",
        "category": "wellness-tips",
        "entry": {"consent_confirmed": {"topic": "wellness-tips"}},
        "steps": [
            {"type": "send", "id": "welcome", "template": template("Welcome"), "next": "wait-3-days"},
            {"type": "wait", "id": "wait-3-days", "days": 3, "next": "opened-welcome"},
            {"type": "branch", "id": "opened-welcome", "when": {"opened": {"step": "welcome"}},
             "then": "tips", "else": "reminder"},
            {"type": "send", "id": "tips", "template": template("Three tips")},
            {"type": "send", "id": "reminder", "template": template("In case you missed it")}
        ],
        "goal": "appointment.booked",
        "reentry": {"after_days": 365},
        "quiet_hours": {"from": "20:00", "to": "08:00"},
        "closed_days": ["sunday"],
        "time_zone": "America/Chicago"
    })
}

fn parse(definition: &Value) -> Result<Journey, JourneyError> {
    Journey::parse(&definition.to_string(), &ContactSchema::default())
}

fn error_of(definition: &Value) -> String {
    parse(definition).expect_err("refused").to_string()
}

fn with_steps(steps: Value) -> Value {
    let mut d = welcome_series();
    d["steps"] = steps;
    d
}

#[test]
fn the_welcome_series_parses_into_its_graph() {
    let journey = parse(&welcome_series()).unwrap();

    assert_eq!(journey.name(), "Welcome series");
    assert_eq!(journey.start().id.as_str(), "welcome");
    assert_eq!(journey.steps().len(), 5);
    let branch = journey.step(&StepId::parse("opened-welcome").unwrap()).unwrap();
    let next: Vec<&str> = branch.successors().iter().map(|s| s.as_str()).collect();
    assert_eq!(next, ["tips", "reminder"]);
    assert_eq!(journey.goal().map(EventName::as_str), Some("appointment.booked"));
    assert_eq!(journey.reentry(), Reentry::After(Duration::from_secs(365 * 24 * 3600)));
}

#[test]
fn a_definition_that_could_loop_is_refused_with_the_loop_named() {
    let looping = with_steps(json!([
        {"type": "send", "id": "nudge", "template": template("Nudge"), "next": "wait"},
        {"type": "wait", "id": "wait", "days": 7, "next": "opened"},
        {"type": "branch", "id": "opened", "when": {"opened": {"step": "nudge"}}, "else": "nudge"}
    ]));

    let error = parse(&looping).unwrap_err();

    assert_eq!(error, JourneyError::Cycle(vec!["nudge".into(), "wait".into(), "opened".into(), "nudge".into()]));
    assert_eq!(error.to_string(), "the journey loops: nudge -> wait -> opened -> nudge");
}

#[test]
fn a_step_leading_nowhere_and_a_step_nothing_leads_to_are_named() {
    let dangling = with_steps(json!([{"type": "send", "id": "a", "template": template("A"), "next": "b"}]));
    let orphan = with_steps(json!([
        {"type": "send", "id": "a", "template": template("A")},
        {"type": "exit", "id": "b"}
    ]));

    assert_eq!(error_of(&dangling), "step 'a': leads to 'b', which is not a step");
    assert_eq!(error_of(&orphan), "step 'b': no step leads here");
}

#[test]
fn two_steps_with_one_name_are_refused() {
    let twice = with_steps(json!([
        {"type": "send", "id": "a", "template": template("A"), "next": "a2"},
        {"type": "exit", "id": "a2"},
        {"type": "exit", "id": "a2"}
    ]));

    assert_eq!(error_of(&twice), "step 'a2': two steps have this name");
}

#[test]
fn an_engagement_branch_must_ask_about_an_earlier_send() {
    let later = with_steps(json!([
        {"type": "branch", "id": "opened", "when": {"opened": {"step": "welcome"}}, "then": "welcome"},
        {"type": "send", "id": "welcome", "template": template("Welcome")}
    ]));
    let not_a_send = with_steps(json!([
        {"type": "wait", "id": "pause", "days": 1, "next": "opened"},
        {"type": "branch", "id": "opened", "when": {"clicked": {"step": "pause"}}}
    ]));

    assert_eq!(error_of(&later), "step 'opened': asks about 'welcome', which does not come before it");
    assert_eq!(error_of(&not_a_send), "step 'opened': asks about 'pause', which sends nothing");
}

#[test]
fn a_split_adds_up_to_one_hundred_with_at_most_one_holdout() {
    let split = |arms: Value| {
        with_steps(json!([
            {"type": "split", "id": "test", "arms": arms},
            {"type": "send", "id": "a", "template": template("A")},
            {"type": "send", "id": "b", "template": template("B")}
        ]))
    };

    let good = parse(&split(json!([
        {"percent": 45, "next": "a"}, {"percent": 45, "next": "b"}, {"percent": 10, "holdout": true}
    ])))
    .unwrap();
    let short = split(json!([{"percent": 40, "next": "a"}, {"percent": 50, "next": "b"}]));
    let both = split(json!([{"percent": 50, "next": "a", "holdout": true}, {"percent": 50, "next": "b"}]));

    assert!(matches!(&good.start().kind, StepKind::Split(arms) if arms[2].next.is_none()));
    assert_eq!(error_of(&short), "step 'test': the arms' percents add up to 100");
    assert_eq!(error_of(&both), "step 'test': an arm has a next step, or is the holdout");
}

#[test]
fn waits_are_more_than_nothing_and_at_most_a_year() {
    let wait = |w: Value| {
        let mut step = json!({"type": "wait", "id": "hold"});
        step.as_object_mut().unwrap().extend(w.as_object().unwrap().clone());
        with_steps(json!([step]))
    };

    assert!(parse(&wait(json!({"days": 366}))).is_ok());
    assert!(parse(&wait(json!({"hours": 36}))).is_ok());
    assert_eq!(error_of(&wait(json!({"days": 367}))), "step 'hold': a wait is more than nothing and at most 366 days");
    assert_eq!(error_of(&wait(json!({}))), "step 'hold': a wait has days and/or hours, or until, not both");
    assert_eq!(
        error_of(&wait(json!({"days": 1, "until": {"attribute": "last_visit"}}))),
        "step 'hold': a wait has days and/or hours, or until, not both"
    );
}

#[test]
fn date_offsets_name_a_date_attribute_of_the_schema() {
    let mut recall = welcome_series();
    recall["entry"] = json!({"date": {"attribute": "last_visit", "offset_days": 335}});
    let mut not_a_date = welcome_series();
    not_a_date["entry"] = json!({"date": {"attribute": "zip", "offset_days": 1}});
    let mut unknown = welcome_series();
    unknown["entry"] = json!({"date": {"attribute": "next_appointment"}});

    let journey = parse(&recall).unwrap();

    assert!(matches!(journey.entry(), Entry::Date(d) if d.attribute == "last_visit" && d.days == 335));
    assert_eq!(error_of(&not_a_date), "entry.date: the attribute is not a date");
    assert_eq!(error_of(&unknown), "entry.date: no such attribute in the contact schema");
}

#[test]
fn errors_quote_nothing_from_the_file() {
    let mut unknown_field = welcome_series();
    unknown_field["jane.doe@example.org"] = json!(true);
    let bad_name = with_steps(json!([{"type": "exit", "id": "Jane Doe 1980-02-03"}]));
    let mut bad_zone = welcome_series();
    bad_zone["time_zone"] = json!("Jane/Doe");
    let phi_without_purpose = with_steps(json!([
        {"type": "send", "id": "a1c", "template": template("Your results"), "phi_personalized": true}
    ]));

    let errors = [error_of(&unknown_field), error_of(&bad_name), error_of(&bad_zone), error_of(&phi_without_purpose)];

    assert!(errors[0].starts_with("journey definition: unknown field"), "{}", errors[0]);
    assert_eq!(errors[1], "steps: a step name is 1 to 64 of a-z, 0-9, '-' and '_'");
    assert_eq!(errors[2], "time_zone: not a time zone of the IANA database (e.g. America/Chicago)");
    assert_eq!(errors[3], "step 'a1c': a PHI-personalized send needs a purpose");
    for e in &errors {
        assert!(!e.contains("jane") && !e.contains("Jane") && !e.contains("1980"), "{e}");
    }
}

#[test]
fn a_split_sends_contacts_in_its_proportions_and_always_the_same_way() {
    let arms = [
        Arm { percent: 45, next: StepId::parse("a") },
        Arm { percent: 45, next: StepId::parse("b") },
        Arm { percent: 10, next: None },
    ];
    let step = StepId::parse("test").unwrap();
    let contacts: Vec<ContactId> = (0..10_000).map(|_| ContactId::new_random()).collect();

    let mut taken = [0u32; 3];
    for c in &contacts {
        taken[arm_for("journey-1", &step, c, &arms)] += 1;
    }
    let again: Vec<usize> = contacts.iter().take(100).map(|c| arm_for("journey-1", &step, c, &arms)).collect();
    let first: Vec<usize> = contacts.iter().take(100).map(|c| arm_for("journey-1", &step, c, &arms)).collect();

    // Binomial at n = 10,000: a standard deviation of 0.5 points at 45 %, 0.3 at 10 %; allow four.
    assert!((4300..=4700).contains(&taken[0]), "{taken:?}");
    assert!((4300..=4700).contains(&taken[1]), "{taken:?}");
    assert!((880..=1120).contains(&taken[2]), "{taken:?}");
    assert_eq!(again, first, "a retried step puts a contact where it went before");
}

fn policy(quiet: Option<(&str, &str)>, closed: &[&str], zone: &str) -> LocalPolicy {
    let quiet = quiet.map(|(f, t)| QuietHours::parse(f, t).unwrap());
    let closed: Vec<String> = closed.iter().map(|d| d.to_string()).collect();
    LocalPolicy::new(quiet, &closed, Some(zone)).unwrap()
}

#[test]
fn quiet_hours_hold_mail_until_morning_in_the_patients_own_zone() {
    let p = policy(Some(("20:00", "08:00")), &[], "America/Chicago");
    // 03:00 UTC on a Wednesday: 22:00 the evening before in New York, 12:00 in Tokyo.
    let at = datetime!(2026-12-02 03:00 UTC);

    let new_york = p.next_allowed(at, Some("America/New_York"));
    let tokyo = p.next_allowed(at, Some("Asia/Tokyo"));
    let default_zone = p.next_allowed(at, None);

    assert_eq!(new_york, datetime!(2026-12-02 13:00 UTC), "08:00 in New York (UTC-5)");
    assert_eq!(tokyo, at, "noon in Tokyo: at once");
    assert_eq!(default_zone, datetime!(2026-12-02 14:00 UTC), "08:00 in Chicago, the journey's zone");
}

#[test]
fn closed_days_move_mail_to_the_next_open_morning() {
    let p = policy(Some(("20:00", "08:00")), &["saturday", "sunday"], "Europe/Berlin");
    // Friday 21:00 in Berlin (UTC+1 in December).
    let friday_evening = datetime!(2026-12-04 20:00 UTC);

    assert_eq!(p.next_allowed(friday_evening, None), datetime!(2026-12-07 07:00 UTC), "Monday 08:00 in Berlin");
}

#[test]
fn a_time_of_day_is_the_next_one_in_the_zone_and_a_skipped_hour_resolves_forward() {
    let p = policy(None, &[], "America/New_York");
    let nine = TimeOfDay::parse("09:00").unwrap();
    let half_past_two = TimeOfDay::parse("02:30").unwrap();

    // 10:00 in New York: tomorrow's 09:00.
    assert_eq!(p.next_time_of_day(datetime!(2026-12-02 15:00 UTC), nine, None), datetime!(2026-12-03 14:00 UTC));
    // 02:30 does not exist on 2027-03-14 in New York (clocks go 02:00 -> 03:00).
    assert_eq!(
        p.next_time_of_day(datetime!(2027-03-14 05:00 UTC), half_past_two, None),
        datetime!(2027-03-14 07:30 UTC),
        "03:30 EDT"
    );
    assert_eq!(TimeOfDay::parse("24:00").unwrap_err().to_string(), "a time of day is HH:MM, 00:00 to 23:59");
}

mod walking {
    use std::collections::{BTreeMap, BTreeSet};

    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::super::walk::{ExitReason, Facts, Move, Position, after_send, next_move};
    use super::*;
    use crate::domain::segment::Segment;

    #[derive(Default)]
    struct Known {
        sent: BTreeMap<String, OffsetDateTime>,
        opened: BTreeSet<String>,
        events: Vec<(String, OffsetDateTime)>,
        dates: BTreeMap<String, time::Date>,
        zone: Option<&'static str>,
    }

    impl Facts for Known {
        fn sent_at(&self, step: &StepId) -> Option<OffsetDateTime> {
            self.sent.get(step.as_str()).copied()
        }
        fn opened(&self, step: &StepId) -> bool {
            self.opened.contains(step.as_str())
        }
        fn clicked(&self, _: &StepId) -> bool {
            false
        }
        fn event_since(&self, name: &EventName, since: OffsetDateTime) -> bool {
            self.events.iter().any(|(n, at)| n == name.as_str() && *at >= since)
        }
        fn matches(&self, _: &Segment) -> bool {
            false
        }
        fn date(&self, attribute: &str) -> Option<time::Date> {
            self.dates.get(attribute).copied()
        }
        fn time_zone(&self) -> Option<&str> {
            self.zone
        }
    }

    // Wednesday 09:00 in Chicago, the welcome series' zone.
    const ENTERED: OffsetDateTime = datetime!(2026-12-02 15:00 UTC);

    fn id(s: &str) -> StepId {
        StepId::parse(s).unwrap()
    }

    fn walk(journey: &Journey, at: &Position, known: &Known, now: OffsetDateTime) -> Move {
        next_move(journey, "welcome-v1", &ContactId::new_random(), at, ENTERED, known, now)
    }

    fn start(journey: &Journey) -> Position {
        Position { step: journey.start().id.clone(), arrived_at: ENTERED }
    }

    #[test]
    fn the_welcome_series_sends_waits_three_days_then_follows_the_open() {
        let journey = parse(&welcome_series()).unwrap();
        let mut known = Known::default();

        let first = walk(&journey, &start(&journey), &known, ENTERED);
        known.sent.insert("welcome".into(), ENTERED);
        let waiting = after_send(&journey, &id("welcome"), ENTERED).unwrap();
        let a_day_later = walk(&journey, &waiting, &known, ENTERED + time::Duration::days(1));
        let unopened = walk(&journey, &waiting, &known, ENTERED + time::Duration::days(3));
        known.opened.insert("welcome".into());
        let opened = walk(&journey, &waiting, &known, ENTERED + time::Duration::days(3));

        assert_eq!(first, Move::Send { at: start(&journey) });
        assert_eq!(a_day_later, Move::Wait { at: waiting.clone(), until: ENTERED + time::Duration::days(3) });
        let reminder = Position { step: id("reminder"), arrived_at: ENTERED + time::Duration::days(3) };
        assert_eq!(unopened, Move::Send { at: reminder });
        assert!(matches!(opened, Move::Send { at } if at.step == id("tips")));
    }

    #[test]
    fn a_late_timer_does_not_stretch_the_journey() {
        let journey = parse(&welcome_series()).unwrap();
        let known = Known { sent: [("welcome".into(), ENTERED)].into(), ..Known::default() };
        let waiting = after_send(&journey, &id("welcome"), ENTERED).unwrap();

        let late = walk(&journey, &waiting, &known, ENTERED + time::Duration::days(5));

        assert_eq!(
            late,
            Move::Send { at: Position { step: id("reminder"), arrived_at: ENTERED + time::Duration::days(3) } },
            "the branch was reached when the wait ended, not when the timer fired"
        );
    }

    #[test]
    fn a_send_that_already_went_is_not_sent_again() {
        let journey = parse(&welcome_series()).unwrap();
        let known = Known { sent: [("welcome".into(), ENTERED)].into(), ..Known::default() };

        // A crash after the send, before the position moved: the walk starts at the send step again.
        let again = walk(&journey, &start(&journey), &known, ENTERED + time::Duration::minutes(1));

        assert!(matches!(again, Move::Wait { at, .. } if at.step == id("wait-3-days")));
    }

    #[test]
    fn a_send_due_in_quiet_hours_waits_for_the_patients_morning() {
        let journey = parse(&welcome_series()).unwrap();
        let known = Known { zone: Some("America/New_York"), ..Known::default() };
        // 22:00 in New York.
        let evening = datetime!(2026-12-03 03:00 UTC);

        let held = walk(&journey, &start(&journey), &known, evening);

        assert_eq!(held, Move::Wait { at: start(&journey), until: datetime!(2026-12-03 13:00 UTC) });
    }

    #[test]
    fn the_goal_event_takes_the_contact_out_converted() {
        let journey = parse(&welcome_series()).unwrap();
        let before = Known {
            events: vec![("appointment.booked".into(), ENTERED - time::Duration::days(1))],
            ..Known::default()
        };
        let after = Known {
            events: vec![("appointment.booked".into(), ENTERED + time::Duration::hours(1))],
            ..Known::default()
        };
        let waiting = Position { step: id("wait-3-days"), arrived_at: ENTERED };

        let not_yet = walk(&journey, &waiting, &before, ENTERED + time::Duration::days(1));
        let converted = walk(&journey, &waiting, &after, ENTERED + time::Duration::days(1));

        assert!(matches!(not_yet, Move::Wait { .. }), "an event before entry does not count");
        assert_eq!(converted, Move::Exit { from: id("wait-3-days"), reason: ExitReason::Converted });
    }

    #[test]
    fn a_wait_for_a_date_the_contact_lacks_exits_and_one_it_has_is_kept() {
        let journey = parse(&with_steps(json!([
            {"type": "wait", "id": "before-visit", "until": {"attribute": "last_visit", "offset_days": 30},
             "at_local_time": "09:00", "next": "recall"},
            {"type": "send", "id": "recall", "template": template("Time for a check-up")}
        ])))
        .unwrap();
        let dated =
            Known { dates: [("last_visit".into(), time::macros::date!(2026 - 11 - 20))].into(), ..Known::default() };

        let undated = walk(&journey, &start(&journey), &Known::default(), ENTERED);
        let waiting = walk(&journey, &start(&journey), &dated, ENTERED);

        assert_eq!(undated, Move::Exit { from: id("before-visit"), reason: ExitReason::NoDate });
        // 2026-12-20 is a Sunday, closed: the wait ends at 09:00 that day; the send then waits for Monday.
        assert_eq!(waiting, Move::Wait { at: start(&journey), until: datetime!(2026-12-20 15:00 UTC) });
    }

    #[test]
    fn a_split_holdout_is_counted_out_and_the_rest_split_as_the_arms_say() {
        let journey = parse(&with_steps(json!([
            {"type": "split", "id": "test", "arms": [{"percent": 50, "next": "a"}, {"percent": 50, "holdout": true}]},
            {"type": "send", "id": "a", "template": template("A")}
        ])))
        .unwrap();

        let moves: Vec<Move> =
            (0..1000).map(|_| walk(&journey, &start(&journey), &Known::default(), ENTERED)).collect();
        let held_out = moves.iter().filter(|m| matches!(m, Move::Exit { reason: ExitReason::Holdout, .. })).count();
        let sent = moves.iter().filter(|m| matches!(m, Move::Send { at } if at.step == id("a"))).count();

        assert_eq!(held_out + sent, 1000);
        assert!((430..=570).contains(&held_out), "{held_out}");
    }
}

mod simulating {
    use std::collections::BTreeMap;

    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::super::simulate::simulate;
    use super::super::walk::{ExitReason, Facts, Move, Position, after_send, next_move};
    use super::*;
    use crate::domain::segment::Segment;

    /// A contact about whom nothing is known but what the walk itself did.
    #[derive(Default)]
    struct Plain {
        sent: BTreeMap<StepId, OffsetDateTime>,
    }

    impl Facts for Plain {
        fn sent_at(&self, step: &StepId) -> Option<OffsetDateTime> {
            self.sent.get(step).copied()
        }
        fn opened(&self, _: &StepId) -> bool {
            false
        }
        fn clicked(&self, _: &StepId) -> bool {
            false
        }
        fn event_since(&self, _: &EventName, _: OffsetDateTime) -> bool {
            false
        }
        fn matches(&self, _: &Segment) -> bool {
            false
        }
        fn date(&self, _: &str) -> Option<time::Date> {
            None
        }
        fn time_zone(&self) -> Option<&str> {
            None
        }
    }

    const START: OffsetDateTime = datetime!(2026-12-02 15:00 UTC);

    fn split_journey() -> Journey {
        parse(&with_steps(json!([
            {"type": "split", "id": "test", "arms": [{"percent": 80, "next": "first"}, {"percent": 20, "holdout": true}]},
            {"type": "send", "id": "first", "template": template("First"), "next": "a-day"},
            {"type": "wait", "id": "a-day", "days": 1, "next": "second"},
            {"type": "send", "id": "second", "template": template("Second")}
        ])))
        .unwrap()
    }

    /// What a run does: timers fire on the hour (late, as a sweep's are),
    /// each due contact is walked and its sends recorded.
    fn run(journey: &Journey, contacts: &[ContactId], until: OffsetDateTime) -> BTreeMap<(String, &'static str), u64> {
        let mut counts = BTreeMap::new();
        let mut state: Vec<(Position, Plain, Option<OffsetDateTime>, bool)> = contacts
            .iter()
            .map(|_| {
                (Position { step: journey.start().id.clone(), arrived_at: START }, Plain::default(), Some(START), false)
            })
            .collect();
        let mut now = START;
        while now <= until {
            for (i, (at, facts, due, done)) in state.iter_mut().enumerate() {
                if *done || due.is_none_or(|d| d > now) {
                    continue;
                }
                loop {
                    match next_move(journey, "split-v1", &contacts[i], at, START, facts, now) {
                        Move::Send { at: here } => {
                            *counts.entry((here.step.as_str().to_owned(), "sent")).or_default() += 1;
                            facts.sent.insert(here.step.clone(), now);
                            match after_send(journey, &here.step, now) {
                                Some(next) => *at = next,
                                None => {
                                    *counts.entry((here.step.as_str().to_owned(), "completed")).or_default() += 1;
                                    *done = true;
                                    break;
                                }
                            }
                        }
                        Move::Wait { at: here, until } => {
                            *at = here;
                            *due = Some(until);
                            break;
                        }
                        Move::Exit { from, reason } => {
                            let what = if reason == ExitReason::Holdout { "holdout" } else { "completed" };
                            *counts.entry((from.as_str().to_owned(), what)).or_default() += 1;
                            *done = true;
                            break;
                        }
                    }
                }
            }
            now += time::Duration::hours(1);
        }
        counts
    }

    #[test]
    fn the_simulation_counts_what_a_run_on_the_same_clock_then_does() {
        let journey = split_journey();
        let contacts: Vec<ContactId> = (0..1000).map(|_| ContactId::new_random()).collect();
        let plain = Plain::default();
        let until = START + time::Duration::days(3);

        let simulated =
            simulate(&journey, "split-v1", contacts.iter().map(|c| (*c, &plain as &dyn Facts)), START, until);
        let ran = run(&journey, &contacts, until);

        let sim = |id: &str| simulated.step(id).unwrap();
        let held_out = sim("test").exited.get(&ExitReason::Holdout).copied().unwrap_or(0);
        assert_eq!(simulated.entered, 1000);
        assert_eq!(sim("test").reached, 1000);
        assert_eq!(held_out, ran[&("test".to_owned(), "holdout")]);
        assert!((140..=260).contains(&held_out), "about a fifth held out: {held_out}");
        assert_eq!(sim("first").sent, ran[&("first".to_owned(), "sent")]);
        assert_eq!(sim("first").sent, 1000 - held_out);
        assert_eq!(sim("second").sent, ran[&("second".to_owned(), "sent")]);
        assert_eq!(sim("second").exited.get(&ExitReason::Completed), ran.get(&("second".to_owned(), "completed")));
        assert_eq!(sim("a-day").first, Some(START), "reached at once after the first send");
        assert_eq!(sim("second").first, Some(START + time::Duration::days(1)));
    }

    #[test]
    fn a_simulation_counts_nobody_as_opening_and_stops_at_its_horizon() {
        let journey = parse(&welcome_series()).unwrap();
        let contacts: Vec<ContactId> = (0..50).map(|_| ContactId::new_random()).collect();
        let plain = Plain::default();
        let population = || contacts.iter().map(|c| (*c, &plain as &dyn Facts));

        let short = simulate(&journey, "welcome-v1", population(), START, START + time::Duration::days(1));
        let long = simulate(&journey, "welcome-v1", population(), START, START + time::Duration::days(10));

        assert_eq!(short.step("welcome").unwrap().sent, 50);
        assert_eq!(short.step("wait-3-days").unwrap().waiting, 50, "still waiting at the horizon");
        assert_eq!(short.step("opened-welcome").unwrap().reached, 0);
        assert_eq!(long.step("opened-welcome").unwrap().reached, 50);
        assert_eq!(long.step("tips").unwrap().reached, 0, "nobody is counted as opening");
        assert_eq!(long.step("reminder").unwrap().sent, 50);
    }
}

#[test]
fn a_date_offset_falls_on_its_day_or_the_next_anniversary_and_a_past_one_off_day_is_none() {
    use time::macros::date;
    let recall = DateOffset { attribute: "last_visit".into(), days: 335, yearly: false };
    let birthday = DateOffset { attribute: "date_of_birth".into(), days: 0, yearly: true };
    let leap = DateOffset { attribute: "date_of_birth".into(), days: -1, yearly: true };

    assert_eq!(recall.next_day(date!(2026 - 01 - 10), date!(2026 - 06 - 01)), Some(date!(2026 - 12 - 11)));
    assert_eq!(recall.next_day(date!(2025 - 01 - 10), date!(2026 - 06 - 01)), None);
    assert_eq!(birthday.next_day(date!(1980 - 03 - 05), date!(2026 - 03 - 06)), Some(date!(2027 - 03 - 05)));
    assert_eq!(birthday.next_day(date!(1980 - 03 - 05), date!(2026 - 03 - 05)), Some(date!(2026 - 03 - 05)));
    assert_eq!(leap.next_day(date!(1984 - 02 - 29), date!(2026 - 01 - 01)), Some(date!(2026 - 02 - 27)));
}

#[test]
fn a_day_begins_and_a_date_is_read_in_the_patients_own_zone() {
    use time::macros::date;
    let p = policy(None, &[], "America/Chicago");
    let evening_in_chicago = datetime!(2026-12-09 03:00 UTC);

    assert_eq!(p.start_of_day(date!(2026 - 12 - 09), None), datetime!(2026-12-09 06:00 UTC));
    assert_eq!(p.start_of_day(date!(2026 - 12 - 09), Some("Asia/Tokyo")), datetime!(2026-12-08 15:00 UTC));
    assert_eq!(p.local_date(evening_in_chicago, None), date!(2026 - 12 - 08));
    assert_eq!(p.local_date(evening_in_chicago, Some("Europe/Berlin")), date!(2026 - 12 - 09));
}
