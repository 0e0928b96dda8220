//! Customer-key rotation on the embedded stack: `carepost keys rotate` adds
//! a key version, re-seals every contact under it through the admin API
//! while the stack serves, leaves unreadable records alone and names them,
//! and a record sealed before the rotation still opens.

use std::os::unix::fs::PermissionsExt;

use carepost::crypto::envelope::wrapped_key_of;
use carepost::domain::ContactId;
use carepost::ports::ShardSpec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{TestApp, carepost_binary, spawn_app};

const CONTACTS: usize = 1_200;

async fn seed(test: &TestApp) {
    for chunk in (0..CONTACTS).collect::<Vec<_>>().chunks(400) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|n| {
                json!({
                    "external_id": format!("ehr-{n}"),
                    "email": format!("patient{n}@example.org"),
                    "attributes": {"first_name": format!("Pat{n}"), "zip": "02139", "conditions": ["asthma"]}
                })
            })
            .collect();
        let (status, _) = test.client.admin(Method::POST, "/v1/contacts:batch", Some(json!({"contacts": items}))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

async fn every_contact(test: &TestApp) -> Vec<carepost::ports::ContactRecord> {
    let store = &test.stack.app.ports.contacts;
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page = store.scan_shard(ShardSpec { index: 0, total: 1 }, cursor.as_deref(), 1000).await.unwrap();
        out.extend(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

async fn read(test: &TestApp, id: &ContactId) -> (StatusCode, Value) {
    test.client.admin(Method::GET, &format!("/v1/contacts/{id}?reason=rotation%20check"), None).await
}

async fn rotate(test: &TestApp) -> std::process::Output {
    let args = ["keys", "rotate", "--url", &test.client.base, "--token", &test.client.token, "--page-size", "250"];
    tokio::process::Command::new(carepost_binary()).args(args).output().await.expect("the carepost binary runs")
}

#[tokio::test]
async fn keys_rotate_reseals_every_contact_under_the_new_key_and_old_records_still_open() {
    let test = spawn_app().await;
    seed(&test).await;
    let before = every_contact(&test).await;
    assert_eq!(before.len(), CONTACTS);
    assert!(before.iter().all(|r| wrapped_key_of(&r.sealed).unwrap().starts_with(b"KF1")));
    let sample = before[17].clone();
    let (_, sample_view) = read(&test, &sample.id).await;
    // One record made unreadable: the rotation must name it and leave it be.
    let broken = before[400].clone();
    let mut corrupt = broken.sealed.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    assert!(test.stack.app.ports.contacts.replace_sealed(&broken.id, &broken.sealed, &corrupt).await.unwrap());

    let output = rotate(&test).await;

    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "an unreadable contact fails the run: {stdout} {stderr}");
    assert!(stdout.contains(&format!("re-sealed {} contacts", CONTACTS - 1)), "{stdout}");
    assert!(stderr.contains(&broken.id.to_string()) && stderr.contains("1 contacts could not be opened"), "{stderr}");
    let after = every_contact(&test).await;
    for record in &after {
        let wrapped = wrapped_key_of(&record.sealed);
        if record.id == broken.id {
            assert_eq!(record.sealed, corrupt, "the unreadable record is left as it was");
        } else {
            assert_eq!(&wrapped.unwrap()[..7], b"KF2\0\0\0\x02", "{} is under key version 2", record.id);
        }
    }
    let unchanged: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b.updated_at != a.updated_at).collect();
    assert!(unchanged.is_empty(), "re-sealing is not an update");
    let (status, view) = read(&test, &sample.id).await;
    assert_eq!((status, &view), (StatusCode::OK, &sample_view), "the same attributes after re-sealing");

    // A record sealed before the rotation (a restored backup) still opens.
    let current = test.stack.app.ports.contacts.get(&sample.id).await.unwrap().unwrap();
    assert!(test.stack.app.ports.contacts.replace_sealed(&sample.id, &current.sealed, &sample.sealed).await.unwrap());
    let (status, view) = read(&test, &sample.id).await;
    assert_eq!((status, &view), (StatusCode::OK, &sample_view));

    let key_v2 = test.stack.key_provider.path().with_file_name("master.key.v2");
    assert_eq!(std::fs::metadata(&key_v2).unwrap().permissions().mode() & 0o777, 0o600);
    let (_, audit) = test.client.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().filter_map(|e| e["event"]["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "keys.rotate").count(), 1);
    assert_eq!(actions.iter().filter(|a| **a == "contacts.reseal").count(), CONTACTS.div_ceil(250));
}

#[tokio::test]
async fn an_interrupted_reseal_resumes_from_its_cursor_without_a_new_rotation() {
    let test = spawn_app().await;
    seed(&test).await;
    let (status, rotation) = test.client.admin(Method::POST, "/v1/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    let rotated_at = rotation["rotated_at"].as_str().unwrap();
    let first = json!({"rotated_at": rotated_at, "limit": 500});
    let (_, page) = test.client.admin(Method::POST, "/v1/keys/reseal", Some(first)).await;
    assert_eq!((page["scanned"].as_u64(), page["resealed"].as_u64()), (Some(500), Some(500)));
    let cursor = page["next"].as_str().unwrap().to_owned();

    let args = [
        "keys",
        "rotate",
        "--url",
        &test.client.base,
        "--token",
        &test.client.token,
        "--resume",
        &cursor,
        "--rotated-at",
        rotated_at,
    ];
    let output = tokio::process::Command::new(carepost_binary()).args(args).output().await.unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("re-sealed {} contacts", CONTACTS - 500)), "{stdout}");
    assert!(!stdout.contains("rotated:"), "resuming does not rotate again");
    assert_eq!(test.stack.key_provider.current_version(), 2);
    assert!(every_contact(&test).await.iter().all(|r| wrapped_key_of(&r.sealed).unwrap().starts_with(b"KF2")));
    let future = json!({"rotated_at": "2999-01-01T00:00:00Z"});
    let (status, body) = test.client.admin(Method::POST, "/v1/keys/reseal", Some(future)).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("rotated_at")));
}
