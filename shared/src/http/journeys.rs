//! Admin routes for journeys: store a definition (the body is the journey
//! JSON, as `carepost journey validate` checks it), list, read, revise into
//! a new version, launch, pause, resume, and the per-step report, served by
//! the `campaigns` function (a journey's send steps are campaigns); the
//! simulation and `POST /v1/events`, served by the `contacts` function.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::ApiError;
use super::extract::body_bytes;
use crate::app::{App, AppError};
use crate::domain::journey::EventName;
use crate::domain::{ExternalId, InvalidField, JourneyId};
use crate::ports::JourneyRecord;

pub fn journey_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/journeys", post(create_journey).get(list_journeys))
        .route("/v1/journeys/{id}", get(read_journey).put(revise_journey))
        .route("/v1/journeys/{id}/report", get(journey_report))
        .route("/v1/journeys/{id}/launch", post(launch_journey))
        .route("/v1/journeys/{id}/pause", post(pause_journey))
        .route("/v1/journeys/{id}/resume", post(resume_journey))
}

/// Served by the `contacts` function, whose role reads the contact,
/// consent and suppression tables: the simulation reads every contact as
/// the audience estimate does, and an event names a contact by its
/// external ID.
pub fn journey_contact_routes() -> Router<Arc<App>> {
    Router::new().route("/v1/journeys/{id}/simulate", post(simulate_journey)).route("/v1/events", post(record_event))
}

/// The journey's ID from the path, recorded in the handler's span.
fn journey_id(raw: &str) -> Result<JourneyId, ApiError> {
    let id = JourneyId::parse(raw).map_err(|_| ApiError::not_found("journey"))?;
    super::record_id("journey_id", &id);
    Ok(id)
}

/// The definition in the body: UTF-8 text (the journey parser reads it
/// and names the step or field at fault; it never quotes the body).
fn definition(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let bytes = body_bytes(body)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::malformed(None, "the body is not UTF-8 JSON"))
}

/// A journey as listed: what it is and where it stands, not its steps.
fn summary(record: &JourneyRecord) -> Value {
    // The stored definition parsed when it was stored; its name is read back
    // without the schema (a later schema change does not hide the journey).
    let name = serde_json::from_str::<Value>(&record.definition)
        .ok()
        .and_then(|d| d.get("name").and_then(Value::as_str).map(str::to_owned));
    json!({
        "id": record.id,
        "name": name,
        "version": record.version,
        "status": record.status.as_str(),
        "created_at": record.created_at.format(&Rfc3339).unwrap_or_default(),
    })
}

/// `POST /v1/journeys`: 201 with the new draft's ID.
#[tracing::instrument(skip_all, fields(route = "POST /v1/journeys", journey_id = tracing::field::Empty))]
async fn create_journey(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = app.journeys.create(&definition(body)?).await?;
    super::record_id("journey_id", &id);
    Ok((StatusCode::CREATED, Json(json!({"id": id, "version": 1, "status": "draft"}))).into_response())
}

/// `GET /v1/journeys`: every journey, oldest first.
#[tracing::instrument(skip_all, fields(route = "GET /v1/journeys"))]
async fn list_journeys(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let journeys: Vec<Value> = app.journeys.list().await?.iter().map(summary).collect();
    Ok(Json(json!({ "journeys": journeys })).into_response())
}

/// `GET /v1/journeys/{id}`: the summary and the latest version's definition.
#[tracing::instrument(skip_all, fields(route = "GET /v1/journeys/{id}", journey_id = tracing::field::Empty))]
async fn read_journey(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let record = app.journeys.get(&journey_id(&id)?).await?;
    let mut body = summary(&record);
    body["definition"] = serde_json::from_str(&record.definition).unwrap_or(Value::Null);
    Ok(Json(body).into_response())
}

/// `PUT /v1/journeys/{id}`: a new version; contacts already in finish theirs.
#[tracing::instrument(skip_all, fields(route = "PUT /v1/journeys/{id}", journey_id = tracing::field::Empty))]
async fn revise_journey(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = journey_id(&id)?;
    let version = app.journeys.revise(&id, &definition(body)?).await?;
    Ok(Json(json!({"id": id, "version": version})).into_response())
}

#[derive(Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

