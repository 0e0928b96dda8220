//! `GET /t/o/{token}`: the open pixel (a 1×1 transparent GIF).
//! `GET /t/c/{token}`: a click, answered with 302 to the campaign's link.
//! Neither is cached, and the click sends no `Referer` onward, so the token
//! never reaches the destination site.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, pages};
use crate::app::tracking::Requester;
use crate::app::{App, AppError};
use crate::domain::Sensitive;

/// The smallest transparent GIF (43 bytes).
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store, private");

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/t/o/{token}", get(open)).route("/t/c/{token}", get(click))
}

fn requester<'a>(method: &Method, headers: &'a HeaderMap) -> Requester<'a> {
    Requester {
        user_agent: Sensitive::new(headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())),
        head: method == Method::HEAD,
    }
}

#[tracing::instrument(skip_all, fields(route = "GET /t/o/{token}"))]
async fn open(State(app): State<Arc<App>>, method: Method, headers: HeaderMap, Path(token): Path<String>) -> Response {
    match app.tracking.open(&token, requester(&method, &headers)).await {
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/gif")), (header::CACHE_CONTROL, NO_STORE)],
            PIXEL,
        )
            .into_response(),
        Err(AppError::BadToken) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = "GET /t/c/{token}"))]
async fn click(State(app): State<Arc<App>>, method: Method, headers: HeaderMap, Path(token): Path<String>) -> Response {
    match app.tracking.click(&token, requester(&method, &headers)).await {
        Ok(target) => match HeaderValue::from_str(&target) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, NO_STORE),
                    (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
                ],
            )
                .into_response(),
            Err(_) => pages::invalid_link(),
        },
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
