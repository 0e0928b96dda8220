//! The simulation before launch on the in-memory harness: its counts equal
//! what the run on the same clock then does, step by step; who would not
//! enter and why; a date entry on its day within the horizon; small cells;
//! how many would take each way of a branch; a long run resumed from a
//! sealed token.

use std::time::Duration;

use super::journey_runner::SETTLE_RECHECK;
use super::journey_simulation::{SimulationProgress, SimulationReport};
use super::journeys::step_campaign;
use super::report::Cell;
use super::test_support::Harness;
use crate::domain::journey::StepId;
use crate::domain::{ContactId, JourneyId};
use crate::ports::Clock;

const HOUR: Duration = Duration::from_secs(3600);

fn welcome_series() -> String {
    let unsubscribe = r#"<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"#;
    let send = |id: &str, next: &str, subject: &str| {
        format!(
            r#"{{"type": "send", "id": "{id}", {next} "template": {{"subject": "{subject}", "html": "<p>Hi</p>{unsubscribe}", "text": "Hi {{{{ unsubscribe_url }}}}"}}}}"#
        )
    };
    format!(
        r#"{{"name": "Welcome series", "category": "wellness-tips",
        "entry": {{"consent_confirmed": {{"topic": "wellness-tips"}}}},
        "steps": [{}, {{"type": "wait", "id": "wait-3-days", "days": 3, "next": "opened-welcome"}},
          {{"type": "branch", "id": "opened-welcome", "when": {{"opened": {{"step": "welcome"}}}}, "then": "tips", "else": "reminder"}},
          {}, {}]}}"#,
        send("welcome", r#""next": "wait-3-days","#, "Welcome"),
        send("tips", "", "Three tips"),
        send("reminder", "", "In case you missed it"),
    )
}

fn birthday() -> String {
    let unsubscribe = r#"<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"#;
    format!(
        r#"{{"name": "Birthday", "category": "wellness-tips",
        "entry": {{"date": {{"attribute": "date_of_birth", "offset_days": 0, "yearly": true}}}},
        "steps": [{{"type": "send", "id": "greeting",
          "template": {{"subject": "Happy birthday", "html": "<p>Hi</p>{unsubscribe}", "text": "Hi {{{{ unsubscribe_url }}}}"}}}}]}}"#
    )
}

async fn patients(h: &Harness, prefix: &str, n: usize, topics: &[&str]) -> Vec<ContactId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(h.patient(&format!("{prefix}{i}@example.com"), topics).await);
    }
    ids
}

fn sent_of(report: &super::journey_simulation::SimulationReport, step: &str) -> Option<Cell> {
    report.steps.iter().find(|s| s.step == step).unwrap().sent
}

/// Sweeps hourly (and once more a settle later) until `hours` have passed,
/// working the send queue after each sweep, as the timer and sender do.
async fn run_for(h: &Harness, hours: u32) {
    for _ in 0..hours {
        h.app.journey_runner.drain(50).await.unwrap();
        h.work_send_queue().await;
        h.clock.advance(SETTLE_RECHECK);
        h.app.journey_runner.drain(50).await.unwrap();
        h.work_send_queue().await;
        h.clock.advance(HOUR - SETTLE_RECHECK);
    }
}

async fn ledger_sent(h: &Harness, journey: &JourneyId, step: &str) -> u64 {
    let campaign = step_campaign(journey, 1, &StepId::parse(step).unwrap());
    h.ledger().counts(&campaign).await.unwrap().sent
}

