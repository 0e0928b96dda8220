//! Minimum-necessary views and the batch upsert: lists carry IDs only; PHI
//! comes from a single-contact read that states its reason and is audited;
//! a batch of up to 500 gets a result per item.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::spawn_app;

fn item(i: usize) -> Value {
    json!({"external_id": format!("mrn-{i:04}"), "email": format!("patient{i}@example.org"),
           "attributes": {"first_name": format!("Name{i}"), "date_of_birth": "1970-01-01", "conditions": ["asthma"]}})
}

#[tokio::test]
async fn a_batch_of_five_hundred_gets_a_result_per_item_and_repeats_update() {
    let test = spawn_app().await;
    let client = &test.client;
    let mut contacts: Vec<Value> = (0..500).map(item).collect();
    contacts[7]["email"] = json!("not an address");
    contacts[9]["attributes"]["date_of_birth"] = json!("31/12/1970");
    contacts[11]["external_id"] = json!("");

    let (status, body) = client.admin(Method::POST, "/v1/contacts:batch", Some(json!({"contacts": contacts}))).await;
    let (again, second) = client.admin(Method::POST, "/v1/contacts:batch", Some(json!({"contacts": [item(0)]}))).await;
    let too_many: Vec<Value> = (0..501).map(item).collect();
    let (refused, refusal) =
        client.admin(Method::POST, "/v1/contacts:batch", Some(json!({"contacts": too_many}))).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    let rejected: Vec<(u64, &str)> = results
        .iter()
        .filter(|r| r["status"] == "rejected")
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, vec![(7, "email"), (9, "date_of_birth"), (11, "external_id")]);
    assert_eq!(results.iter().filter(|r| r["status"] == "created").count(), 497);
    assert!(
        !body.to_string().contains("31/12/1970") && !body.to_string().contains("not an address"),
        "no value echoed"
    );
    assert_eq!((again, second["results"][0]["status"].as_str()), (StatusCode::OK, Some("updated")));
    assert_eq!(second["results"][0]["contact_id"], results[0]["contact_id"], "idempotent by external ID");
    assert_eq!((refused, refusal["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("contacts")));
}

#[tokio::test]
async fn lists_carry_no_phi_and_a_single_read_needs_a_reason_and_is_audited() {
    let test = spawn_app().await;
    let client = &test.client;
    client
        .admin(Method::POST, "/v1/contacts:batch", Some(json!({"contacts": (0..3).map(item).collect::<Vec<_>>()})))
        .await;

    let (_, page) = client.admin(Method::GET, "/v1/contacts?limit=2", None).await;
    let (_, rest) = client
        .admin(Method::GET, &format!("/v1/contacts?limit=2&after={}", page["next"].as_str().unwrap()), None)
        .await;
    let id = page["contacts"][0]["contact_id"].as_str().unwrap().to_owned();
    let (no_reason, refusal) = client.admin(Method::GET, &format!("/v1/contacts/{id}"), None).await;
    let (read, contact) =
        client.admin(Method::GET, &format!("/v1/contacts/{id}?reason=callback%20request%2042"), None).await;

    assert_eq!(page["contacts"].as_array().unwrap().len() + rest["contacts"].as_array().unwrap().len(), 3);
    let listed = format!("{page}{rest}");
    assert!(!listed.contains("example.org") && !listed.contains("Name") && !listed.contains("mrn-"), "{listed}");
    assert_eq!((no_reason, refusal["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")));
    assert_eq!(read, StatusCode::OK);
    assert!(contact["email"].as_str().unwrap().ends_with("@example.org"));
    assert_eq!(contact["attributes"]["conditions"], json!(["asthma"]));
    let (_, audit) = client.admin(Method::GET, "/v1/audit", None).await;
    let reads: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["event"]["action"] == "contact.read").collect();
    assert_eq!(reads.len(), 1, "the refused read was not performed, the other was recorded");
    assert_eq!(reads[0]["event"]["contact_id"], id.as_str());
    assert_eq!(reads[0]["event"]["reason"], "callback request 42");
}
