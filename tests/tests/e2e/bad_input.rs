//! Bad input to every endpoint gets a clear 4xx naming the field at fault,
//! never a 500 and never internal error text; an oversized body gets 413.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::spawn_app;

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    admin: bool,
    content_type: &'static str,
    body: String,
    status: StatusCode,
    field: Option<&'static str>,
}

fn json_case(
    name: &'static str,
    method: Method,
    path: &str,
    body: Value,
    status: StatusCode,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        admin: !path.starts_with("/v1/consent"),
        path: path.to_owned(),
        content_type: "application/json",
        body: body.to_string(),
        status,
        field,
    }
}

fn consent(overrides: Value) -> Value {
    let mut body = json!({"form_id": "web-signup", "email": "pat@example.org", "categories": ["wellness-tips"]});
    body.as_object_mut().unwrap().extend(overrides.as_object().unwrap().clone());
    body
}

fn campaign(overrides: Value) -> Value {
    let mut body = json!({
        "name": "c", "category": "wellness-tips", "segment": {"exists": {"attr": "zip"}},
        "template": {"subject": "s", "html": "<p>h</p>", "text": "t"}
    });
    body.as_object_mut().unwrap().extend(overrides.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn bad_input_to_every_endpoint_gets_a_4xx_naming_the_field() {
    let app = spawn_app().await;
    let c = &app.client;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let bad_request = StatusCode::BAD_REQUEST;
    let cases = vec![
        json_case(
            "consent: missing email",
            Method::POST,
            "/v1/consent",
            json!({"form_id": "web-signup", "categories": ["wellness-tips"]}),
            bad_request,
            Some("email"),
        ),
        json_case(
            "consent: bad email",
            Method::POST,
            "/v1/consent",
            consent(json!({"email": "not-an-address"})),
            unprocessable,
            Some("email"),
        ),
        json_case(
            "consent: unknown category",
            Method::POST,
            "/v1/consent",
            consent(json!({"categories": ["lottery"]})),
            unprocessable,
            Some("categories"),
        ),
        json_case(
            "consent: no category",
            Method::POST,
            "/v1/consent",
            consent(json!({"categories": []})),
            unprocessable,
            Some("categories"),
        ),
        json_case(
            "consent: unknown form",
            Method::POST,
            "/v1/consent",
            consent(json!({"form_id": "nope"})),
            unprocessable,
            Some("form_id"),
        ),
        json_case(
            "consent: future birth date",
            Method::POST,
            "/v1/consent",
            consent(json!({"date_of_birth": "2999-01-01"})),
            unprocessable,
            Some("date_of_birth"),
        ),
        json_case(
            "consent: bad zip",
            Method::POST,
            "/v1/consent",
            consent(json!({"zip": "ABCDE"})),
            unprocessable,
            Some("zip"),
        ),
        json_case(
            "consent: unknown field",
            Method::POST,
            "/v1/consent",
            consent(json!({"ssn": "123"})),
            bad_request,
            None,
        ),
        json_case(
            "consent: wrong type",
            Method::POST,
            "/v1/consent",
            consent(json!({"categories": "wellness-tips"})),
            bad_request,
            Some("categories"),
        ),
        Case {
            name: "consent: malformed json",
            method: Method::POST,
            path: "/v1/consent".into(),
            admin: false,
            content_type: "application/json",
            body: "{\"email\":".into(),
            status: bad_request,
            field: None,
        },
        Case {
            name: "consent: wrong media type",
            method: Method::POST,
            path: "/v1/consent".into(),
            admin: false,
            content_type: "text/plain",
            body: "hi".into(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: None,
        },
        Case {
            name: "consent: form with bad email",
            method: Method::POST,
            path: "/v1/consent".into(),
            admin: false,
            content_type: "application/x-www-form-urlencoded",
            body: "form_id=web-signup&email=x&categories=wellness-tips".into(),
            status: unprocessable,
            field: None,
        },
        json_case(
            "contact: external id with @",
            Method::PUT,
            "/v1/contacts/pat@example.org",
            json!({"email": "pat@example.org"}),
            unprocessable,
            Some("external_id"),
        ),
        json_case(
            "contact: bad email",
            Method::PUT,
            "/v1/contacts/crm-1",
            json!({"email": "nope"}),
            unprocessable,
            Some("email"),
        ),
        json_case(
            "contact: bad date",
            Method::PUT,
            "/v1/contacts/crm-1",
            json!({"email": "a@example.org", "attributes": {"last_visit": "yesterday"}}),
            unprocessable,
            Some("last_visit"),
        ),
        json_case(
            "contact: unknown attribute",
            Method::PUT,
            "/v1/contacts/crm-1",
            json!({"email": "a@example.org", "attributes": {"ssn": "1"}}),
            unprocessable,
            Some("ssn"),
        ),
        json_case(
            "campaign: unknown category",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"category": "nope"})),
            unprocessable,
            Some("category"),
        ),
        json_case(
            "campaign: bad segment",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"segment": {"eq": {"attr": "ssn", "value": "1"}}})),
            unprocessable,
            Some("segment"),
        ),
        json_case(
            "campaign: template syntax",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"template": {"subject": "s", "html": "{% if %}", "text": "t"}})),
            unprocessable,
            Some("template.html"),
        ),
        json_case(
            "campaign: PHI in the subject",
            Method::POST,
            "/v1/campaigns",
            campaign(
                json!({"phi_personalized": true, "template": {"subject": "Hi {{ first_name }}", "html": "h", "text": "t"}}),
            ),
            unprocessable,
            Some("template.subject"),
        ),
        json_case(
            "campaign: PHI in a link",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"phi_personalized": true, "template": {"subject": "s",
                "html": "<a href=\"https://clinic.example/?z={{ zip }}\">x</a>", "text": "t"}})),
            unprocessable,
            Some("template.html"),
        ),
        json_case(
            "campaign: a link without https",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"template": {"subject": "s", "html": "h", "text": "See http://clinic.example"}})),
            unprocessable,
            Some("template.text"),
        ),
        json_case(
            "campaign: PHI without the PHI-personalized flag",
            Method::POST,
            "/v1/campaigns",
            campaign(json!({"template": {"subject": "s", "html": "<p>{{ last_name }}</p>", "text": "t"}})),
            unprocessable,
            Some("phi_personalized"),
        ),
        json_case(
            "campaign: PHI-personalized without a purpose",
            Method::POST,
            "/v1/campaigns",
            campaign(
                json!({"phi_personalized": true, "template": {"subject": "s", "html": "<p>{{ last_name }}</p>", "text": "t"}}),
            ),
            unprocessable,
            Some("purpose"),
        ),
        json_case(
            "campaign: an unknown purpose",
            Method::POST,
            "/v1/campaigns",
            campaign(
                json!({"phi_personalized": true, "purpose": "sales", "template": {"subject": "s", "html": "h", "text": "t"}}),
            ),
            bad_request,
            None,
        ),
        json_case(
            "campaign: missing template",
            Method::POST,
            "/v1/campaigns",
            json!({"name": "c", "category": "wellness-tips", "segment": {}}),
            bad_request,
            Some("template"),
        ),
        json_case(
            "campaign: unknown id",
            Method::GET,
            "/v1/campaigns/00000000-0000-4000-8000-000000000000",
            Value::Null,
            StatusCode::NOT_FOUND,
            None,
        ),
        json_case(
            "campaign: malformed id",
            Method::POST,
            "/v1/campaigns/xyz/launch",
            Value::Null,
            StatusCode::NOT_FOUND,
            None,
        ),
        json_case(
            "contact history: malformed id",
            Method::GET,
            "/v1/contacts/xyz/consent",
            Value::Null,
            StatusCode::NOT_FOUND,
            None,
        ),
        json_case(
            "unsubscribe: bad scope",
            Method::POST,
            "/u/abc?scope=everything",
            Value::Null,
            unprocessable,
            Some("scope"),
        ),
        json_case(
            "unsubscribe: forged token",
            Method::POST,
            "/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            Value::Null,
            StatusCode::NOT_FOUND,
            None,
        ),
        json_case("confirm: forged token", Method::POST, "/confirm/abc", Value::Null, StatusCode::NOT_FOUND, None),
        json_case("unknown route", Method::GET, "/v1/nothing-here", Value::Null, StatusCode::NOT_FOUND, None),
    ];
    let mut failures = Vec::new();
    for case in cases {
        let mut request = c.http.request(case.method.clone(), format!("{}{}", c.base, case.path));
        if case.admin {
            request = request.bearer_auth(&c.token);
        } else if case.path.starts_with("/v1/consent") {
            // A browser on the service's own example form.
            request = request.header("origin", &c.base);
        }
        if !case.body.is_empty() && case.body != "null" {
            request = request.header("content-type", case.content_type).body(case.body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let field_ok = match case.field {
            None => true,
            Some(f) => body["field"].as_str() == Some(f),
        };
        let leaks = ["rusqlite", "panicked", "StoreError", "Error {", "src/"].iter().any(|w| text.contains(w));
        if status != case.status || !field_ok || leaks || status.is_server_error() {
            failures.push(format!("{}: got {status} {text}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_oversized_body_gets_413_on_public_and_admin_routes() {
    let app = spawn_app().await;
    let c = &app.client;
    let huge =
        json!({"form_id": "web-signup", "email": "a@example.org", "padding": "x".repeat(100 * 1024)}).to_string();
    let public = c
        .http
        .post(format!("{}/v1/consent", c.base))
        .header("origin", &c.base)
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    let admin = c
        .http
        .post(format!("{}/v1/campaigns", c.base))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(admin.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(admin.json::<Value>().await.unwrap()["error"], "body_too_large");
}

#[tokio::test]
async fn admin_routes_refuse_a_missing_or_wrong_token() {
    let app = spawn_app().await;
    let c = &app.client;
    let none =
        c.http.get(format!("{}/v1/campaigns/00000000-0000-4000-8000-000000000000", c.base)).send().await.unwrap();
    let wrong =
        c.http.post(format!("{}/v1/campaigns", c.base)).bearer_auth("guess").json(&json!({})).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}
