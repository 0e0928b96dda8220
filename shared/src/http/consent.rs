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
use crate::domain::{ProfileInput, Sensitive};

/// CORS for the consent endpoint: preflights and answers carry
/// `Access-Control-Allow-Origin` only for an origin some form allows (or the
/// service's own). Which form a posting page may use is checked per form.
pub fn cors(settings: &crate::config::Settings) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let mut origins: Vec<String> =
        settings.forms.iter().flat_map(|f| f.allowed_origins.iter().map(|o| o.as_str().to_owned())).collect();
    origins.push(settings.own_origin().to_ascii_lowercase());
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.iter().any(|allowed| allowed == &o.to_ascii_lowercase()))
        }))
        .allow_methods([axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/consent", post(submit))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route("/thanks", get(thanks))
        .route("/forms/{form_id}", get(example_form))
}

/// The fields a form or API client may send. Empty form fields count as
/// absent. Everything a person types is `Sensitive`: `Debug` shows the form
/// and the topics only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentBody {
    form_id: String,
    email: Sensitive<String>,
    #[serde(default)]
    categories: Vec<String>,
    /// Honeypot: hidden from people by the form's CSS.
    #[serde(default)]
    website: Option<Sensitive<String>>,
    first_name: Option<Sensitive<String>>,
    last_name: Option<Sensitive<String>>,
    date_of_birth: Option<Sensitive<String>>,
    sex: Option<Sensitive<String>>,
    zip: Option<Sensitive<String>>,
    language: Option<Sensitive<String>>,
    #[serde(default)]
    conditions: Sensitive<Vec<String>>,
}

fn present(v: Option<Sensitive<String>>) -> Option<String> {
    v.map(Sensitive::into_inner).filter(|s| !s.trim().is_empty())
}

impl ConsentBody {
    fn into_submission(self) -> ConsentSubmission {
        let conditions: Vec<String> =
            self.conditions.into_inner().into_iter().filter(|c| !c.trim().is_empty()).collect();
        ConsentSubmission {
            form_id: self.form_id,
            email: self.email,
            categories: self.categories.into_iter().filter(|c| !c.trim().is_empty()).collect(),
            honeypot: Sensitive::new(self.website.map(Sensitive::into_inner)),
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

#[tracing::instrument(skip_all, fields(route = "POST /v1/consent", form_id = tracing::field::Empty))]
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
    // Only a configured form's ID: the field is the sender's to fill.
    if let Some(form) = app.settings.form(&parsed.form_id) {
        super::record_id("form_id", &form.id);
    }
    let error_url = app.settings.form(&parsed.form_id).and_then(|f| f.error_url.clone());
    let outcome = match app.consent.submit(parsed.into_submission(), proof(ip, &headers)).await {
        Ok(outcome) => outcome,
        // A person using an HTML form goes to the clinic's error page, told
        // only which field to fix (never the value).
        Err(crate::app::AppError::Invalid(field)) if kind == BodyKind::Form && error_url.is_some() => {
            let url = error_url.unwrap_or_default();
            let separator = if url.contains('?') { '&' } else { '?' };
            let field_name: String =
                field.field.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
            let location = format!("{url}{separator}error={field_name}");
            return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response());
        }
        Err(e) => return Err(e.into()),
    };
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

#[tracing::instrument(skip_all, fields(route = "GET /thanks"))]
async fn thanks() -> Response {
    pages::page(
        StatusCode::OK,
        "Thank you",
        &["We received your request. If we asked you to confirm, please check your inbox for our email."],
        "",
    )
}

#[tracing::instrument(skip_all, fields(route = "GET /confirm/{token}"))]
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

#[tracing::instrument(skip_all, fields(route = "POST /confirm/{token}"))]
async fn confirm(State(app): State<Arc<App>>, ip: ClientIp, headers: HeaderMap, Path(token): Path<String>) -> Response {
    match app.consent.confirm(&token, proof(ip, &headers)).await {
        Ok(ConfirmOutcome::Confirmed) => {
            pages::page(StatusCode::OK, "Subscription confirmed", &["Thank you. Your choice is recorded."], "")
        }
        // A replayed link changes nothing and says so.
        Ok(ConfirmOutcome::AlreadyConfirmed) => pages::page(
            StatusCode::CONFLICT,
            "This link was already used",
            &["Your subscription was already confirmed. Nothing was changed."],
            "",
        ),
        Err(crate::app::AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The form's markup, ready to paste into a clinic's page: it posts to this
/// service, carries the hidden honeypot, shows the consent text whose hash
/// is kept as proof, and uses no script or outside asset.
pub fn example_form_markup(settings: &crate::config::Settings, form: &crate::config::FormDefinition) -> String {
    use crate::app::consent::html_escape as esc;
    use crate::domain::Attribute;
    let action = settings.public_base_url.join("/v1/consent");
    let topics: String = form
        .categories
        .iter()
        .map(|c| {
            format!(
                "<p><label><input type=\"checkbox\" name=\"categories\" value=\"{v}\"> {l}</label></p>",
                v = esc(c.as_str()),
                l = esc(&pages::label(c.as_str()))
            )
        })
        .collect();
    let fields: String = form
        .fields
        .iter()
        .map(|a| {
            let kind = if matches!(a, Attribute::DateOfBirth | Attribute::LastVisit) { "date" } else { "text" };
            let name = a.as_str();
            format!(
                "<p><label for=\"cp-{name}\">{l} (optional)</label><br>\
                 <input id=\"cp-{name}\" name=\"{name}\" type=\"{kind}\" autocomplete=\"off\"></p>",
                l = esc(&pages::label(name))
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"{action}\" class=\"carepost-consent\">\
         <input type=\"hidden\" name=\"form_id\" value=\"{id}\">\
         <p><label for=\"cp-email\">Email address</label><br>\
         <input id=\"cp-email\" name=\"email\" type=\"email\" required autocomplete=\"email\"></p>\
         {fields}<fieldset><legend>Topics</legend>{topics}</fieldset>\
         <div aria-hidden=\"true\" style=\"position:absolute;left:-10000px\"><label>Leave this empty \
         <input name=\"website\" type=\"text\" tabindex=\"-1\" autocomplete=\"off\"></label></div>\
         <p>{text}</p><button type=\"submit\">Subscribe</button></form>",
        action = esc(&action),
        id = esc(&form.id),
        text = esc(&form.consent_text),
    )
}

/// `GET /forms/{form_id}`: the example form as a page, to try it and to copy it.
#[tracing::instrument(skip_all, fields(route = "GET /forms/{form_id}", form_id = tracing::field::Empty))]
async fn example_form(State(app): State<Arc<App>>, Path(form_id): Path<String>) -> Response {
    let Some(form) = app.settings.form(&form_id) else {
        return pages::page(StatusCode::NOT_FOUND, "No such form", &["This form does not exist."], "");
    };
    super::record_id("form_id", &form.id);
    pages::page(
        StatusCode::OK,
        "Sign up for emails from your clinic",
        &["Tick the topics you want. We will email you a link to confirm."],
        &example_form_markup(&app.settings, form),
    )
}
