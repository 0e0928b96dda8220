//! Request parsing that answers bad input with the field at fault.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, ORIGIN, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::app::consent::RequestProof;

/// The body as bytes, with the size limit answered as our 413.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            ApiError::malformed(None, "request body could not be read")
        }
    })
}

/// Parses JSON, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let (field, message) = field_and_message(&path, &e.inner().to_string());
        ApiError::malformed(field, message)
    })
}

/// Parses an HTML form body (repeated keys become lists).
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_html_form::from_bytes(bytes).map_err(|e| {
        let (field, message) = field_and_message(".", &e.to_string());
        ApiError::malformed(field, message)
    })
}

/// Names the field from serde's path, or from a "missing/unknown field `x`"
/// message at that path, and drops any echoed input value.
fn field_and_message(path: &str, text: &str) -> (Option<String>, String) {
    let text = text.split(" at line ").next().unwrap_or(text);
    let prefix = if path == "." { String::new() } else { format!("{path}.") };
    for (marker, message) in [("missing field `", "is required"), ("unknown field `", "is not a known field")] {
        if let Some(rest) = text.strip_prefix(marker)
            && let Some(name) = rest.split('`').next()
        {
            // For an unknown key the path already ends with it.
            let field = if path.rsplit('.').next() == Some(name) { path.to_owned() } else { format!("{prefix}{name}") };
            return (Some(field.clone()), format!("{field} {message}"));
        }
    }
    let message = match text.split_once(": ") {
        Some((kind, _)) if kind.starts_with("invalid type") || kind.starts_with("invalid value") => kind.to_owned(),
        _ => text.to_owned(),
    };
    ((path != ".").then(|| path.to_owned()), message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

pub fn body_kind(parts: &axum::http::HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = parts.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/json") {
        Ok(BodyKind::Json)
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        ))
    }
}

/// The client's IP as the runtime saw it: the socket peer on the embedded
/// server, the API Gateway source IP in Lambda (inserted as an extension).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ClientIp(ip)) = parts.extensions.get::<ClientIp>() {
            return Ok(ClientIp(*ip));
        }
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Who is calling an admin route, for the PHI-access audit log: the IAM
/// principal in Lambda (inserted as an extension from the request context),
/// the local administrator on the embedded server (its bearer token).
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Actor>().cloned().unwrap_or_else(|| Actor(crate::app::audit::LOCAL_ADMIN.into())))
    }
}

pub fn proof(ip: ClientIp, headers: &axum::http::HeaderMap) -> RequestProof {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(|s| s.chars().take(512).collect::<String>())
    };
    RequestProof { ip: ip.0, user_agent: header(USER_AGENT), origin: header(ORIGIN) }
}