/// `GET /v1/journeys/{id}/report`: per step, small cells suppressed; with
/// `?format=html` as a self-contained page with the step diagram.
#[tracing::instrument(skip_all, fields(route = "GET /v1/journeys/{id}/report", journey_id = tracing::field::Empty))]
async fn journey_report(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let bad_format = || ApiError::invalid("format", "must be 'json' or 'html'");
    let query = query.map_err(|_| bad_format())?;
    let report = app.journeys.report(&journey_id(&id)?).await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("html") => {
            let now = app.journey_runner.now().replace_nanosecond(0).unwrap_or_else(|_| app.journey_runner.now());
            let page = crate::app::journey_report_html::render_journey_report_html(
                &report,
                &now.format(&Rfc3339).unwrap_or_default(),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "journey report page did not render");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the report page could not be rendered")
            })?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], axum::response::Html(page)).into_response())
        }
        Some(_) => Err(bad_format()),
    }
}

/// The journey's status after a move.
async fn status_of(app: &App, id: &JourneyId) -> Result<Response, ApiError> {
    let record = app.journeys.get(id).await?;
    Ok(Json(json!({"id": id, "status": record.status.as_str()})).into_response())
}

/// `POST /v1/journeys/{id}/launch`: draft → live; 409 otherwise.
#[tracing::instrument(skip_all, fields(route = "POST /v1/journeys/{id}/launch", journey_id = tracing::field::Empty))]
async fn launch_journey(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = journey_id(&id)?;
    app.journeys.launch(&id).await?;
    status_of(&app, &id).await
}

/// `POST /v1/journeys/{id}/pause`: live → paused; every contact stays put.
#[tracing::instrument(skip_all, fields(route = "POST /v1/journeys/{id}/pause", journey_id = tracing::field::Empty))]
async fn pause_journey(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = journey_id(&id)?;
    app.journeys.pause(&id).await?;
    status_of(&app, &id).await
}

/// `POST /v1/journeys/{id}/resume`: paused → live.
#[tracing::instrument(skip_all, fields(route = "POST /v1/journeys/{id}/resume", journey_id = tracing::field::Empty))]
async fn resume_journey(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = journey_id(&id)?;
    app.journeys.resume(&id).await?;
    status_of(&app, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateInput {
    #[serde(default = "default_horizon")]
    days: u32,
    /// A partial answer's token: go on where it stopped.
    resume: Option<String>,
}

fn default_horizon() -> u32 {
    crate::app::journey_simulation::DEFAULT_HORIZON_DAYS
}

/// `POST /v1/journeys/{id}/simulate`: the journey over the current
/// population on a virtual clock, nothing sent. No body: 90 days;
/// `{"days": N}` (1 to 366) sets the horizon; a call that runs out of time
/// answers `complete: false` with a `resume` token to post back
/// (`{"resume": "…"}`) until the answer is complete.
#[tracing::instrument(skip_all, fields(route = "POST /v1/journeys/{id}/simulate", journey_id = tracing::field::Empty))]
async fn simulate_journey(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = journey_id(&id)?;
    let body = body_bytes(body)?;
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        SimulateInput { days: default_horizon(), resume: None }
    } else {
        super::extract::parse_json::<SimulateInput>(&body)?
    };
    let answer = app.journey_simulator.simulate_call(&id, input.days, input.resume.as_deref()).await?;
    Ok(Json(answer).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    external_id: String,
    name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<time::OffsetDateTime>,
}

/// `POST /v1/events`: something happened to a contact (`appointment.booked`,
/// `lab_result.available`): recorded for goals, exit rules and branches,
/// and the contact enters the live journeys it starts. 202 with how many.
/// The body holds a reference and a name, never PHI.
#[tracing::instrument(skip_all, fields(route = "POST /v1/events"))]
async fn record_event(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let input: EventInput = super::extract::parse_json(&body_bytes(body)?)?;
    let invalid = |field: &str, problem: &str| ApiError::from(AppError::from(InvalidField::new(field, problem)));
    let external = ExternalId::parse(&input.external_id)
        .map_err(|_| invalid("external_id", "1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'"))?;
    let name = EventName::parse(&input.name)
        .ok_or_else(|| invalid("name", "1 to 64 characters of a-z, 0-9, '.', '_' and '-' (e.g. appointment.booked)"))?;
    let at = input.occurred_at.unwrap_or_else(|| app.journey_runner.now());
    let entered = app.journey_runner.record_event(&external, &name, at).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"recorded": true, "journeys_entered": entered}))).into_response())
}
