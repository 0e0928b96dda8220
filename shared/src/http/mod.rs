//! axum routers shared by the Lambda functions and the embedded server.
//! Handlers convert a request into a use-case call and the result back.

pub(crate) mod admin;
pub mod consent;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod journeys;
pub(crate) mod pages;
pub(crate) mod preferences;
#[cfg(test)]
mod route_map_tests;
pub(crate) mod secure_message;
pub(crate) mod tracking;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use error::ApiError;

use crate::app::App;

/// Largest request body accepted anywhere; larger bodies get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The batch upsert's limit: 500 contacts with their attributes.
pub const BATCH_BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Public routes of the `consent` function: consent capture and confirmation.
pub fn consent_router(app: Arc<App>) -> Router {
    let cors = consent::cors(&app.settings);
    let router = consent::routes().layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)).layer(cors).with_state(app.clone());
    with_security_headers(router, &app)
}

/// Public routes of the `webhooks` function: unsubscribe pages and
/// one-click, first-party open and click tracking.
pub fn webhooks_router(app: Arc<App>) -> Router {
    let router = webhooks::routes()
        .merge(tracking::routes())
        .merge(preferences::routes())
        .merge(secure_message::routes())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(app.clone());
    with_security_headers(router, &app)
}

/// Admin routes of the `contacts` function.
pub fn contacts_router(app: Arc<App>) -> Router {
    let router = admin::contact_routes()
        .merge(journeys::journey_contact_routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(app.clone());
    with_security_headers(router, &app)
}

/// Admin routes of the `campaigns` function: campaigns and journeys.
pub fn campaigns_router(app: Arc<App>) -> Router {
    let router = admin::campaign_routes()
        .merge(journeys::journey_routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(app.clone());
    with_security_headers(router, &app)
}

/// Every public route (the embedded server serves them on one port).
pub fn public_router(app: Arc<App>) -> Router {
    consent_router(app.clone()).merge(webhooks_router(app))
}

/// `nosniff` on every answer; CSP, no framing, no referrer on HTML pages.
fn with_security_headers(router: Router, app: &App) -> Router {
    router.layer(axum::middleware::map_response_with_state(
        pages::SecurityHeaders::new(&app.settings),
        pages::security_headers,
    ))
}

/// Every admin route. In AWS the HTTP API authorizes them with IAM; the
/// embedded server puts a bearer token in front (see `runtime::embedded`).
pub fn admin_router(app: Arc<App>) -> Router {
    contacts_router(app.clone()).merge(campaigns_router(app))
}

/// JSON 404 for any path no router knows.
/// Records an ID (never a body field) in the current handler's span,
/// declared there as `tracing::field::Empty`.
pub(crate) fn record_id(name: &'static str, id: &dyn std::fmt::Display) {
    tracing::Span::current().record(name, tracing::field::display(id));
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
