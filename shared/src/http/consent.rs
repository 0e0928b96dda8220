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
use tracing::Instrument;

use super::extract::{BodyKind, ClientIp, body_bytes, body_kind, parse_form, parse_json, proof};
use super::{ApiError, pages};
use crate::app::App;
use crate::app::consent::{ConfirmOutcome, ConsentSubmission};
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
        .route("/privacy", get(privacy))
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
    #[serde(default)]
    medications: Sensitive<Vec<String>>,
    journey_stage: Option<Sensitive<String>>,
    last_visit: Option<Sensitive<String>>,
}

/// Codes from list fields: a form's text input holds them comma-separated.
fn codes(list: Sensitive<Vec<String>>) -> Option<Vec<String>> {
    let codes: Vec<String> = list
        .into_inner()
        .iter()
        .flat_map(|c| c.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    (!codes.is_empty()).then_some(codes)
}

fn present(v: Option<Sensitive<String>>) -> Option<String> {
    v.map(Sensitive::into_inner).filter(|s| !s.trim().is_empty())
}

impl ConsentBody {
    fn into_submission(self) -> ConsentSubmission {
        ConsentSubmission {
            form_id: self.form_id,
            email: self.email,
            categories: self.categories.into_iter().filter(|c| !c.trim().is_empty()).collect(),
            honeypot: Sensitive::new(self.website.map(Sensitive::into_inner)),
            method: None,
            server_authenticated: false,
            profile: ProfileInput {
                first_name: present(self.first_name),
                last_name: present(self.last_name),
                date_of_birth: present(self.date_of_birth),
                sex: present(self.sex),
                zip: present(self.zip),
                language: present(self.language),
                conditions: codes(self.conditions),
                medications: codes(self.medications),
                journey_stage: present(self.journey_stage),
                last_visit: present(self.last_visit),
                ..Default::default()
            },
        }
    }
}

/// The headers a form's server signs a request with (see docs/consent.md).
pub const TIMESTAMP_HEADER: &str = "carepost-timestamp";
pub const SIGNATURE_HEADER: &str = "carepost-signature";

#[tracing::instrument(skip_all, fields(route = "POST /v1/consent", form_id = tracing::field::Empty))]
async fn submit(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A form's errors are pages; anything else's, JSON.
    let kind = match body_kind(&headers) {
        Ok(kind) => kind,
        Err(e) => return e.into_response(),
    };
    // Its own task: a client that goes away mid-request does not cut the
    // work short, so a request is stored and queued whole or not at all.
    let worker = app.clone();
    let received =
        tokio::spawn(async move { receive(&worker, ip, &headers, body).await }.instrument(tracing::Span::current()))
            .await;
    match received {
        Ok(Ok(response)) => response,
        Ok(Err((error, form))) if kind == BodyKind::Form => form_error(&app, error, form),
        Ok(Err((error, _))) => error.into_response(),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request could not be completed")
            .into_response(),
    }
}

/// The form an error happened on, if the body named a configured one.
type Failure = (ApiError, Option<crate::config::FormDefinition>);

async fn receive(
    app: &App,
    ip: ClientIp,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let no_form = |e: ApiError| (e, None);
    let kind = body_kind(headers).map_err(no_form)?;
    let origin = origin(headers).map_err(no_form)?;
    let bytes = body_bytes(body).map_err(no_form)?;
    let parsed: ConsentBody = match kind {
        BodyKind::Json => parse_json(&bytes),
        BodyKind::Form => parse_form(&bytes),
    }
    .map_err(no_form)?;
    // Only a configured form's ID: the field is the sender's to fill.
    let form = app.settings.form(&parsed.form_id).cloned();
    if let Some(form) = &form {
        super::record_id("form_id", &form.id);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut submission = parsed.into_submission();
    submission.server_authenticated = origin.is_none()
        && app.consent.server_signed(&submission.form_id, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes);
    let outcome = app.consent.submit(submission, proof(ip, headers)).await.map_err(|e| (e.into(), form))?;
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

/// The Origin header, if sent: a browser's `scheme://host[:port]` (or
/// `null`). Anything else is refused rather than taken as absent, which
/// would make it a server-to-server request.
fn origin(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let malformed = || ApiError::malformed(None, "the Origin header is not a valid origin");
    if values.next().is_some() {
        return Err(malformed());
    }
    let text = value.to_str().map_err(|_| malformed())?;
    let well_formed = text == "null"
        || (text.len() <= 300
            && ["https://", "http://"].iter().any(|scheme| {
                text.strip_prefix(scheme).is_some_and(|host| {
                    !host.is_empty()
                        && host
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
                })
            }));
    if well_formed { Ok(Some(text.to_owned())) } else { Err(malformed()) }
}

/// A person using an HTML form goes to the clinic's error page, told only
/// which field to fix (never the value); without one, they get a page.
fn form_error(app: &App, error: ApiError, form: Option<crate::config::FormDefinition>) -> Response {
    let field =
        error.field.as_deref().filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')));
    if let Some(url) = form.as_ref().and_then(|f| f.error_url.clone())
        && error.status.is_client_error()
    {
        let separator = if url.contains('?') { '&' } else { '?' };
        let reason = if error.status == StatusCode::TOO_MANY_REQUESTS { "too_many_requests" } else { "request" };
        let location = format!("{url}{separator}error={}", field.unwrap_or(reason));
        return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    }
    let clinic = app.consent.clinic_name(form.as_ref());
    let what = match field {
        Some("email") => "Please check the email address.".to_owned(),
        Some("categories") => "Please tick at least one of the topics offered.".to_owned(),
        Some(f) => format!("Please check the field \"{}\".", pages::label(f)),
        None if error.status == StatusCode::FORBIDDEN => "This form cannot be sent from the page it is on.".to_owned(),
        None if error.status == StatusCode::TOO_MANY_REQUESTS => {
            "Too many sign-ups came from this connection or for this address in the last hour.".to_owned()
        }
        None if error.status.is_server_error() => "Something went wrong on our side. Please try again later.".into(),
        None => "The form could not be read.".to_owned(),
    };
    let mut response = pages::page(
        error.status,
        "We could not take your sign-up",
        &[
            &what,
            &if error.status == StatusCode::TOO_MANY_REQUESTS {
                "Please try again later; nothing from this form was stored.".to_owned()
            } else if error.status.is_client_error() {
                format!("Go back, correct it and send the form again. {clinic} has stored nothing from it.")
            } else {
                "Go back and send the form again in a few minutes.".to_owned()
            },
        ],
        "",
    );
    if let Some(retry) = error.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, retry.into());
    }
    response
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
    let request = match app.consent.confirmation_request(&token).await {
        Ok(request) => request,
        Err(crate::app::AppError::BadToken) => return pages::invalid_link(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let topics: String = request.topics.iter().map(|t| format!("<li>{}</li>", pages::esc(t))).collect();
    pages::page(
        StatusCode::OK,
        "Confirm your subscription",
        &[&format!("{} asks you to confirm that you want emails about:", request.clinic_name)],
        &format!(
            "<ul>{topics}</ul><p>Pressing the button grants these topics only. You can unsubscribe at any time.</p>{}",
            pages::post_button(&format!("/confirm/{token}"), "Confirm my subscription", "")
        ),
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

/// Language tags a sign-up form offers, with their names in that language.
const LANGUAGES: [(&str, &str); 10] = [
    ("en", "English"),
    ("es", "Español"),
    ("zh", "中文"),
    ("vi", "Tiếng Việt"),
    ("ko", "한국어"),
    ("tl", "Tagalog"),
    ("ru", "Русский"),
    ("ar", "العربية"),
    ("fr", "Français"),
    ("pt", "Português"),
];

/// The inline style of the honeypot's wrapper (also allowed by the pages' CSP).
pub(crate) const HONEYPOT_STYLE: &str = "position:absolute;left:-10000px";

/// One optional field of the form, as the control that fits its type.
fn field_markup(attribute: crate::domain::Attribute) -> String {
    use crate::domain::Attribute as A;
    let name = attribute.as_str();
    let label = match attribute {
        A::DateOfBirth => "Date of birth".to_owned(),
        A::Zip => "ZIP code".to_owned(),
        A::Conditions => "Health conditions you want news about".to_owned(),
        A::Medications => "Medications".to_owned(),
        other => pages::label(other.as_str()),
    };
    let options = |choices: &[(&str, &str)]| -> String {
        std::iter::once("<option value=\"\">Prefer not to say</option>".to_owned())
            .chain(choices.iter().map(|(v, l)| format!("<option value=\"{v}\">{}</option>", pages::esc(l))))
            .collect()
    };
    let text = |extra: &str| format!("<input id=\"cp-{name}\" name=\"{name}\" type=\"text\"{extra}>");
    let control = match attribute {
        A::DateOfBirth => format!("<input id=\"cp-{name}\" name=\"{name}\" type=\"date\" autocomplete=\"bday\">"),
        A::LastVisit => format!("<input id=\"cp-{name}\" name=\"{name}\" type=\"date\">"),
        A::Sex => format!(
            "<select id=\"cp-{name}\" name=\"{name}\">{}</select>",
            options(&[("female", "Female"), ("male", "Male"), ("other", "Other")])
        ),
        A::Language => format!(
            "<select id=\"cp-{name}\" name=\"{name}\" autocomplete=\"language\">{}</select>",
            options(&LANGUAGES)
        ),
        A::FirstName => text(" maxlength=\"100\" autocomplete=\"given-name\""),
        A::LastName => text(" maxlength=\"100\" autocomplete=\"family-name\""),
        A::Zip => text(
            " inputmode=\"numeric\" maxlength=\"10\" pattern=\"[0-9]{5}(-[0-9]{4})?\" autocomplete=\"postal-code\"",
        ),
        A::Conditions | A::Medications => {
            text(" maxlength=\"500\" autocomplete=\"off\" aria-describedby=\"cp-{name}-hint\"").replace("{name}", name)
                + &format!("<br><small id=\"cp-{name}-hint\">Separate several with commas.</small>")
        }
        A::JourneyStage | A::Email => text(" maxlength=\"64\" autocomplete=\"off\""),
    };
    format!("<p><label for=\"cp-{name}\">{} (optional)</label><br>{control}</p>", pages::esc(&label))
}

/// The form's markup, ready to paste into a clinic's page: it posts to this
/// service, names the clinic, asks only the fields the form collects with
/// the control each needs, a checkbox per topic, the consent text whose hash
/// is kept as proof, a link to the privacy notice, and the hidden honeypot;
/// no script and no outside asset.
pub fn example_form_markup(settings: &crate::config::Settings, form: &crate::config::FormDefinition) -> String {
    use pages::esc;
    let action = settings.public_base_url.join("/v1/consent");
    let clinic = form.clinic_name.clone().unwrap_or_else(|| settings.default_sender.name.clone());
    let topics: String = form
        .categories
        .iter()
        .map(|c| {
            format!(
                "<p><label><input type=\"checkbox\" name=\"categories\" value=\"{v}\"> {l}</label></p>",
                v = esc(c.as_str()),
                l = esc(&c.label())
            )
        })
        .collect();
    let fields: String = form.fields.iter().map(|a| field_markup(*a)).collect();
    let privacy = form
        .privacy_url
        .as_deref()
        .map(|url| {
            let href = if url.starts_with('/') { settings.public_base_url.join(url) } else { url.to_owned() };
            format!("<p><a href=\"{}\">How {} uses your information</a></p>", esc(&href), esc(&clinic))
        })
        .unwrap_or_default();
    format!(
        "<form method=\"post\" action=\"{action}\" class=\"carepost-consent\">\
         <input type=\"hidden\" name=\"form_id\" value=\"{id}\">\
         <p><label for=\"cp-email\">Email address</label><br>\
         <input id=\"cp-email\" name=\"email\" type=\"email\" required maxlength=\"254\" autocomplete=\"email\"></p>\
         {fields}<fieldset><legend>Topics from {clinic_html}</legend>{topics}</fieldset>\
         <div aria-hidden=\"true\" style=\"{HONEYPOT_STYLE}\"><label>Leave this empty \
         <input name=\"website\" type=\"text\" tabindex=\"-1\" autocomplete=\"off\"></label></div>\
         <p>{text}</p>{privacy}<button type=\"submit\">Subscribe</button></form>",
        action = esc(&action),
        id = esc(&form.id),
        clinic_html = esc(&clinic),
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
    pages::page_with_referrer(
        StatusCode::OK,
        &format!("Sign up for emails from {}", app.consent.clinic_name(Some(form))),
        &["Tick the topics you want. We will email you a link to confirm."],
        &example_form_markup(&app.settings, form),
        // The post must carry this page's Origin (no token in this URL).
        "strict-origin",
    )
}

/// `GET /privacy`: the example form's privacy notice, what this service
/// keeps about a person who signs up and how to withdraw.
#[tracing::instrument(skip_all, fields(route = "GET /privacy"))]
async fn privacy(State(app): State<Arc<App>>) -> Response {
    let clinic = app.consent.clinic_name(None);
    pages::page(
        StatusCode::OK,
        &format!("How {clinic} uses your information"),
        &[
            "When you sign up we keep your email address, the topics you chose, the details you chose to give, \
             and proof of your consent: when it was given, the text you agreed to, and the address and browser \
             it came from. All of it is stored encrypted.",
            "We use it only to send you emails about the topics you chose. We do not sell or share it.",
            "Every email has an unsubscribe link; one press stops the emails. You can also ask the clinic to \
             erase your details.",
        ],
        "",
    )
}
