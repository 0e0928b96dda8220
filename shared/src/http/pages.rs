//! Small, accessible HTML pages with no external assets.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;

pub(crate) use crate::app::consent::html_escape;
pub(crate) use crate::app::consent::html_escape as esc;

const STYLE: &str = "body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
button{font:inherit;padding:.6rem 1.2rem;margin:.3rem 0;border:2px solid #1b4f8a;background:#1b4f8a;color:#fff;border-radius:.3rem;cursor:pointer}\
button.secondary{background:#fff;color:#1b4f8a}:focus{outline:3px solid #f2a900;outline-offset:2px}\
h1{font-size:1.8rem;line-height:1.25}\
input:not([type=checkbox]),select{font:inherit;padding:.35rem .5rem;width:100%;max-width:24rem;box-sizing:border-box;\
border:1px solid #767676;border-radius:.25rem;background:#fff}\
input[type=checkbox]{width:1.2rem;height:1.2rem;vertical-align:-.2rem}fieldset{border:1px solid #767676;border-radius:.3rem}.message{white-space:pre-wrap;overflow-wrap:anywhere;border:1px solid #767676;border-radius:.3rem;padding:1rem}.alert{color:#a4000f;font-weight:600}.status{font-weight:600}";

/// A page with a heading, paragraphs (escaped) and optional raw form markup.
pub fn page(status: StatusCode, title: &str, paragraphs: &[&str], forms: &str) -> Response {
    page_with_referrer(status, title, paragraphs, forms, "no-referrer")
}

/// A page with its own referrer policy. Links on pages hold tokens, so
/// pages send no referrer; but a page whose form posts consent must let the
/// browser send its Origin, which `no-referrer` turns into `null`.
pub fn page_with_referrer(
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    forms: &str,
    referrer: &'static str,
) -> Response {
    let body: String = paragraphs.iter().map(|p| format!("<p>{}</p>", html_escape(p))).collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"{referrer}\"><meta name=\"robots\" content=\"noindex\">\
         <title>{t}</title><style>{STYLE}</style></head>\
         <body><main><h1>{t}</h1>{body}{forms}</main></body></html>",
        t = html_escape(title)
    );
    (status, [("cache-control", "no-store"), ("referrer-policy", referrer)], Html(html)).into_response()
}

/// `'sha256-…'` of an inline style, for the CSP.
fn style_hash(style: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, style.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

/// The Content-Security-Policy of every HTML page: nothing loads, nothing
/// frames it; only the page's own style block and the honeypot's style
/// attribute apply; forms post to this service and may be redirected to the
/// forms' own origins (their thank-you and error pages).
pub fn content_security_policy(settings: &crate::config::Settings) -> String {
    let mut targets = vec!["'self'".to_owned(), settings.own_origin()];
    for origin in settings.forms.iter().flat_map(|f| f.allowed_origins.iter()) {
        if !targets.iter().any(|t| t == origin.as_str()) {
            targets.push(origin.as_str().to_owned());
        }
    }
    format!(
        "default-src 'none'; style-src {} 'unsafe-hashes' {}; img-src 'self'; form-action {}; \
         frame-ancestors 'none'; base-uri 'none'",
        style_hash(STYLE),
        style_hash(super::consent::HONEYPOT_STYLE),
        targets.join(" ")
    )
}

/// Headers for every answer: `nosniff` everywhere; on HTML pages also the
/// CSP, no framing and no referrer (links hold tokens).
#[derive(Clone)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    pub fn new(settings: &crate::config::Settings) -> Arc<SecurityHeaders> {
        let csp = HeaderValue::from_str(&content_security_policy(settings))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
        Arc::new(SecurityHeaders { csp })
    }
}

pub async fn security_headers(State(headers): State<Arc<SecurityHeaders>>, mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if html {
        h.insert(header::CONTENT_SECURITY_POLICY, headers.csp.clone());
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !h.contains_key(header::REFERRER_POLICY) {
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        }
    }
    response
}

/// A human label for a topic or attribute slug: "date_of_birth" → "Date of birth".
pub fn label(slug: &str) -> String {
    let words = slug.replace(['-', '_'], " ");
    let mut chars = words.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A form that POSTs back to `action` with one button.
pub fn post_button(action: &str, label: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><button type=\"submit\" class=\"{}\">{}</button></form>",
        html_escape(action),
        html_escape(class),
        html_escape(label)
    )
}

pub fn invalid_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        &["The link may have expired or been copied incompletely. Nothing was changed."],
        "",
    )
}
