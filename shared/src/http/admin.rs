//! Admin routes: contacts, campaigns, launch, pause, resume, retry of failed
//! sends, progress and consent history.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::ApiError;
use super::extract::{JsonBody, Proof, body_bytes, parse_json};
use crate::app::App;
use crate::app::campaigns::CampaignInput;
use crate::app::preview::PreviewInput;
use crate::domain::{CampaignId, ContactId, ExternalId, ProfileInput, Sensitive};

pub fn contact_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/contacts", get(list_contacts))
        .route(
            "/v1/contacts:batch",
            post(upsert_batch).layer(axum::extract::DefaultBodyLimit::max(super::BATCH_BODY_LIMIT_BYTES)),
        )
        .route(
            "/v1/contacts:import-consent",
            post(import_consent).layer(axum::extract::DefaultBodyLimit::max(super::BATCH_BODY_LIMIT_BYTES)),
        )
        .route("/v1/contacts/{external_id}", put(upsert_contact).delete(erase_contact).get(read_contact))
        .route("/v1/contacts/{contact_id}/consent", get(consent_history))
        .route("/v1/contacts/{contact_id}/consent/withdraw", post(withdraw_consent))
        .route("/v1/audit", get(audit_entries))
        .route("/v1/audit/verify", get(verify_audit))
        .route("/v1/schema", get(contact_schema))
        // Served by the contacts function: it decrypts segment attributes, as fan-out does.
        .route("/v1/campaigns/{id}/dry-run", post(dry_run))
        .route("/v1/keys/rotate", post(rotate_keys))
        .route("/v1/keys/reseal", post(reseal_contacts))
        .route(
            "/v1/contacts/{contact_id}/hipaa-authorization",
            axum::routing::put(record_authorization).delete(revoke_authorization),
        )
}

pub fn campaign_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/campaigns", post(create_campaign).get(list_campaigns))
        .route("/v1/campaigns/preview", post(preview_template))
        .route("/v1/campaigns/{id}", get(campaign_report))
        .route("/v1/campaigns/{id}/report", get(campaign_report_as))
        .route("/v1/campaigns/{id}/launch", post(launch_campaign))
        .route("/v1/campaigns/{id}/pause", post(pause_campaign))
        .route("/v1/campaigns/{id}/resume", post(resume_campaign))
        .route("/v1/campaigns/{id}/retry-failed", post(retry_failed))
        .route("/v1/campaigns/{id}/redrive", post(redrive))
        .route("/v1/campaigns/{id}/cancel", post(cancel_campaign))
}

/// `attributes`' `Debug` is redacted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactBody {
    email: Sensitive<String>,
    #[serde(default)]
    attributes: ProfileInput,
}

#[tracing::instrument(skip_all, fields(route = "PUT /v1/contacts/{external_id}", contact_id = tracing::field::Empty))]
async fn upsert_contact(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    Path(external_id): Path<String>,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<Response, ApiError> {
    let external_id = ExternalId::parse(&external_id).map_err(|e| ApiError::invalid("external_id", e.to_string()))?;
    let outcome = app.contacts.upsert(&actor.0, external_id, body.email.expose(), &body.attributes).await?;
    super::record_id("contact_id", &outcome.contact_id);
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({"contact_id": outcome.contact_id}))).into_response())
}

#[tracing::instrument(skip_all, fields(route = "GET /v1/contacts/{contact_id}/consent", contact_id = tracing::field::Empty))]
async fn consent_history(State(app): State<Arc<App>>, Path(contact_id): Path<String>) -> Result<Response, ApiError> {
    let id = resolve_contact(&app, &contact_id).await?;
    let history = app.ports.consent.history(&id).await.map_err(crate::app::AppError::from)?;
    let chain_ok = crate::domain::verify_chain(&history).is_ok();
    let entries: Vec<_> = history
        .iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq,
                "kind": e.evidence.kind,
                "categories": e.evidence.categories,
                "at": e.evidence.at.format(&Rfc3339).unwrap_or_default(),
                "method": e.evidence.method,
                "form_id": e.evidence.form_id,
                "consent_text_sha256": e.evidence.consent_text_sha256,
                "expires_at": e.evidence.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
                "imported_from": e.evidence.imported.as_ref().map(|i| serde_json::json!({
                    "source_system": i.source_system.as_str(),
                    "consented_at": i.consented_at.format(&Rfc3339).unwrap_or_default(),
                })),
                "hash": e.hash,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"contact_id": id, "chain_verified": chain_ok, "entries": entries})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    #[serde(default = "default_audit_limit")]
    limit: usize,
}

