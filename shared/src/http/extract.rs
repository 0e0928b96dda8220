//! Request parsing that answers bad input with the field at fault.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, ORIGIN, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::app::consent::RequestProof;
use crate::domain::scrub::{self, ParseErrorKind, ScrubbedError};
use crate::domain::{REDACTED, Sensitive};

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

/// Parses JSON, naming the field at fault on error. The message is the
/// scrubbed parse error (`domain::scrub`): it never quotes a value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let (field, message) = field_and_message(&path, &scrub::parse_error(e.inner()));
        ApiError::malformed(field, message)
    })?;
    // One document and nothing after it but whitespace.
    de.end().map_err(|_| ApiError::malformed(None, "the body holds more than one JSON document"))?;
    Ok(value)
}

/// Parses an HTML form body (repeated keys become lists).
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_html_form::from_bytes(bytes).map_err(|e| {
        let raw = e.to_string();
        let (field, message) = field_and_message(".", &scrub::parse_error_message(&raw));
        ApiError::malformed(field, message)
    })
}

/// Fields whose value is text in a fixed format: a value that does not parse
/// is answered with the format (the value itself is never echoed).
const FORMATS: &[(&str, &str)] =
    &[("launch_at", "must be an RFC 3339 date and time with its UTC offset, e.g. 2026-12-03T09:00:00Z")];

/// Names the field from serde's path, or from a "missing field `x`" message
/// at that path; the message is the scrubbed one. An unknown key is never
/// named back: it is the sender's text, and the answer names known fields only.
fn field_and_message(path: &str, scrubbed: &ScrubbedError) -> (Option<String>, String) {
    let prefix = if path == "." { String::new() } else { format!("{path}.") };
    let name = match scrubbed.kind() {
        ParseErrorKind::MissingField => scrubbed.field().map(str::to_owned).map(|n| (n, "is required")),
        ParseErrorKind::UnknownField => {
            let parent = path.rsplit_once('.').map(|(p, _)| p).filter(|p| !p.is_empty() && *p != ".");
            let within = parent.map(|p| format!(" in {p}")).unwrap_or_default();
            return (parent.map(str::to_owned), format!("the body holds a field that is not known{within}"));
        }
        _ => None,
    };
    if let Some((name, message)) = name {
        // For an unknown key the path already ends with it.
        let field =
            if path.rsplit('.').next() == Some(name.as_str()) { path.to_owned() } else { format!("{prefix}{name}") };
        return (Some(field.clone()), format!("{field} {message}"));
    }
    let last = path.rsplit('.').next();
    if let Some((_, format)) = FORMATS.iter().find(|(field, _)| last == Some(*field)) {
        return (Some(path.to_owned()), format!("{path} {format}"));
    }
    ((path != ".").then(|| path.to_owned()), scrubbed.message())
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn a_launch_time_that_does_not_parse_is_answered_with_its_format_and_not_echoed() {
        let input = br#"{"name":"x","category":"c","segment":{},"template":{"subject":"s","html":"h","text":"t"},"launch_at":"next tuesday 9am"}"#;
        let err = parse_json::<crate::app::campaigns::CampaignInput>(input).unwrap_err();
        let body = format!("{err:?}");
        assert!(body.contains("launch_at must be an RFC 3339 date and time"), "{body}");
        assert!(body.contains("2026-12-03T09:00:00Z") && !body.contains("tuesday"), "{body}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// The body's media type, exactly `application/json` or
/// `application/x-www-form-urlencoded`, with at most a UTF-8 `charset`.
pub fn body_kind(parts: &axum::http::HeaderMap) -> Result<BodyKind, ApiError> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        )
    };
    let ct = parts.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).ok_or_else(unsupported)?.to_ascii_lowercase();
    let mut pieces = ct.split(';');
    let kind = match pieces.next().unwrap_or_default().trim() {
        "application/json" => BodyKind::Json,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        _ => return Err(unsupported()),
    };
    for parameter in pieces {
        let (name, value) = parameter.split_once('=').ok_or_else(unsupported)?;
        let value = value.trim().trim_matches('"');
        if name.trim() != "charset" || !matches!(value, "utf-8" | "utf8") {
            return Err(unsupported());
        }
    }
    Ok(kind)
}

/// The client's IP as the runtime saw it: the socket peer on the embedded
/// server, the API Gateway source IP in Lambda (inserted as an extension).
/// An IP is PHI: `Debug` is redacted.
#[derive(Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl std::fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientIp({REDACTED})")
    }
}

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

/// A JSON body parsed by `parse_json`, its size limit answered as our 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(Bytes::from_request(request, state).await)?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// The request's proof (client IP, user agent, origin) for the consent ledger.
pub struct Proof(pub RequestProof);

impl<S: Send + Sync> FromRequestParts<S> for Proof {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ip = ClientIp::from_request_parts(parts, state).await?;
        Ok(Proof(proof(ip, &parts.headers)))
    }
}

pub fn proof(ip: ClientIp, headers: &axum::http::HeaderMap) -> RequestProof {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(|s| s.chars().take(512).collect::<String>())
    };
    RequestProof {
        ip: Sensitive::new(ip.0),
        user_agent: Sensitive::new(header(USER_AGENT)),
        origin: Sensitive::new(header(ORIGIN)),
    }
}