#[tokio::test]
async fn a_simulation_predicts_step_by_step_what_the_run_on_the_same_clock_then_does() {
    let h = Harness::with(|s| s.min_cell = 1, |p| p);
    let journey = h.app.journeys.create(&welcome_series()).await.unwrap();
    let members = patients(&h, "member", 4, &["wellness-tips"]).await;
    patients(&h, "other", 2, &["appointment-reminders"]).await;

    let simulated = h.app.journey_simulator.simulate(&journey, 30).await.unwrap();
    h.app.journeys.launch(&journey).await.unwrap();
    for contact in &members {
        h.app.journey_runner.enrol(&journey, contact).await.unwrap();
    }
    run_for(&h, 30 * 24).await;
    let report = h.app.journeys.report(&journey).await.unwrap();

    assert!(simulated.complete);
    assert_eq!(simulated.evaluated, 6);
    assert_eq!(simulated.entered, Cell::Count(4));
    assert_eq!(simulated.not_entered["no_consent"], Cell::Count(2), "the other topic's patients do not enter");
    for step in ["welcome", "tips", "reminder"] {
        let ran = ledger_sent(&h, &journey, step).await;
        assert_eq!(sent_of(&simulated, step), Some(Cell::Count(ran)), "step {step}: simulated vs run");
    }
    assert_eq!(sent_of(&simulated, "reminder"), Some(Cell::Count(4)), "nobody opened: everyone gets the reminder");
    let branch = simulated.steps.iter().find(|s| s.step == "opened-welcome").unwrap();
    let ways: Vec<(&str, &str, Option<Cell>)> =
        branch.next.iter().map(|l| (l.when.as_str(), l.step.as_str(), l.contacts)).collect();
    assert_eq!(ways, [("yes", "tips", Some(Cell::Count(0))), ("no", "reminder", Some(Cell::Count(4)))], "per branch");
    let ran = report.steps.iter().find(|s| s.step == "opened-welcome").unwrap();
    let ran: Vec<Option<Cell>> = ran.next.iter().map(|l| l.contacts).collect();
    assert_eq!(ran, [Some(Cell::Count(0)), Some(Cell::Count(4))], "the run's report counts the same ways");
    let completed = |steps: &[super::journey_simulation::SimulatedStep]| -> u64 {
        steps.iter().map(|s| s.exited["completed"].chartable()).sum()
    };
    assert_eq!(Cell::Count(completed(&simulated.steps)), report.exited["completed"]);
    assert!(simulated.steps.iter().filter(|s| s.kind == "send").all(|s| s.lint.as_deref() == Some("ok")));
    assert_eq!(h.transport.accepted().len(), 8, "the run sent; the simulation sent nothing");
}

#[tokio::test]
async fn a_short_horizon_leaves_contacts_waiting_and_a_horizon_out_of_range_is_refused() {
    let h = Harness::with(|s| s.min_cell = 1, |p| p);
    let journey = h.app.journeys.create(&welcome_series()).await.unwrap();
    patients(&h, "member", 3, &["wellness-tips"]).await;

    let two_days = h.app.journey_simulator.simulate(&journey, 2).await.unwrap();
    let too_long = h.app.journey_simulator.simulate(&journey, 367).await;
    let none = h.app.journey_simulator.simulate(&journey, 0).await;

    let wait = two_days.steps.iter().find(|s| s.step == "wait-3-days").unwrap();
    assert_eq!(wait.waiting, Cell::Count(3));
    assert_eq!(sent_of(&two_days, "welcome"), Some(Cell::Count(3)));
    assert_eq!(sent_of(&two_days, "reminder"), Some(Cell::Count(0)));
    assert!(too_long.is_err() && none.is_err());
    assert!(h.transport.accepted().is_empty(), "a simulation sends nothing");
}

