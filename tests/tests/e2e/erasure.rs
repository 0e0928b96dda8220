//! Erasure: `DELETE /v1/contacts/{id}` removes the PHI from every table
//! (checked byte by byte in the SQLite file), keeps the consent evidence
//! with a tombstone, keeps the address suppressed and is audited.

use carepost::domain::{ConsentEntryKind, EmailAddress, verify_chain};
use carepost::ports::SuppressionReason;
use reqwest::{Method, StatusCode};

use super::helpers::{everyone, spawn_app};

#[tokio::test]
async fn erasure_leaves_no_phi_in_any_table_keeps_the_evidence_and_the_suppression() {
    let test = spawn_app().await;
    let (app, client) = (&test.stack.app, &test.client);
    let patient = &carepost::synthetic::generate(1, 5150)[0];
    assert_eq!(client.sign_up(patient, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    client.confirm(&[patient.email.as_str()]).await;
    let index = app.keyring.blind_index.index(&EmailAddress::parse(&patient.email).unwrap());
    let stored = app.ports.contacts.find_by_email_index(&index).await.unwrap().unwrap();
    let contact = stored.id;
    // The sealed attributes: plaintext PHI is never stored, so erasure must remove this.
    let ciphertext = stored.sealed[stored.sealed.len() / 2..][..48].to_vec();
    let (_, report) = client.run_campaign("wellness-tips", everyone()).await;
    assert_eq!(report["sent"], 1);

    assert!(file_contains(&test, &ciphertext).await, "before erasure the sealed attributes are in the file");

    let (status, body) = client.admin(Method::DELETE, &format!("/v1/contacts/{contact}"), None).await;
    let (again, _) = client.admin(Method::DELETE, &format!("/v1/contacts/{contact}"), None).await;

    assert_eq!((status, body["erased"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(again, StatusCode::NOT_FOUND);
    assert_eq!(app.ports.contacts.get(&contact).await.unwrap(), None);
    assert_eq!(app.ports.suppression.reason(&index).await.unwrap(), Some(SuppressionReason::Erased));
    let history = app.ports.consent.history(&contact).await.unwrap();
    assert_eq!(history.last().unwrap().evidence.kind, ConsentEntryKind::Erased, "a tombstone");
    assert!(history.iter().any(|e| e.evidence.kind == ConsentEntryKind::Granted), "the evidence stays");
    assert_eq!(verify_chain(&history), Ok(()));
    let (_, audit) = client.admin(Method::GET, "/v1/audit", None).await;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["event"]["action"] == "contact.erase"));

    let bytes = database_bytes(&test).await;
    let text = String::from_utf8_lossy(&bytes);
    for phi in [&patient.email, &patient.first_name, &patient.last_name, &patient.date_of_birth] {
        assert!(!text.contains(phi.as_str()), "{phi} is in the database file");
    }
    assert!(
        !file_contains(&test, &ciphertext).await,
        "the sealed attributes are gone from the file, not just unlinked (secure_delete)"
    );
    // A new campaign finds no one to send to.
    let (_, next) = client.run_campaign("wellness-tips", everyone()).await;
    assert_eq!(next["audience"], 0);
}

/// The database file and its write-ahead log, after a checkpoint.
async fn database_bytes(test: &super::helpers::TestApp) -> Vec<u8> {
    test.stack.db.checkpoint().await.unwrap();
    let mut bytes = std::fs::read(&test.stack.db_path).unwrap();
    if let Ok(wal) = std::fs::read(test.stack.db_path.with_extension("sqlite3-wal")) {
        bytes.extend(wal);
    }
    bytes
}

async fn file_contains(test: &super::helpers::TestApp, needle: &[u8]) -> bool {
    database_bytes(test).await.windows(needle.len()).any(|w| w == needle)
}
