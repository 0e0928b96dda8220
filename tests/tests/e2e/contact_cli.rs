//! An operator works on one contact with the `carepost` CLI, naming it by
//! the external ID it was imported with: reads it (with a reason, audited),
//! reads its consent ledger, withdraws a topic and erases it.

use carepost::synthetic;
use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{cli, consent_statuses, spawn_app};

#[tokio::test]
async fn an_operator_reads_a_contact_by_external_id_sees_its_consent_withdraws_a_topic_and_erases_it() {
    let test = spawn_app().await;
    let c = &test.client;
    let patient = &synthetic::generate(1, 61)[0];
    let body = json!({"email": patient.email, "attributes": {"first_name": patient.first_name}});
    let (status, created) = c.admin(Method::PUT, "/v1/contacts/ehr-61", Some(body)).await;
    assert!(status.is_success(), "{created}");
    let contact: carepost::domain::ContactId = serde_json::from_value(created["contact_id"].clone()).unwrap();
    c.sign_up(patient, &["wellness-tips", "appointment-reminders"]).await;
    assert_eq!(c.confirm(&[patient.email.as_str()]).await, 1);

    let (read_code, read, _) =
        cli(&test, &["contacts", "get", "ehr-61", "--reason", "patient called about mail"]).await;
    let (no_reason_code, _, no_reason) = cli(&test, &["contacts", "get", "ehr-61"]).await;
    let (ledger_code, ledger, _) = cli(&test, &["contacts", "consent", "ehr-61"]).await;
    let (withdraw_code, withdrew, _) =
        cli(&test, &["contacts", "withdraw", "ehr-61", "--topic", "wellness-tips"]).await;
    let after_withdrawal = consent_statuses(&test.stack.app, &contact).await;
    let text = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(text.path(), "I authorize the clinic to use my health information for marketing.").unwrap();
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::days(365)).date().to_string();
    let authorize =
        ["contacts", "authorize", "ehr-61", "--expires", expires.as_str(), "--text", text.path().to_str().unwrap()];
    let (authorize_code, authorized, _) = cli(&test, &authorize).await;
    let hipaa = carepost::domain::ConsentCategory::hipaa_authorization().to_string();
    let status_of = |statuses: Vec<(String, carepost::domain::ConsentStatus)>| {
        statuses.into_iter().find(|(c, _)| *c == hipaa).map(|(_, s)| s)
    };
    let while_authorized = status_of(consent_statuses(&test.stack.app, &contact).await);
    let (revoke_code, _, _) = cli(&test, &["contacts", "revoke-authorization", "ehr-61"]).await;
    let after_revocation = status_of(consent_statuses(&test.stack.app, &contact).await);
    let (erase_code, erased, _) = cli(&test, &["contacts", "erase", "ehr-61"]).await;
    let (gone_code, _, gone) = cli(&test, &["contacts", "get", "ehr-61", "--reason", "check the erasure"]).await;

    assert_eq!(read_code, 0);
    assert!(read.contains(&patient.email) && read.contains(&patient.first_name), "{read}");
    assert!(read.contains(&contact.to_string()), "the contact ID is shown: {read}");
    assert_ne!(no_reason_code, 0, "a read needs a reason");
    assert!(no_reason.contains("--reason"), "{no_reason}");
    assert_eq!(ledger_code, 0);
    assert!(ledger.contains("requested") && ledger.contains("granted"), "{ledger}");
    assert!(ledger.contains("chain verified: yes"), "{ledger}");
    assert!(!ledger.contains(&patient.email), "the ledger shows no PHI: {ledger}");
    assert_eq!(withdraw_code, 0);
    assert!(withdrew.contains("withdrawn wellness-tips"), "{withdrew}");
    assert_eq!(
        after_withdrawal,
        vec![
            ("appointment-reminders".into(), carepost::domain::ConsentStatus::Active),
            ("wellness-tips".into(), carepost::domain::ConsentStatus::Withdrawn)
        ]
    );
    assert_eq!((authorize_code, revoke_code), (0, 0), "{authorized}");
    assert!(authorized.contains("authorization recorded"), "{authorized}");
    assert_eq!(while_authorized, Some(carepost::domain::ConsentStatus::Active));
    assert_eq!(after_revocation, Some(carepost::domain::ConsentStatus::Withdrawn));
    assert_eq!(erase_code, 0);
    assert!(erased.contains("erased"), "{erased}");
    assert_ne!(gone_code, 0);
    assert!(gone.contains("not found"), "{gone}");
    let (_, audit) = c.admin(Method::GET, "/v1/audit", None).await;
    let reads: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["action"] == "contact.read" && e["event"]["reason"] == "patient called about mail")
        .collect();
    assert_eq!(reads.len(), 1, "the read is audited with its reason: {audit}");
}
