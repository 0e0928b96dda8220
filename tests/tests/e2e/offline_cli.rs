//! `carepost schema validate` and `carepost forms validate` check files
//! with the stack's own parsers, without a stack, and `schema show` reads a
//! running stack's schema.

use super::helpers::{carepost_binary, spawn_app};

async fn cli(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(carepost_binary()).args(args).output().await.expect("the CLI runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

fn repo_file(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_shipped_examples_validate_and_broken_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad_schema = dir.path().join("schema.json");
    std::fs::write(&bad_schema, r#"{"attributes": [{"name": "first_name", "class": "secret"}]}"#).unwrap();
    let narrow_schema = dir.path().join("narrow.json");
    std::fs::write(&narrow_schema, r#"{"attributes": [{"name": "first_name", "class": "identifier"}]}"#).unwrap();
    let (schema, forms) = (repo_file("docs/schema.example.json"), repo_file("docs/forms.example.json"));

    let (good_schema_code, good_schema) = cli(&["schema", "validate", &schema]).await;
    let (bad_schema_code, bad) = cli(&["schema", "validate", bad_schema.to_str().unwrap()]).await;
    let (good_forms_code, good_forms) = cli(&["forms", "validate", &forms, "--schema", &schema]).await;
    let (narrow_code, narrow) = cli(&["forms", "validate", &forms, "--schema", narrow_schema.to_str().unwrap()]).await;

    assert_eq!(good_schema_code, 0, "{good_schema}");
    assert!(good_schema.contains("a valid contact schema"), "{good_schema}");
    assert_ne!(bad_schema_code, 0);
    assert!(bad.contains("not a valid contact schema"), "{bad}");
    assert_eq!(good_forms_code, 0, "{good_forms}");
    assert!(good_forms.contains("valid ("), "{good_forms}");
    assert_ne!(narrow_code, 0, "a form field outside the schema is refused: {narrow}");
    assert!(narrow.contains("does not hold"), "{narrow}");
}

#[tokio::test]
async fn schema_show_lists_the_stacks_attributes_with_their_class() {
    let test = spawn_app().await;
    let c = &test.client;

    let (code, shown) = cli(&["schema", "show", "--url", &c.base, "--token", &c.token]).await;

    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("ATTRIBUTE") && shown.contains("date_of_birth") && shown.contains("identifier"), "{shown}");
}

#[tokio::test]
async fn campaign_validate_runs_creates_checks_offline_and_names_the_field_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let good = super::sigv4_cli::write_campaign_files(dir.path());
    let text = std::fs::read_to_string(&good).unwrap();
    let unknown_topic = dir.path().join("unknown-topic.toml");
    std::fs::write(&unknown_topic, text.replace("wellness-tips", "lab-results")).unwrap();
    let no_purpose = dir.path().join("no-purpose.toml");
    let without_purpose: Vec<&str> = text.lines().filter(|l| !l.starts_with("purpose")).collect();
    std::fs::write(&no_purpose, without_purpose.join("\n")).unwrap();

    let (good_code, ok) = cli(&["campaign", "validate", good.to_str().unwrap()]).await;
    let (topic_code, topic) = cli(&["campaign", "validate", unknown_topic.to_str().unwrap()]).await;
    let (purpose_code, purpose) = cli(&["campaign", "validate", no_purpose.to_str().unwrap()]).await;

    assert_eq!(good_code, 0, "{ok}");
    assert!(ok.contains("valid campaign 'Flu shots 2026'"), "{ok}");
    assert_ne!(topic_code, 0);
    assert!(topic.contains("category"), "{topic}");
    assert_ne!(purpose_code, 0, "a PHI-personalized campaign needs a purpose: {purpose}");
    assert!(purpose.contains("purpose"), "{purpose}");
}

#[tokio::test]
async fn campaign_preview_writes_the_rendered_html_and_fails_on_what_create_would_refuse() {
    let test = spawn_app().await;
    let c = &test.client;
    let dir = tempfile::tempdir().unwrap();
    let good = super::sigv4_cli::write_campaign_files(dir.path());
    let marketing = dir.path().join("marketing.toml");
    std::fs::write(&marketing, std::fs::read_to_string(&good).unwrap().replace("\"treatment\"", "\"marketing\""))
        .unwrap();
    let (out, refused_out) = (dir.path().join("p.html"), dir.path().join("m.html"));
    let connection = ["--url", c.base.as_str(), "--token", c.token.as_str()];
    let preview = |file: &std::path::Path, out: &std::path::Path| {
        let mut args = vec!["campaign".to_owned(), "preview".into(), file.display().to_string()];
        args.extend(["--out".into(), out.display().to_string()]);
        args.extend(connection.iter().map(|a| (*a).to_owned()));
        args
    };

    let good_args = preview(&good, &out);
    let (code, shown) = cli(&good_args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let marketing_args = preview(&marketing, &refused_out);
    let (refused_code, refused) = cli(&marketing_args.iter().map(String::as_str).collect::<Vec<_>>()).await;

    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Subject: Your flu shot is due"), "{shown}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("Book your flu shot") && html.to_ascii_lowercase().contains("<!doctype html>"), "{html}");
    assert_ne!(refused_code, 0, "marketing mail without an unsubscribe link or postal address: {refused}");
    assert!(refused.contains("would refuse"), "{refused}");
}

#[tokio::test]
async fn the_demo_refuses_an_smtp_relay_before_it_starts_anything() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("demo-data");

    let (code, output) = cli(&["demo", "--data-dir", data.to_str().unwrap(), "--smtp-host", "127.0.0.1"]).await;

    assert_ne!(code, 0, "{output}");
    assert!(output.contains("cannot use --smtp-host"), "{output}");
    assert!(!data.exists(), "nothing was started or written");
}

#[tokio::test]
async fn journey_validate_accepts_the_shipped_example_and_names_the_loop_and_the_linted_step_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let example = repo_file("docs/journeys.example.json");
    let mut looping: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    looping["steps"][4]["next"] = serde_json::json!("wait-3-days");
    let looping_file = dir.path().join("looping.json");
    std::fs::write(&looping_file, looping.to_string()).unwrap();
    let mut phi_subject = looping.clone();
    phi_subject["steps"][4].as_object_mut().unwrap().remove("next");
    phi_subject["steps"][3]["template"]["subject"] = serde_json::json!("About your {{ conditions }}");
    let phi_file = dir.path().join("phi-subject.json");
    std::fs::write(&phi_file, phi_subject.to_string()).unwrap();

    let (good_code, good) = cli(&["journey", "validate", &example]).await;
    let (loop_code, refused) = cli(&["journey", "validate", looping_file.to_str().unwrap()]).await;
    let (phi_code, linted) = cli(&["journey", "validate", phi_file.to_str().unwrap()]).await;

    assert_eq!(good_code, 0, "{good}");
    assert!(good.contains("a valid journey (5 steps: 3 send, 1 wait, 1 branch, 0 split"), "{good}");
    assert_eq!(loop_code, 1, "{refused}");
    assert!(
        refused.contains(
            "is not a valid journey: the journey loops: wait-3-days -> opened-welcome -> reminder -> wait-3-days"
        ),
        "{refused}"
    );
    assert_eq!(phi_code, 1, "{linted}");
    assert!(
        linted.contains("is not a valid journey: step 'tips': template.subject"),
        "a send step is linted: {linted}"
    );
}
