//! axum routers shared by the Lambda functions and the embedded server.
//! Handlers convert a request into a use-case call and the result back.

pub mod admin;
pub mod consent;
pub mod error;
pub mod extract;
pub mod pages;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use error::ApiError;

use crate::app::App;

/// Largest request body accepted anywhere; larger bodies get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Public routes: consent capture, confirmation and unsubscribe pages.
pub fn public_router(app: Arc<App>) -> Router {
    Router::new()
        .merge(consent::routes())
        .merge(webhooks::routes())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(app)
}

/// Admin routes. In AWS the HTTP API authorizes them with IAM; the embedded
/// server puts a bearer token in front (see `runtime::embedded`).
pub fn admin_router(app: Arc<App>) -> Router {
    admin::routes().layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)).with_state(app)
}

/// JSON 404 for any path no router knows.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
