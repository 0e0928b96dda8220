//! Template preview: rendered for a made-up or given sample patient, with
//! the linter's verdict, before a campaign exists.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::spawn_app;

#[tokio::test]
async fn a_template_preview_renders_for_a_made_up_patient_and_reports_what_the_linter_would_refuse() {
    let app = spawn_app().await;
    let c = &app.client;
    let template = json!({
        "subject": "Hello {{ first_name }}",
        "preheader": "Your yearly check-up",
        "html": "<p>Hi {{ first_name | default('there') }} {{ '<b>' }}</p>",
        "text": "Hi {{ first_name }}, stop: {{ unsubscribe_url }}"
    });

    let (made_up_status, made_up) = c
        .admin(Method::POST, "/v1/campaigns/preview", Some(json!({"template": template, "phi_personalized": true})))
        .await;
    let (given_status, given) = c
        .admin(
            Method::POST,
            "/v1/campaigns/preview",
            Some(json!({"template": template, "phi_personalized": true, "sample": {"first_name": "Robin"}})),
        )
        .await;
    let (bad_status, bad) = c
        .admin(
            Method::POST,
            "/v1/campaigns/preview",
            Some(json!({"template": template, "sample": {"date_of_birth": "yesterday"}})),
        )
        .await;

    assert_eq!(made_up_status, StatusCode::OK, "{made_up}");
    assert_eq!(made_up["subject"], "Hello Alex");
    assert!(made_up["html"].as_str().unwrap().starts_with("<div style=\"display:none"), "preheader first");
    assert!(made_up["html"].as_str().unwrap().contains("Hi Alex &lt;b&gt;"), "HTML is escaped");
    assert!(made_up["text"].as_str().unwrap().contains("/u/preview"));
    assert_eq!(made_up["lint"]["field"], "template.subject", "PHI in the subject would be refused");
    assert_eq!((given_status, given["subject"].as_str()), (StatusCode::OK, Some("Hello Robin")));
    assert_eq!((bad_status, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("sample.date_of_birth")));
}
