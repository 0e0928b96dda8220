//! The PHI-access audit log on the embedded stack: an update that decrypts
//! a contact, each fan-out page and each send batch are recorded (IDs and
//! attribute names only); `carepost audit verify` and `export` read it
//! through the admin API, and an edited entry is detected.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{carepost_binary, everyone, spawn_app};

async fn carepost(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(carepost_binary()).args(args).output().await.expect("the carepost binary runs")
}

#[tokio::test]
async fn decryptions_are_audited_and_the_cli_verifies_exports_and_detects_an_edit() {
    let test = spawn_app().await;
    let client = &test.client;
    let patients = carepost::synthetic::generate(4, 77);
    for p in &patients {
        assert_eq!(client.sign_up(p, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    let emails: Vec<&str> = patients.iter().map(|p| p.email.as_str()).collect();
    client.confirm(&emails).await;
    let upsert = json!({"email": "records@example.org", "attributes": {"first_name": "Rae", "zip": "02139"}});
    let (created, body) = client.admin(Method::PUT, "/v1/contacts/ehr-42", Some(upsert.clone())).await;
    let (updated, _) = client.admin(Method::PUT, "/v1/contacts/ehr-42", Some(upsert)).await;
    assert_eq!((created, updated), (StatusCode::CREATED, StatusCode::OK));
    let updated_contact = body["contact_id"].as_str().unwrap().to_owned();
    let (_, report) = client.run_campaign("wellness-tips", everyone()).await;

    let (_, page) = client.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    let entries = page["entries"].as_array().unwrap().clone();
    let events: Vec<&Value> = entries.iter().map(|e| &e["event"]).collect();
    let of = |action: &str| events.iter().filter(|e| e["action"] == action).copied().collect::<Vec<_>>();
    let update = of("contact.update");
    assert_eq!(update.len(), 1, "only the second upsert decrypted the stored contact");
    assert_eq!(
        (update[0]["actor"].as_str(), update[0]["contact_id"].as_str()),
        (Some("local-admin"), Some(updated_contact.as_str()))
    );
    assert!(!of("fanout.page").is_empty());
    assert!(
        of("fanout.page")
            .iter()
            .all(|e| e["actor"] == "carepost:fanout" && e["attributes"] == json!(["date_of_birth"]))
    );
    let rendered: u64 = of("send.batch")
        .iter()
        .map(|e| {
            e["reason"].as_str().unwrap().split(": ").nth(1).unwrap().split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(rendered, report["sent"].as_u64().unwrap(), "one entry per batch, covering every message rendered");

    let base = client.base.as_str();
    let token = client.token.as_str();
    let verified = carepost(&["audit", "verify", "--url", base, "--token", token]).await;
    let export = test._dir.path().join("audit.jsonl");
    let exported =
        carepost(&["audit", "export", "--url", base, "--token", token, "--out", export.to_str().unwrap()]).await;

    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains(&format!("audit log verified: {} entries", entries.len()))
    );
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), entries.len());
    for p in &patients {
        for phi in [&p.email, &p.first_name, &p.last_name, &p.date_of_birth] {
            assert!(!lines.contains(phi.as_str()), "the audit log holds no PHI");
        }
    }
    assert!(!lines.contains("records@example.org") && !lines.contains("Rae"));

    // Someone with database access hides that the record was read.
    let db = rusqlite::Connection::open(&test.stack.db_path).unwrap();
    let seq: i64 =
        db.query_row("SELECT seq FROM audit_log WHERE entry LIKE '%contact.update%'", [], |r| r.get(0)).unwrap();
    db.execute("UPDATE audit_log SET entry = replace(entry, 'local-admin', 'nobody') WHERE seq = ?1", [seq]).unwrap();
    let tampered = carepost(&["audit", "verify", "--url", base, "--token", token]).await;

    assert!(!tampered.status.success());
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains(&format!("entry {seq} was edited")),
        "{}",
        String::from_utf8_lossy(&tampered.stderr)
    );
}
