//! Small, accessible HTML pages with no external assets.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::app::consent::html_escape;

const STYLE: &str = "body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}\
button{font:inherit;padding:.6rem 1.2rem;margin:.3rem 0;border:2px solid #1b4f8a;background:#1b4f8a;color:#fff;border-radius:.3rem;cursor:pointer}\
button.secondary{background:#fff;color:#1b4f8a}:focus{outline:3px solid #f2a900;outline-offset:2px}";

/// A page with a heading, paragraphs (escaped) and optional raw form markup.
pub fn page(status: StatusCode, title: &str, paragraphs: &[&str], forms: &str) -> Response {
    let body: String = paragraphs.iter().map(|p| format!("<p>{}</p>", html_escape(p))).collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
         <title>{t}</title><style>{STYLE}</style></head>\
         <body><main><h1>{t}</h1>{body}{forms}</main></body></html>",
        t = html_escape(title)
    );
    (status, [("cache-control", "no-store")], Html(html)).into_response()
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