#[tokio::test]
async fn a_date_entry_enters_contacts_on_their_day_within_the_horizon_and_small_cells_hide_counts_and_times() {
    let h = Harness::with(|s| s.min_cell = 1, |p| p);
    let small = Harness::with(|s| s.min_cell = 5, |p| p);
    let mut journeys = Vec::new();
    for harness in [&h, &small] {
        journeys.push(harness.app.journeys.create(&birthday()).await.unwrap());
        patients(harness, "member", 2, &["wellness-tips"]).await;
    }
    // Every harness patient was born on 2 April 1980.
    let today = h.clock.now().date();
    let next_birthday = (today.year()..=today.year() + 1)
        .map(|y| time::Date::from_calendar_date(y, time::Month::April, 2).unwrap())
        .find(|d| *d >= today)
        .unwrap();
    let days_away = u32::try_from((next_birthday - today).whole_days()).unwrap();

    let before = h.app.journey_simulator.simulate(&journeys[0], days_away.max(1) - 1).await.unwrap();
    let after = h.app.journey_simulator.simulate(&journeys[0], days_away + 1).await.unwrap();
    let hidden = small.app.journey_simulator.simulate(&journeys[1], days_away + 1).await.unwrap();

    if days_away > 1 {
        assert_eq!(before.entered, Cell::Count(0));
        assert_eq!(before.not_entered["not_due"], Cell::Count(2));
    }
    assert_eq!(after.entered, Cell::Count(2));
    let greeting = &after.steps[0];
    assert_eq!(greeting.first.map(|t| t.date()), Some(next_birthday), "sent on the birthday");
    assert_eq!(hidden.entered, Cell::FewerThan(5));
    assert_eq!(hidden.steps[0].first, None, "a suppressed cell shows no time");
    let json = serde_json::to_string(&hidden).unwrap();
    assert!(!json.contains("1980") && !json.contains("example.com"), "{json}");
}

#[tokio::test]
async fn a_simulation_that_outlasts_its_budget_goes_on_from_a_sealed_token_to_the_same_figures() {
    let whole = Harness::with(|s| s.min_cell = 1, |p| p);
    let paged = Harness::with(
        |s| {
            s.min_cell = 1;
            s.fanout_page_size = 2;
            s.dry_run_budget = Duration::ZERO;
        },
        |p| p,
    );
    let mut ids = Vec::new();
    for h in [&whole, &paged] {
        ids.push(h.app.journeys.create(&welcome_series()).await.unwrap());
        patients(h, "member", 5, &["wellness-tips"]).await;
        patients(h, "other", 2, &["appointment-reminders"]).await;
    }
    let expected = whole.app.journey_simulator.simulate(&ids[0], 30).await.unwrap();

    // One page a call: seven contacts, four calls.
    let sim = &paged.app.journey_simulator;
    let mut answers = vec![sim.simulate_call(&ids[1], 30, None).await.unwrap()];
    while let SimulationProgress::Partial(partial) = answers.last().unwrap().clone() {
        assert!(answers.len() < 10, "the simulation never completed");
        assert_eq!(serde_json::to_value(&partial).unwrap()["steps"], serde_json::Value::Null, "no figures yet");
        paged.clock.advance(Duration::from_secs(60)); // the horizon stays where the first call put it
        answers.push(sim.simulate_call(&ids[1], 30, Some(&partial.resume)).await.unwrap());
    }
    let SimulationProgress::Partial(first) = &answers[0] else { panic!("one page cannot finish seven contacts") };
    let mut tampered = first.resume.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = sim.simulate_call(&ids[1], 30, Some(std::str::from_utf8(&tampered).unwrap())).await;
    paged.app.journeys.revise(&ids[1], &welcome_series()).await.unwrap();
    let older_version = sim.simulate_call(&ids[1], 30, Some(&first.resume)).await;

    let SimulationProgress::Complete(done) = answers.last().unwrap() else { unreachable!() };
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!((done.evaluated, done.entered), (7, expected.entered));
    assert_eq!(done.until - done.start, expected.until - expected.start, "the horizon of the first call");
    assert_eq!(done.not_entered, expected.not_entered);
    let figures = |r: &SimulationReport| r.steps.iter().map(|s| (s.sent, s.reached, s.waiting)).collect::<Vec<_>>();
    assert_eq!(figures(done), figures(&expected), "the same figures as in one call");
    assert!(tampered.is_err(), "a token changed by the caller is refused");
    assert!(older_version.is_err(), "a token of an older version is refused");
}