/// `GET /v1/contacts?after=&limit=`: IDs, update times and non-identifying attributes, no PHI.
#[tracing::instrument(skip_all, fields(route = "GET /v1/contacts"))]
async fn list_contacts(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = query.map_err(|_| ApiError::invalid("limit", "must be a whole number"))?;
    let after = q.after.filter(|a| !a.is_empty());
    // An opaque cursor (the store's own key form); only its size is checked.
    if after.as_ref().is_some_and(|a| a.len() > 512) {
        return Err(ApiError::invalid("after", "must be the `next` of the previous page"));
    }
    Ok(Json(app.contacts.list(&actor.0, after.as_deref(), q.limit).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    reason: Option<String>,
}

/// `GET /v1/contacts/{id}?reason=…`: one contact with its PHI, audited.
#[tracing::instrument(skip_all, fields(route = "GET /v1/contacts/{contact_id}", contact_id = tracing::field::Empty))]
async fn read_contact(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) =
        query.map_err(|_| ApiError::invalid("reason", "say why you need this patient's data"))?;
    let id = resolve_contact(&app, &id).await?;
    let view = app.contacts.read(&actor.0, &id, q.reason.as_deref()).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    contacts: Vec<crate::app::contact_views::BatchItem>,
}

/// `POST /v1/contacts:batch`: up to 500 upserts, a result per item.
#[tracing::instrument(skip_all, fields(route = "POST /v1/contacts:batch"))]
async fn upsert_batch(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Response, ApiError> {
    let results = app.contacts.upsert_batch(&actor.0, body.contacts).await?;
    Ok(Json(serde_json::json!({"results": results})).into_response())
}

/// `POST /v1/contacts:import-consent`: prior opt-ins from another system, a result per entry.
#[tracing::instrument(skip_all, fields(route = "POST /v1/contacts:import-consent"))]
async fn import_consent(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    Proof(proof): Proof,
    JsonBody(body): JsonBody<crate::app::consent_import::ConsentImport>,
) -> Result<Response, ApiError> {
    let results = app.contacts.import_consent(&actor.0, body, proof).await?;
    Ok(Json(serde_json::json!({"results": results})).into_response())
}

/// `DELETE /v1/contacts/{id}`: erases the contact (its contact ID or external ID).
#[tracing::instrument(skip_all, fields(route = "DELETE /v1/contacts/{external_id}", contact_id = tracing::field::Empty))]
async fn erase_contact(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    Proof(proof): Proof,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let erased = app.contacts.erase(&actor.0, &id, proof).await?;
    super::record_id("contact_id", &erased);
    Ok(Json(serde_json::json!({"contact_id": erased, "erased": true})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditPage {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_audit_limit")]
    limit: usize,
}

fn default_audit_limit() -> usize {
    500
}

/// `GET /v1/audit?after=N&limit=M`: entries after sequence number N, in order
/// (at most 1000), and where the next page starts.
#[tracing::instrument(skip_all, fields(route = "GET /v1/audit"))]
async fn audit_entries(
    State(app): State<Arc<App>>,
    query: Result<axum::extract::Query<AuditPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(page) =
        query.map_err(|_| ApiError::invalid("after", "after and limit must be whole numbers"))?;
    let entries = app.audit.entries(page.after, page.limit).await?;
    let next = entries.last().map_or(page.after, |e| e.seq);
    Ok(Json(serde_json::json!({"entries": entries, "next_after": next})).into_response())
}

/// `GET /v1/audit/verify`: walks the whole chain.
#[tracing::instrument(skip_all, fields(route = "GET /v1/audit/verify"))]
async fn verify_audit(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    Ok(Json(app.audit.verify().await?).into_response())
}

/// `GET /v1/schema`: the contact schema (names, types, classes, codes).
#[tracing::instrument(skip_all, fields(route = "GET /v1/schema"))]
async fn contact_schema(State(app): State<Arc<App>>) -> Response {
    Json(&*app.settings.schema).into_response()
}

/// `POST /v1/keys/rotate`: new customer-key material; answers the rotation
/// time that every re-seal page must carry.
#[tracing::instrument(skip_all, fields(route = "POST /v1/keys/rotate"))]
async fn rotate_keys(State(app): State<Arc<App>>, actor: super::extract::Actor) -> Result<Response, ApiError> {
    Ok(Json(app.keys.rotate(&actor.0).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResealBody {
    #[serde(with = "time::serde::rfc3339")]
    rotated_at: time::OffsetDateTime,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default = "default_reseal_limit")]
    limit: usize,
}

fn default_reseal_limit() -> usize {
    crate::app::keys::RESEAL_PAGE_LIMIT
}

/// `POST /v1/keys/reseal`: re-seals one page of contacts under the rotated key.
#[tracing::instrument(skip_all, fields(route = "POST /v1/keys/reseal"))]
async fn reseal_contacts(
    State(app): State<Arc<App>>,
    actor: super::extract::Actor,
    JsonBody(body): JsonBody<ResealBody>,
) -> Result<Response, ApiError> {
    let cursor = body.cursor.filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > 512) {
        return Err(ApiError::invalid("cursor", "must be the `next` of the previous page"));
    }
    Ok(Json(app.keys.reseal_page(&actor.0, body.rotated_at, cursor.as_deref(), body.limit).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    all: bool,
}

/// Withdraws topics on the patient's behalf (`{"categories": [...]}`), or
/// everything with the address suppressed (`{"all": true}`).
#[tracing::instrument(skip_all, fields(route = "POST /v1/contacts/{contact_id}/consent/withdraw", contact_id = tracing::field::Empty))]
async fn withdraw_consent(
    State(app): State<Arc<App>>,
    Proof(proof): Proof,
    Path(contact_id): Path<String>,
    JsonBody(body): JsonBody<WithdrawBody>,
) -> Result<Response, ApiError> {
    let id = resolve_contact(&app, &contact_id).await?;
    let change = if body.all {
        crate::app::preferences::PreferenceChange::UnsubscribeAll
    } else {
        crate::app::preferences::PreferenceChange::Topics(body.categories)
    };
    let withdrawn = app.preferences.withdraw_by_admin(&id, change, proof).await?;
    Ok(Json(serde_json::json!({"contact_id": id, "withdrawn": withdrawn})).into_response())
}

/// Records the patient's signed HIPAA marketing authorization.
#[tracing::instrument(skip_all, fields(route = "PUT /v1/contacts/{contact_id}/hipaa-authorization", contact_id = tracing::field::Empty))]
async fn record_authorization(
    State(app): State<Arc<App>>,
    Proof(proof): Proof,
    Path(contact_id): Path<String>,
    JsonBody(input): JsonBody<crate::app::authorization::AuthorizationInput>,
) -> Result<Response, ApiError> {
    let id = resolve_contact(&app, &contact_id).await?;
    let recorded = app.authorizations.record(&id, &input, proof).await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// Revokes it; 200 with whether one was in force.
#[tracing::instrument(skip_all, fields(route = "DELETE /v1/contacts/{contact_id}/hipaa-authorization", contact_id = tracing::field::Empty))]
async fn revoke_authorization(
    State(app): State<Arc<App>>,
    Proof(proof): Proof,
    Path(contact_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = resolve_contact(&app, &contact_id).await?;
    let revoked = app.authorizations.revoke(&id, proof).await?;
    Ok(Json(serde_json::json!({"contact_id": id, "revoked": revoked})).into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns", campaign_id = tracing::field::Empty))]
async fn create_campaign(
    State(app): State<Arc<App>>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<Response, ApiError> {
    let id = app.campaigns.create(input).await?;
    super::record_id("campaign_id", &id);
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id, "status": "draft"}))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignListQuery {
    after: Option<String>,
    #[serde(default = "default_campaign_limit")]
    limit: usize,
}

fn default_campaign_limit() -> usize {
    50
}

/// `GET /v1/campaigns?after=&limit=`: newest first, with status and progress.
#[tracing::instrument(skip_all, fields(route = "GET /v1/campaigns"))]
async fn list_campaigns(
    State(app): State<Arc<App>>,
    query: Result<axum::extract::Query<CampaignListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = query.map_err(|_| ApiError::invalid("limit", "must be a whole number"))?;
    if !(1..=crate::app::campaign_list::MAX_PAGE).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 100"));
    }
    let after = match q.after.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            crate::ports::CampaignCursor::parse(&a)
                .ok_or_else(|| ApiError::invalid("after", "must be the `next` of the previous page"))?,
        ),
    };
    Ok(Json(app.reports.list(after, q.limit).await?).into_response())
}

/// The campaign's ID from the path, recorded in the handler's span.
fn campaign_id(raw: &str) -> Result<CampaignId, ApiError> {
    let id = CampaignId::parse(raw).map_err(|_| ApiError::not_found("campaign"))?;
    super::record_id("campaign_id", &id);
    Ok(id)
}

/// The contact's ID from the path, recorded in the handler's span.
/// A contact named in a path by its contact ID or by its external ID; 404
/// if there is none. Only the contact ID goes into the span.
async fn resolve_contact(app: &App, raw: &str) -> Result<ContactId, ApiError> {
    let id = app.contacts.resolve(raw).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    super::record_id("contact_id", &id);
    Ok(id)
}

#[tracing::instrument(skip_all, fields(route = "GET /v1/campaigns/{id}", campaign_id = tracing::field::Empty))]
async fn campaign_report(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let report = app.reports.campaign_report(&campaign_id(&id)?).await?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
}

/// The report as JSON, or with `?format=html` as a self-contained page.
#[tracing::instrument(skip_all, fields(route = "GET /v1/campaigns/{id}/report", campaign_id = tracing::field::Empty))]
async fn campaign_report_as(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query.map_err(|_| ApiError::invalid("format", "must be 'json' or 'html'"))?;
    let report = app.reports.campaign_report(&campaign_id(&id)?).await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("html") => {
            let now = time::OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let page = crate::app::report_html::render_report_html(&report, &now).map_err(|e| {
                tracing::error!(error = %e, "report page did not render");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the report page could not be rendered")
            })?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], axum::response::Html(page)).into_response())
        }
        Some(_) => Err(ApiError::invalid("format", "must be 'json' or 'html'")),
    }
}

/// `POST /v1/campaigns/{id}/launch`: 202 for a draft; 409 once launched.
#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/launch", campaign_id = tracing::field::Empty))]
async fn launch_campaign(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let status = app.lifecycle.launch(&campaign_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"id": id, "status": status}))).into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/pause", campaign_id = tracing::field::Empty))]
async fn pause_campaign(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let status = app.lifecycle.pause(&campaign_id(&id)?, "paused by an administrator").await?;
    Ok(Json(serde_json::json!({"id": id, "status": status})).into_response())
}

/// `POST /v1/campaigns/{id}/cancel`: stops the campaign for good.
#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/cancel", campaign_id = tracing::field::Empty))]
async fn cancel_campaign(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let status = app.lifecycle.cancel(&campaign_id(&id)?).await?;
    Ok(Json(serde_json::json!({"id": id, "status": status})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunInput {
    resume: String,
}

/// `POST /v1/campaigns/{id}/dry-run`: the audience estimate, nothing sent.
/// No body starts it; `{"resume": token}` carries on from a partial answer.
#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/dry-run", campaign_id = tracing::field::Empty))]
async fn dry_run(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = campaign_id(&id)?;
    let body = body_bytes(body)?;
    let resume =
        if body.iter().all(u8::is_ascii_whitespace) { None } else { Some(parse_json::<DryRunInput>(&body)?.resume) };
    Ok(Json(app.audience.estimate(&id, resume.as_deref()).await?).into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/resume", campaign_id = tracing::field::Empty))]
async fn resume_campaign(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let outcome = app.lifecycle.resume(&campaign_id(&id)?).await?;
    Ok(Json(serde_json::json!({"id": id, "status": outcome.status, "requeued": outcome.requeued})).into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/retry-failed", campaign_id = tracing::field::Empty))]
async fn retry_failed(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let outcome = app.lifecycle.retry_failed(&campaign_id(&id)?).await?;
    Ok(Json(serde_json::json!({"id": id, "status": outcome.status, "requeued": outcome.requeued})).into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/{id}/redrive", campaign_id = tracing::field::Empty))]
async fn redrive(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let outcome = app.lifecycle.redrive(&campaign_id(&id)?).await?;
    Ok(Json(serde_json::json!({
        "id": id, "status": outcome.status, "redriven": outcome.redriven, "requeued": outcome.requeued
    }))
    .into_response())
}

#[tracing::instrument(skip_all, fields(route = "POST /v1/campaigns/preview"))]
async fn preview_template(
    State(app): State<Arc<App>>,
    JsonBody(input): JsonBody<PreviewInput>,
) -> Result<Response, ApiError> {
    Ok(Json(app.campaigns.preview(input)?).into_response())
}
