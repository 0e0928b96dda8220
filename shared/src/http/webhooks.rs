//! Unsubscribe: `GET /u/{token}` shows a page; `POST /u/{token}` is the RFC
//! 8058 one-click endpoint (200, no redirect, no cookie), also used by the
//! page's buttons. `?scope=all` unsubscribes from everything.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::extract::{ClientIp, proof};
use super::{ApiError, pages};
use crate::app::unsubscribe::UnsubscribeScope;
use crate::app::{App, AppError};

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
}

#[derive(Debug, Deserialize)]
struct ScopeQuery {
    scope: Option<String>,
}

fn scope(q: &ScopeQuery) -> Result<UnsubscribeScope, ApiError> {
    match q.scope.as_deref() {
        None | Some("campaign") => Ok(UnsubscribeScope::Campaign),
        Some("all") => Ok(UnsubscribeScope::All),
        Some(_) => Err(ApiError::invalid("scope", "must be 'campaign' or 'all'")),
    }
}

#[tracing::instrument(skip_all, fields(route = "GET /u/{token}"))]
async fn unsubscribe_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    match app.unsubscribe.target(&token).await {
        Ok(target) => pages::page(
            StatusCode::OK,
            "Unsubscribe",
            &[&format!(
                "You can stop receiving emails about {}, or all emails from us.",
                pages::label(&target.category)
            )],
            &format!(
                "{}{}<p><a href=\"{}\">Choose which topics you receive</a></p>",
                pages::post_button(
                    &format!("/u/{token}"),
                    &format!("Unsubscribe from {}", pages::label(&target.category)),
                    ""
                ),
                pages::post_button(&format!("/u/{token}?scope=all"), "Unsubscribe from all emails", "secondary"),
                crate::app::consent::html_escape(&target.preferences_url)
            ),
        ),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = "POST /u/{token}"))]
async fn unsubscribe(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    query: Result<Query<ScopeQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // The one-click body (`List-Unsubscribe=One-Click`) is not needed, but
    // it is read so its size limit applies.
    if let Err(e) = super::extract::body_bytes(body) {
        return e.into_response();
    }
    let Ok(Query(q)) = query else {
        return ApiError::invalid("scope", "must be 'campaign' or 'all'").into_response();
    };
    let scope = match scope(&q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match app.unsubscribe.apply(&token, scope, proof(ip, &headers)).await {
        Ok(()) => pages::page(
            StatusCode::OK,
            "You are unsubscribed",
            &[match scope {
                UnsubscribeScope::Campaign => "You will not receive these emails any more.",
                UnsubscribeScope::All => "You will not receive any more emails from us.",
            }],
            "",
        ),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
