//! An operator runs a journey on the embedded stack with the `carepost`
//! CLI: stores the shipped welcome series, launches it, and a patient who
//! confirms the sign-up gets the welcome once, moved by the stack's own
//! timer; pause, resume and the report; bad IDs, a looping definition and
//! a launch from the wrong status are refused with a clear message. On a
//! clock the test moves: the welcome series past its wait and branch, with
//! one patient unsubscribing from the welcome; a recall entered by the
//! daily entry scan; a split over 10,000 patients.

use std::time::{Duration, Instant};

use carepost::synthetic;
use serde_json::Value;

use super::aws::harness::ShiftedClock;
use super::browser::browser;
use super::helpers::{TestApp, cli, mails_in, spawn_app, spawn_app_with};

/// The shipped example, without its quiet hours and closed days (the test
/// runs at any hour of any day) and so without a held first send.
fn welcome_series_any_time() -> tempfile::NamedTempFile {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/journeys.example.json"))
        .expect("the shipped example");
    let mut definition: Value = serde_json::from_str(&example).unwrap();
    let fields = definition.as_object_mut().unwrap();
    fields.remove("quiet_hours");
    fields.remove("closed_days");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&definition).unwrap()).unwrap();
    file
}

#[tokio::test]
async fn a_launched_welcome_series_mails_a_confirmed_patient_once_and_the_operator_steers_it_with_the_cli() {
    let test = spawn_app().await;
    let file = welcome_series_any_time();
    let patient = &synthetic::generate(1, 77)[0];

    let (create_code, created, create_err) = cli(&test, &["journey", "create", file.path().to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let (launch_code, launched, _) = cli(&test, &["journey", "launch", &id]).await;
    let (_, listed, _) = cli(&test, &["journey", "list"]).await;
    test.client.sign_up(patient, &["wellness-tips"]).await;
    assert_eq!(test.client.confirm(&[patient.email.as_str()]).await, 1);
    // The stack's journey timer moves the new entry: no sweep is run by hand.
    let deadline = Instant::now() + Duration::from_secs(60);
    let welcome = |t: &TestApp| {
        mails_in(&t.client.outbox, "")
            .into_iter()
            .filter(|m| m.subject == "Welcome to our wellness tips" && m.to == patient.email)
            .count()
    };
    while welcome(&test) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (pause_code, paused, _) = cli(&test, &["journey", "pause", &id]).await;
    let (relaunch_code, _, relaunch_err) = cli(&test, &["journey", "launch", &id]).await;
    let (resume_code, resumed, _) = cli(&test, &["journey", "resume", &id]).await;
    let (report_code, report, _) = cli(&test, &["journey", "report", &id]).await;
    let (_, report_json, _) = cli(&test, &["journey", "report", &id, "--output", "json"]).await;
    let page = test._dir.path().join("journey-report.html");
    let (html_code, _, html_err) = cli(&test, &["journey", "report", &id, "--html", page.to_str().unwrap()]).await;
    let shots = std::env::var("CAREPOST_SHOTS_DIR").map(std::path::PathBuf::from).unwrap_or(test._dir.path().into());
    let seen =
        browser(&["page-check", &format!("file://{}", page.display()), shots.to_str().unwrap(), "journey-report"])
            .await;
    let (show_code, shown, _) = cli(&test, &["journey", "show", &id]).await;
    let (bad_id_code, _, bad_id) = cli(&test, &["journey", "show", "not-an-id"]).await;
    let (unknown_code, _, unknown) = cli(&test, &["journey", "show", &uuid::Uuid::new_v4().to_string()]).await;

    assert_eq!(create_code, 0, "{create_err}");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "create prints the ID: {created}");
    assert_eq!(launch_code, 0);
    assert!(launched.contains("live"), "{launched}");
    assert!(listed.contains(&id) && listed.contains("Welcome series"), "{listed}");
    assert_eq!(welcome(&test), 1, "the timer sent the welcome exactly once");
    assert!(paused.contains("paused") && pause_code == 0, "{paused}");
    assert_ne!(relaunch_code, 0);
    assert!(relaunch_err.contains("the journey is paused, not draft"), "{relaunch_err}");
    assert!(resumed.contains("live") && resume_code == 0, "{resumed}");
    assert_eq!(report_code, 0);
    assert!(report.contains("welcome") && report.contains("wait-3-days"), "{report}");
    let report: Value = serde_json::from_str(&report_json).expect("the JSON report");
    let step = |name: &str| report["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap().clone();
    assert_eq!(report["entered"], 1);
    assert_eq!(step("welcome")["sent"], 1, "{report}");
    assert_eq!(report["active"], 1, "the patient is still in the journey, on to the three-day wait: {report}");
    assert!(!report.to_string().contains(&patient.email), "no PHI in the report");
    assert_eq!(html_code, 0, "{html_err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"step-welcome\"") && html.contains("yes: → <a href=\"#step-tips\">tips</a>"), "{html}");
    assert!(!html.contains("https://") && !html.contains(&patient.email), "self-contained, no PHI");
    assert!(seen["text"].as_str().unwrap().contains("wait-3-days"), "{seen}");
    for width in [1280, 375] {
        assert_eq!(seen[format!("axe_{width}")], serde_json::json!([]), "axe at {width} px: {seen}");
        assert!(
            seen[format!("scroll_width_{width}")].as_u64().unwrap() <= width,
            "no sideways scroll at {width}: {seen}"
        );
    }
    assert_eq!(show_code, 0);
    assert!(shown.contains("send     welcome") && shown.contains("branch   opened-welcome"), "{shown}");
    assert_ne!(bad_id_code, 0);
    assert!(bad_id.contains("'not-an-id' is not a journey ID"), "{bad_id}");
    assert_ne!(unknown_code, 0);
    assert!(unknown.contains("404") || unknown.contains("not found"), "{unknown}");
}

#[tokio::test]
async fn the_stack_refuses_a_looping_definition_and_a_body_that_is_not_a_journey_naming_what_is_wrong() {
    let test = spawn_app().await;
    let looping = r#"{"name": "Loop", "category": "wellness-tips", "entry": {"consent_confirmed": {"topic": "wellness-tips"}},
      "steps": [{"type": "wait", "id": "a", "days": 1, "next": "b"}, {"type": "wait", "id": "b", "days": 1, "next": "a"}]}"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), looping).unwrap();
    let c = &test.client;

    let (loop_code, _, loop_err) = cli(&test, &["journey", "create", file.path().to_str().unwrap()]).await;
    let not_json = c.http.post(format!("{}/v1/journeys", c.base)).bearer_auth(&c.token).body("{\"name\": ").send();
    let not_json = not_json.await.unwrap();
    let status = not_json.status();
    let body: Value = not_json.json().await.unwrap();
    let no_token = c.http.get(format!("{}/v1/journeys", c.base)).send().await.unwrap().status();

    assert_ne!(loop_code, 0);
    assert!(loop_err.contains("loops"), "the loop is named: {loop_err}");
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "definition", "{body}");
    assert!(!body.to_string().contains("{\\\"name"), "the body is not echoed: {body}");
    assert_eq!(no_token, reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_simulates_a_draft_over_the_signed_up_patients_and_nothing_is_sent() {
    let test = spawn_app().await;
    let patients = synthetic::generate(2, 78);
    for patient in &patients {
        test.client.sign_up(patient, &["wellness-tips"]).await;
    }
    let emails: Vec<&str> = patients.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(test.client.confirm(&emails).await, 2);
    let mails_before = mails_in(&test.client.outbox, "").len();
    let file = welcome_series_any_time();
    let (_, created, _) = cli(&test, &["journey", "create", file.path().to_str().unwrap()]).await;
    let id = created.trim().to_owned();

    let (table_code, table, table_err) = cli(&test, &["journey", "simulate", &id, "--days", "10"]).await;
    let (_, json, _) = cli(&test, &["journey", "simulate", &id, "--days", "10", "--output", "json"]).await;
    let (zero_code, _, zero_err) = cli(&test, &["journey", "simulate", &id, "--days", "0"]).await;
    let c = &test.client;
    let too_far = c.http.post(format!("{}/v1/journeys/{id}/simulate", c.base)).bearer_auth(&c.token);
    let too_far = too_far.json(&serde_json::json!({"days": 1000})).send().await.unwrap();
    let too_far_status = too_far.status();
    let too_far_body: Value = too_far.json().await.unwrap();

    assert_eq!(table_code, 0, "{table_err}");
    assert!(table.contains("2 would enter") && table.contains("LINT") && table.contains("welcome"), "{table}");
    let simulated: Value = serde_json::from_str(&json).expect("the JSON simulation");
    let step = |name: &str| simulated["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap().clone();
    assert_eq!(simulated["entered"], 2, "{simulated}");
    assert_eq!(step("welcome")["sent"], 2, "{simulated}");
    assert_eq!(step("welcome")["lint"], "ok");
    assert_eq!(simulated["complete"], true);
    assert_ne!(zero_code, 0);
    assert!(zero_err.contains("--days"), "{zero_err}");
    assert_eq!(too_far_status, 422);
    assert_eq!(too_far_body["field"], "days", "{too_far_body}");
    assert_eq!(mails_in(&test.client.outbox, "").len(), mails_before, "a simulation sends nothing");
    for patient in &patients {
        assert!(!json.contains(&patient.email) && !table.contains(&patient.email), "no PHI in the simulation");
    }
}

#[tokio::test]
async fn a_clinic_system_posts_a_lab_result_event_and_the_patient_gets_the_journeys_notice_once() {
    let test = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("patients.csv");
    let consent_text = dir.path().join("consent.txt");
    std::fs::write(&csv, "external_id,email,consent_categories,consented_at\nmrn-1001,lab.patient@example.org,wellness-tips,2026-01-02\n")
        .unwrap();
    std::fs::write(&consent_text, "I agree to receive wellness tips.").unwrap();
    let journey = dir.path().join("lab.json");
    let notice = r#"{"name": "Lab result", "category": "wellness-tips", "entry": {"event": {"name": "lab_result.available"}},
      "steps": [{"type": "send", "id": "notice", "template": {"subject": "Your result is ready in the portal",
        "html": "<p>Log in to the portal to read it.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
        "text": "Log in to the portal to read it. {{ unsubscribe_url }}"}}]}"#;
    std::fs::write(&journey, notice).unwrap();
    let (import_code, _, import_err) = cli(
        &test,
        &[
            "contacts",
            "import",
            csv.to_str().unwrap(),
            "--consent-source",
            "EHR",
            "--consent-text",
            consent_text.to_str().unwrap(),
            "--rejects",
            dir.path().join("rejects.csv").to_str().unwrap(),
        ],
    )
    .await;
    let (_, created, _) = cli(&test, &["journey", "create", journey.to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let (launch_code, _, _) = cli(&test, &["journey", "launch", &id]).await;
    let c = &test.client;
    let post = |body: Value, token: Option<&str>| {
        let request = c.http.post(format!("{}/v1/events", c.base)).json(&body);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let event = serde_json::json!({"external_id": "mrn-1001", "name": "lab_result.available", "occurred_at": "2026-12-01T10:00:00Z"});

    let first = post(event.clone(), Some(&c.token)).await;
    let retried = post(event, Some(&c.token)).await;
    let unknown =
        post(serde_json::json!({"external_id": "mrn-9999", "name": "lab_result.available"}), Some(&c.token)).await;
    let bad_name = post(serde_json::json!({"external_id": "mrn-1001", "name": "Lab Result!"}), Some(&c.token)).await;
    let extra =
        post(serde_json::json!({"external_id": "mrn-1001", "name": "x", "diagnosis": "flu"}), Some(&c.token)).await;
    let anonymous = post(serde_json::json!({"external_id": "mrn-1001", "name": "lab_result.available"}), None).await;
    let notices = || {
        mails_in(&test.client.outbox, "")
            .into_iter()
            .filter(|m| m.subject == "Your result is ready in the portal" && m.to == "lab.patient@example.org")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while notices() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another timer tick: nothing more goes out.
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(import_code, 0, "{import_err}");
    assert_eq!(launch_code, 0);
    assert_eq!(first, (202, serde_json::json!({"recorded": true, "journeys_entered": 1})));
    assert_eq!(retried.1["journeys_entered"], 0, "a retried event enters nothing again: {retried:?}");
    assert_eq!(unknown.0, 404, "{unknown:?}");
    assert_eq!((bad_name.0, bad_name.1["field"].clone()), (422, Value::from("name")), "{bad_name:?}");
    assert_eq!(extra.0, 400, "no other field (no PHI) is accepted: {extra:?}");
    assert!(!extra.1.to_string().contains("flu"), "the refusal does not echo the body");
    assert_eq!(anonymous.0, 401);
    assert_eq!(notices(), 1, "the timer sent the notice exactly once");
}

/// `carepost contacts import` of a patients CSV (`rows`, with its header)
/// and their prior consent, as an operator runs it: (exit code, stdout, stderr).
async fn import_patients(test: &TestApp, dir: &std::path::Path, rows: &str) -> (i32, String, String) {
    let (csv, consent, rejects) = (dir.join("patients.csv"), dir.join("consent.txt"), dir.join("rejects.csv"));
    std::fs::write(&csv, rows).unwrap();
    std::fs::write(&consent, "I agree to receive wellness tips.").unwrap();
    let [csv, consent, rejects] = [&csv, &consent, &rejects].map(|p| p.to_str().unwrap().to_owned());
    let args =
        ["contacts", "import", &csv, "--consent-source", "EHR", "--consent-text", &consent, "--rejects", &rejects];
    cli(test, &args).await
}

/// The subjects of the mails an address got, sorted (outbox file names do not keep the order sent).
fn subjects(test: &TestApp, to: &str) -> Vec<String> {
    let mut subjects: Vec<String> =
        mails_in(&test.client.outbox, "").into_iter().filter(|m| m.to == to).map(|m| m.subject).collect();
    subjects.sort();
    subjects
}

/// Waits (the stack's timer ticking on its own) until `to` has `n` mails or 30 s pass.
async fn wait_for_mails(test: &TestApp, to: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while subjects(test, to).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The embedded stack on a clock the test moves, its journey timer ticking every 200 ms.
async fn spawn_on_a_clock_the_test_moves() -> (TestApp, std::sync::Arc<ShiftedClock>) {
    let clock = std::sync::Arc::new(ShiftedClock::default());
    let moved = clock.clone();
    let test = spawn_app_with(move |config| {
        config.clock = moved;
        config.journey_tick = Duration::from_millis(200);
    })
    .await;
    (test, clock)
}

#[tokio::test]
async fn a_recall_enters_each_patient_on_their_day_from_the_last_visit_and_a_booking_ends_it_before_the_second_email() {
    let (test, clock) = spawn_on_a_clock_the_test_moves().await;
    let dir = tempfile::tempdir().unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let visited = |days: i64| (today - time::Duration::days(days)).to_string();
    let rows = format!(
        "external_id,email,first_name,last_visit,consent_categories,consented_at\n\
         mrn-2001,recall.books@example.org,Avery,{},wellness-tips,2026-01-02\n\
         mrn-2002,recall.waits@example.org,Jordan,{},wellness-tips,2026-01-02\n\
         mrn-2003,recall.passed@example.org,Riley,{},wellness-tips,2026-01-02\n",
        visited(335),
        visited(335),
        visited(400)
    );
    let definition = dir.path().join("recall.json");
    let send = |id: &str, subject: &str| {
        serde_json::json!({"type": "send", "id": id, "template": {"subject": subject,
            "html": "<p>Book your yearly check-up.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "text": "Book your yearly check-up. {{ unsubscribe_url }}"}})
    };
    let mut first = send("recall", "Time for your yearly check-up");
    first["next"] = "two-weeks".into();
    let recall = serde_json::json!({"name": "Recall", "category": "wellness-tips",
        "entry": {"date": {"attribute": "last_visit", "offset_days": 335}}, "goal": "appointment.booked",
        "steps": [first, {"type": "wait", "id": "two-weeks", "days": 14, "next": "recall-again"},
                  send("recall-again", "Still time to book your check-up")]});
    std::fs::write(&definition, recall.to_string()).unwrap();
    let imported = import_patients(&test, dir.path(), &rows).await;
    let (_, created, _) = cli(&test, &["journey", "create", definition.to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let (launch_code, _, _) = cli(&test, &["journey", "launch", &id]).await;

    wait_for_mails(&test, "recall.books@example.org", 1).await;
    wait_for_mails(&test, "recall.waits@example.org", 1).await;
    let c = &test.client;
    let booked = c
        .http
        .post(format!("{}/v1/events", c.base))
        .bearer_auth(&c.token)
        .json(&serde_json::json!({"external_id": "mrn-2001", "name": "appointment.booked"}))
        .send()
        .await
        .unwrap()
        .status();
    clock.pass(Duration::from_secs(15 * 24 * 3600));
    wait_for_mails(&test, "recall.waits@example.org", 2).await;
    // The send settles a minute on; a few more ticks: nothing else goes out.
    clock.pass(carepost::app::journey_runner::SETTLE_RECHECK + Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, report, _) = cli(&test, &["journey", "report", &id, "--output", "json"]).await;
    let report: Value = serde_json::from_str(&report).unwrap_or(Value::Null);

    assert_eq!(imported.0, 0, "{}", imported.2);
    assert_eq!(launch_code, 0);
    assert_eq!(booked, 202);
    let first_only = ["Time for your yearly check-up"];
    assert_eq!(subjects(&test, "recall.books@example.org"), first_only, "booked: no second email");
    assert_eq!(
        subjects(&test, "recall.waits@example.org"),
        ["Still time to book your check-up", "Time for your yearly check-up"],
        "both, once each"
    );
    assert!(subjects(&test, "recall.passed@example.org").is_empty(), "a day long passed enters nobody");
    assert_eq!(report["entered"], 2, "{report}");
    assert_eq!(report["exited"]["converted"], 1, "{report}");
    assert_eq!(report["exited"]["completed"], 1, "{report}");
}

/// The CLI's report of the journey, as JSON.
async fn report_json(test: &TestApp, id: &str) -> Value {
    let (_, report, _) = cli(test, &["journey", "report", id, "--output", "json"]).await;
    serde_json::from_str(&report).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_random_split_with_a_holdout_keeps_its_shares_over_ten_thousand_patients_entered_by_a_segment() {
    let test = spawn_app_with(|config| config.journey_tick = Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from("external_id,email,last_visit,consent_categories,consented_at\n");
    for i in 0..10_000 {
        rows.push_str(&format!("mrn-{i:05},split.{i:05}@example.org,2026-06-01,wellness-tips,2026-01-02\n"));
    }
    let wait = |id: &str| serde_json::json!({"type": "wait", "id": id, "days": 30});
    let definition = serde_json::json!({"name": "Reminder test", "category": "wellness-tips",
        "entry": {"segment": {"exists": {"attr": "last_visit"}}},
        "steps": [{"type": "split", "id": "split", "arms": [{"percent": 45, "next": "arm-a"},
                    {"percent": 45, "next": "arm-b"}, {"percent": 10, "holdout": true}]},
                  wait("arm-a"), wait("arm-b")]});
    let file = dir.path().join("split.json");
    std::fs::write(&file, definition.to_string()).unwrap();
    let imported = import_patients(&test, dir.path(), &rows).await;
    let (_, created, _) = cli(&test, &["journey", "create", file.to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let (launch_code, _, _) = cli(&test, &["journey", "launch", &id]).await;

    // The timer's entry scan and sweep, on their own, until every patient stands past the split.
    let ways = |report: &Value| -> Vec<u64> {
        let split = report["steps"].as_array().and_then(|s| s.iter().find(|s| s["step"] == "split").cloned());
        let next = split.map(|s| s["next"].clone()).unwrap_or(Value::Null);
        next.as_array().map(|n| n.iter().map(|l| l["contacts"].as_u64().unwrap_or(0)).collect()).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut report = report_json(&test, &id).await;
    while ways(&report).iter().sum::<u64>() < 10_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        report = report_json(&test, &id).await;
    }

    assert_eq!(imported.0, 0, "{}", imported.2);
    assert_eq!(launch_code, 0);
    assert_eq!(report["entered"], 10_000, "{report}");
    let shares = ways(&report);
    assert_eq!(shares.len(), 3, "{report}");
    assert_eq!(shares.iter().sum::<u64>(), 10_000, "every patient took one way: {shares:?}");
    // 3.5 standard deviations of a binomial count either side: 45 % of 10,000 is 4,500 ± 174, 10 % is 1,000 ± 105.
    for arm in &shares[..2] {
        assert!((4_326..=4_674).contains(arm), "an arm of 45 %: {shares:?}");
    }
    assert!((895..=1_105).contains(&shares[2]), "the holdout of 10 %: {shares:?}");
    assert_eq!(report["exited"]["holdout"], shares[2], "the holdout leaves, never mailed: {report}");
    assert!(mails_in(&test.client.outbox, "").is_empty(), "nothing sent: the arms wait");
}

#[tokio::test]
async fn a_simulation_longer_than_one_call_is_finished_by_the_cli_through_its_resume_tokens() {
    // No time budget: each call walks one page of 250 contacts.
    let test = spawn_app_with(|config| config.knobs.dry_run_budget_seconds = 0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from("external_id,email,consent_categories,consented_at\n");
    for i in 0..600 {
        rows.push_str(&format!("mrn-{i:04},sim.{i:04}@example.org,wellness-tips,2026-01-02\n"));
    }
    let imported = import_patients(&test, dir.path(), &rows).await;
    let file = welcome_series_any_time();
    let (_, created, _) = cli(&test, &["journey", "create", file.path().to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let path = format!("{}/v1/journeys/{id}/simulate", test.client.base);
    let first: Value =
        test.client.http.post(&path).bearer_auth(&test.client.token).send().await.unwrap().json().await.unwrap();

    let (code, json, err) = cli(&test, &["journey", "simulate", &id, "--days", "10", "--output", "json"]).await;

    assert_eq!(imported.0, 0, "{}", imported.2);
    assert_eq!(
        (first["complete"].clone(), first["evaluated"].clone()),
        (Value::Bool(false), Value::from(250)),
        "{first}"
    );
    assert!(first["resume"].is_string() && first.get("steps").is_none(), "a token and no figures yet: {first}");
    assert_eq!(code, 0, "{err}");
    let simulated: Value = serde_json::from_str(&json).expect("the JSON simulation");
    assert_eq!((simulated["complete"].clone(), simulated["evaluated"].clone()), (Value::Bool(true), Value::from(600)));
    assert_eq!(simulated["entered"], 600, "{simulated}");
}

#[tokio::test]
async fn the_welcome_series_walks_its_wait_and_branch_on_the_stacks_timer_and_an_unsubscribe_stops_the_next_send() {
    let (test, clock) = spawn_on_a_clock_the_test_moves().await;
    let file = welcome_series_any_time();
    let (_, created, _) = cli(&test, &["journey", "create", file.path().to_str().unwrap()]).await;
    let id = created.trim().to_owned();
    let (launch_code, _, _) = cli(&test, &["journey", "launch", &id]).await;
    let patients = synthetic::generate(2, 78);
    let (stays, leaves) = (&patients[0], &patients[1]);
    for patient in &patients {
        test.client.sign_up(patient, &["wellness-tips"]).await;
    }
    let confirmed = test.client.confirm(&[stays.email.as_str(), leaves.email.as_str()]).await;
    // Each has the sign-up's confirmation request, then the welcome.
    wait_for_mails(&test, &stays.email, 2).await;
    wait_for_mails(&test, &leaves.email, 2).await;
    // The patient who leaves unsubscribes from the welcome, as a mail client's one-click button does.
    let welcome = mails_in(&test.client.outbox, "")
        .into_iter()
        .find(|m| m.to == leaves.email && m.subject.starts_with("Welcome"))
        .unwrap();
    let url = welcome.list_unsubscribe[0].trim_start_matches('<').trim_end_matches('>').to_owned();
    let c = &test.client;
    let unsubscribed = c.http.post(&url).body("List-Unsubscribe=One-Click").send().await.unwrap().status();

    // Three days and a morning pass on the stack's clock; its own timer does the rest.
    clock.pass(Duration::from_secs(4 * 24 * 3600));
    wait_for_mails(&test, &stays.email, 3).await;
    clock.pass(carepost::app::journey_runner::SETTLE_RECHECK + Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut report = report_json(&test, &id).await;
    while report["active"] != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        report = report_json(&test, &id).await;
    }

    assert_eq!(launch_code, 0);
    assert_eq!(confirmed, 2);
    assert_eq!(unsubscribed, 200);
    let journey_mail = |to: &str| -> Vec<String> {
        subjects(&test, to).into_iter().filter(|s| !s.starts_with("Please confirm")).collect()
    };
    assert_eq!(journey_mail(&stays.email), ["In case you missed it", "Welcome to our wellness tips"]);
    assert_eq!(journey_mail(&leaves.email), ["Welcome to our wellness tips"], "unsubscribed: no reminder");
    assert_eq!(report["entered"], 2, "{report}");
    assert_eq!(report["exited"]["completed"], 1, "{report}");
    assert_eq!(report["exited"]["not_sent"], 1, "the patient who unsubscribed left: {report}");
    let branch = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "opened-welcome").unwrap();
    let ways: Vec<(&str, &Value)> =
        branch["next"].as_array().unwrap().iter().map(|l| (l["when"].as_str().unwrap(), &l["contacts"])).collect();
    assert_eq!(ways, [("yes", &serde_json::json!(0)), ("no", &serde_json::json!(2))], "nobody opened: {report}");
}
