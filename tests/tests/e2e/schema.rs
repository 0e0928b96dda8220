//! The contact schema on the embedded stack: attributes outside it are
//! refused by name, custom attributes are sealed under their code, read back
//! and select audiences, list views show only non-identifying attributes,
//! and a configured form asking for an attribute the schema lacks stops the
//! stack at start.

use carepost::domain::ContactSchema;
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{TestApp, spawn_app_with};

/// The built-in attributes the signup form sends (sex classed PHI here) but
/// not medications, journey stage or last visit, and two of the deployment's own.
fn clinic_schema() -> ContactSchema {
    ContactSchema::parse(
        &json!({"attributes": [
            {"name": "first_name", "class": "identifier"},
            {"name": "last_name", "class": "identifier"},
            {"name": "date_of_birth", "class": "identifier"},
            {"name": "sex", "class": "phi"},
            {"name": "zip", "class": "identifier"},
            {"name": "language", "class": "non_identifying"},
            {"name": "conditions", "class": "phi"},
            {"name": "insurance_type", "type": "code", "class": "non_identifying", "code": 16},
            {"name": "vaccinations", "type": "code_list", "class": "phi", "code": 17}
        ]})
        .to_string(),
    )
    .unwrap()
}

async fn upsert(test: &TestApp, external_id: &str, attributes: Value) -> (StatusCode, Value) {
    let body = json!({"email": format!("{external_id}@example.org"), "attributes": attributes});
    test.client.admin(Method::PUT, &format!("/v1/contacts/{external_id}"), Some(body)).await
}

#[tokio::test]
async fn attributes_outside_the_schema_are_refused_by_name_without_their_value() {
    let test = spawn_app_with(|c| c.knobs.schema = Some(clinic_schema())).await;

    let (dropped, dropped_body) = upsert(&test, "ehr-1", json!({"medications": ["metformin"]})).await;
    let (unknown, unknown_body) = upsert(&test, "ehr-1", json!({"ssn": "123-45-6789"})).await;
    let (mistyped, mistyped_body) = upsert(&test, "ehr-1", json!({"vaccinations": "flu"})).await;

    assert_eq!((dropped, dropped_body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("medications")));
    assert_eq!((unknown, unknown_body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("ssn")));
    assert_eq!((mistyped, mistyped_body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("vaccinations")));
    assert!(unknown_body["message"].as_str().unwrap().contains("not an attribute of the contact schema"));
    assert!(!unknown_body.to_string().contains("123-45"), "the value is never echoed");
    assert!(test.stack.app.contacts.list("test", None, 10).await.unwrap().contacts.is_empty(), "nothing stored");
}

#[tokio::test]
async fn custom_attributes_are_sealed_read_back_listed_by_class_and_select_an_audience() {
    let test = spawn_app_with(|c| c.knobs.schema = Some(clinic_schema())).await;
    let client = &test.client;
    let patients = carepost::synthetic::generate(6, 31);
    for p in &patients {
        assert_eq!(client.sign_up(p, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    client.confirm(&patients.iter().map(|p| p.email.as_str()).collect::<Vec<_>>()).await;
    // The EHR adopts the signed-up patients (matched by email) and adds its attributes.
    for (n, p) in patients.iter().enumerate() {
        let insurance = if n % 2 == 0 { "Medicare" } else { "commercial" };
        let body = json!({"email": p.email, "attributes": {"insurance_type": insurance, "vaccinations": ["flu"]}});
        let (status, reply) = client.admin(Method::PUT, &format!("/v1/contacts/ehr-{n}"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (_, served) = client.admin(Method::GET, "/v1/schema", None).await;

    let (_, list) = client.admin(Method::GET, "/v1/contacts?limit=100", None).await;
    let (_, campaign_error) = client
        .admin(Method::POST, "/v1/campaigns", Some(json!({"name": "x", "category": "wellness-tips",
            "segment": {"exists": {"attr": "medications"}}, "template": {"subject": "s", "html": "<p>h</p>", "text": "t"}})))
        .await;
    let (_, report) =
        client.run_campaign("wellness-tips", json!({"eq": {"attr": "insurance_type", "value": "medicare"}})).await;

    let names: Vec<&str> = served["attributes"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "email",
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "zip",
            "language",
            "conditions",
            "insurance_type",
            "vaccinations"
        ]
    );
    let listed = list["contacts"].as_array().unwrap();
    assert_eq!(listed.len(), 6);
    for contact in listed {
        let keys: Vec<&String> = contact["attributes"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["insurance_type", "language"], "only non-identifying attributes are listed");
    }
    let medicare = listed.iter().filter(|c| c["attributes"]["insurance_type"] == "medicare").count();
    assert_eq!(medicare, 3);
    assert_eq!(campaign_error["field"], "segment");
    assert!(campaign_error["message"].as_str().unwrap().contains("not in the contact schema"), "{campaign_error}");
    assert_eq!((report["audience"].as_u64(), report["sent"].as_u64()), (Some(3), Some(3)), "{report}");

    let id = listed[0]["contact_id"].as_str().unwrap();
    let (_, view) = client.admin(Method::GET, &format!("/v1/contacts/{id}?reason=support%20call"), None).await;
    assert_eq!(view["attributes"]["vaccinations"], json!(["flu"]));
    assert!(view["attributes"].get("medications").is_none());
    let record = test.stack.app.ports.contacts.get(&carepost::domain::ContactId::parse(id).unwrap()).await;
    let sealed = record.unwrap().unwrap().sealed;
    for plain in [b"medicare".as_slice(), b"commercial", b"flu"] {
        assert!(!sealed.windows(plain.len()).any(|w| w == plain), "custom attributes are sealed");
    }
    let (_, audit) = client.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    let list_entry = audit["entries"].as_array().unwrap().iter().find(|e| e["event"]["action"] == "contacts.list");
    assert_eq!(list_entry.unwrap()["event"]["attributes"], json!(["language", "insurance_type"]));
}

#[tokio::test]
async fn a_configured_form_asking_for_an_attribute_outside_the_schema_stops_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.run_workers = false;
    config.knobs.forms =
        Some(carepost::forms::FormsConfig::parse(include_str!("../../../docs/forms.example.json")).unwrap());
    // The example form collects first_name, last_name, date_of_birth, zip and language.
    config.knobs.schema =
        Some(ContactSchema::parse(r#"{"attributes": [{"name": "first_name", "class": "identifier"}]}"#).unwrap());

    let started = EmbeddedStack::start(config).await;

    let message = started.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("is not in the contact schema"), "{message}");
}
