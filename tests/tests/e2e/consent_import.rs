//! `carepost contacts import --consent-source …`: prior opt-ins from another
//! system become ledger entries with method `import`, the original date and
//! the source; they reach a campaign, show in the contact's history and the
//! audit log, a repeat grants nothing new and never undoes a withdrawal.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{TestApp, carepost_binary, everyone, spawn_app};

const CSV: &str = "external_id,email,first_name,date_of_birth,consent_categories,consented_at\n\
mrn-1,ana@example.org,Ana,1980-02-03,wellness-tips,2024-03-01\n\
mrn-2,ben@example.org,Ben,1975-06-07,,\n\
mrn-3,cleo@example.org,Cleo,1990-11-12,wellness-tips,2025-01-15T10:30:00Z\n";

async fn import(test: &TestApp, dir: &Path, csv: &str) -> (Option<i32>, String, String) {
    let (file, text, rejects) = (dir.join("contacts.csv"), dir.join("consent.txt"), dir.join("rejected.csv"));
    std::fs::write(&file, csv).unwrap();
    std::fs::write(&text, "I agree to receive wellness tips by email from the clinic.").unwrap();
    let output = tokio::process::Command::new(carepost_binary())
        .args(["contacts", "import"])
        .arg(&file)
        .arg("--rejects")
        .arg(&rejects)
        .args(["--consent-source", "Epic MyChart", "--consent-text"])
        .arg(&text)
        .args(["--url", &test.client.base, "--token", &test.client.token])
        .output()
        .await
        .expect("the carepost binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr) + &std::fs::read_to_string(&rejects).unwrap())
}

async fn imports_in_audit(test: &TestApp) -> Vec<String> {
    let (_, page) = test.client.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["action"] == "consent.import")
        .map(|e| e["event"]["contact_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn history(test: &TestApp, contact: &str) -> Vec<Value> {
    let (_, body) = test.client.admin(Method::GET, &format!("/v1/contacts/{contact}/consent"), None).await;
    assert_eq!(body["chain_verified"], true, "{body}");
    body["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn imported_opt_ins_reach_a_campaign_are_marked_as_imported_and_a_repeat_never_undoes_a_withdrawal() {
    let test = spawn_app().await;
    let dir = test._dir.path();

    let (code, stdout, stderr) = import(&test, dir, CSV).await;
    let (_, first) = test.client.run_campaign("wellness-tips", everyone()).await;
    let imported = imports_in_audit(&test).await;

    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("prior consent: 2 contacts granted topics, 0 unchanged, 0 refused"), "{stdout}");
    assert_eq!(first["sent"], 2, "the two imported opt-ins are reached, the contact without one is not: {first}");
    assert_eq!(imported.len(), 2, "one audit entry per contact granted");
    let entries = history(&test, &imported[0]).await;
    let grant = entries.iter().find(|e| e["method"] == "import").expect("an imported grant");
    assert_eq!(grant["kind"], "granted");
    assert_eq!(grant["categories"], json!(["wellness-tips"]));
    assert_eq!(grant["imported_from"]["source_system"], "Epic MyChart");
    assert!(grant["consent_text_sha256"].as_str().is_some_and(|h| h.len() == 64), "{grant}");
    let mut dates = Vec::new();
    for contact in &imported {
        let entries = history(&test, contact).await;
        dates.extend(entries.iter().filter_map(|e| e["imported_from"]["consented_at"].as_str().map(str::to_owned)));
    }
    dates.sort();
    assert_eq!(dates, ["2024-03-01T00:00:00Z", "2025-01-15T10:30:00Z"], "the original dates are kept");

    // The patient withdraws in Carepost; the same file imported again must not re-grant.
    let withdrawn = &imported[0];
    let path = format!("/v1/contacts/{withdrawn}/consent/withdraw");
    let (status, body) = test.client.admin(Method::POST, &path, Some(json!({"all": true}))).await;
    assert!(status.is_success(), "{body}");
    let (code, stdout, stderr) = import(&test, dir, CSV).await;
    let (_, second) = test.client.run_campaign("wellness-tips", everyone()).await;

    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("prior consent: 0 contacts granted topics, 2 unchanged, 0 refused"), "{stdout}");
    assert_eq!(imports_in_audit(&test).await.len(), 2, "the repeat recorded nothing");
    assert_eq!(history(&test, withdrawn).await.last().unwrap()["kind"], "withdrawn");
    assert_eq!(second["sent"], 1, "the withdrawn patient is not reached again: {second}");
}

#[tokio::test]
async fn a_consent_row_with_a_bad_date_is_rejected_by_row_and_field_and_the_import_exits_2() {
    let test = spawn_app().await;
    let csv = "external_id,email,consent_categories,consented_at\nmrn-9,dee@example.org,wellness-tips,last spring\n";

    let (code, stdout, report) = import(&test, test._dir.path(), csv).await;

    assert_eq!(code, Some(2), "{stdout}{report}");
    assert!(report.contains("2,consented_at,must be a date"), "{report}");
    assert!(!report.contains("last spring"), "the value is never echoed: {report}");
    assert!(imports_in_audit(&test).await.is_empty());
}
