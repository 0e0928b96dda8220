//! One error shape for every endpoint: `{"error": code, "field": …, "message": …}`.
//! Infrastructure errors are logged and answered with a generic message; their
//! text never reaches the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::AppError;
use crate::error::Classify;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// Seconds, sent as `Retry-After` (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, error, field: None, message: message.into(), retry_after: None }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "invalid_field",
            field: Some(field.into()),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn malformed(field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "malformed_body",
            field,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// A store or the application itself is not available for now: no detail.
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily unavailable, try again")
    }

    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {} bytes", super::BODY_LIMIT_BYTES),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        // Also for answers outside the routers' layers (the 404 fallback).
        response
            .headers_mut()
            .insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, axum::http::HeaderValue::from_static("nosniff"));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(f) => ApiError::invalid(f.field, f.message),
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::BadToken => {
                ApiError::new(StatusCode::NOT_FOUND, "invalid_link", "this link is invalid or has expired")
            }
            AppError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AppError::OriginNotAllowed => ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this form does not accept submissions from this page's origin",
            ),
            AppError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                "a request without an Origin must be signed by the form's server (see docs/consent.md)",
            ),
            AppError::RateLimited { retry_after_seconds } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests, try again later")
            },
            other => {
                if other.is_transient() {
                    tracing::warn!(error = %other, "request failed, transient");
                    ApiError::unavailable()
                } else {
                    tracing::error!(error = %other, "request failed");
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request could not be completed")
                }
            }
        }
    }
}
