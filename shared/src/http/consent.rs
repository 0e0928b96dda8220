//! `POST /v1/consent` (JSON or HTML form) and the double opt-in pages
//! `GET /confirm/{token}` (a button, so link scanners that GET confirm
//! nothing) and `POST /confirm/{token}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{BodyKind, ClientIp, body_bytes, body_kind, parse_form, parse_json, proof};
use super::{ApiError, pages};
use crate::app::App;
use crate::app::consent::{ConfirmOutcome, ConsentSubmission};
use crate::crypto::TokenPurpose;
use crate::domain::ProfileInput;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/consent", post(submit))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route("/thanks", get(thanks))
}

/// The fields a form or API client may send. Empty form fields count as absent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    form_id: String,
    email: String,
    #[serde(default)]
    categories: Vec<String>,
    /// Honeypot: hidden from people by the form's CSS.
    #[serde(default)]
    website: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<String>,
    sex: Option<String>,
    zip: Option<String>,
    language: Option<String>,
    #[serde(default)]
    conditions: Vec<String>,
}

fn present(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl ConsentBody {
    fn into_submission(self) -> ConsentSubmission {
        let conditions: Vec<String> = self.conditions.into_iter().filter(|c| !c.trim().is_empty()).collect();
        ConsentSubmission {
            form_id: self.form_id,
            email: self.email,
            categories: self.categories.into_iter().filter(|c| !c.trim().is_empty()).collect(),
            honeypot: self.website,
            method: None,
            profile: ProfileInput {
                first_name: present(self.first_name),
                last_name: present(self.last_name),
                date_of_birth: present(self.date_of_birth),
                sex: present(self.sex),
                zip: present(self.zip),
                language: present(self.language),
                conditions: (!conditions.is_empty()).then_some(conditions),
                ..Default::default()
            },
        }
    }
}

async fn submit(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = body_kind(&headers)?;
    let bytes = body_bytes(body)?;
    let parsed: ConsentBody = match kind {
        BodyKind::Json => parse_json(&bytes)?,
        BodyKind::Form => parse_form(&bytes)?,
    };
    let outcome = app.submit_consent(parsed.into_submission(), proof(ip, &headers)).await?;
    Ok(match kind {
        BodyKind::Form => (StatusCode::SEE_OTHER, [(header::LOCATION, outcome.thank_you_url)]).into_response(),
        BodyKind::Json => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "status": "received",
                "message": "If confirmation is needed, an email with a link is on its way."
            })),
        )
            .into_response(),
    })
}

async fn thanks() -> Response {
    pages::page(
        StatusCode::OK,
        "Thank you",
        &["We received your request. If we asked you to confirm, please check your inbox for our email."],
        "",
    )
}

async fn confirm_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let valid = app.keyring.tokens.verify(TokenPurpose::ConfirmConsent, &token, time::OffsetDateTime::now_utc());
    if valid.is_err() {
        return pages::invalid_link();
    }
    pages::page(
        StatusCode::OK,
        "Confirm your subscription",
        &["Press the button to confirm that you want these emails. You can unsubscribe at any time."],
        &pages::post_button(&format!("/confirm/{token}"), "Confirm my subscription", ""),
    )
}

async fn confirm(State(app): State<Arc<App>>, ip: ClientIp, headers: HeaderMap, Path(token): Path<String>) -> Response {
    match app.confirm_consent(&token, proof(ip, &headers)).await {
        Ok(ConfirmOutcome::Confirmed) => {
            pages::page(StatusCode::OK, "Subscription confirmed", &["Thank you. Your choice is recorded."], "")
        }
        Ok(ConfirmOutcome::AlreadyConfirmed) => {
            pages::page(StatusCode::OK, "Already confirmed", &["Your subscription was already confirmed."], "")
        }
        Err(crate::app::AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
