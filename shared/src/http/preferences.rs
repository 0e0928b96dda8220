//! `GET /preferences/{token}`: the preference center, a plain form with one
//! checkbox per topic and an "unsubscribe from all" button.
//! `POST /preferences/{token}` (form-encoded): saves the choice and shows
//! the page again with what is now in force.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::extract::{ClientIp, body_bytes, parse_form, proof};
use super::{ApiError, pages};
use crate::app::consent::html_escape;
use crate::app::preferences::{PreferenceChange, TopicChoice};
use crate::app::{App, AppError};

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/preferences/{token}", get(show).post(save))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferencesForm {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    unsubscribe_all: Option<String>,
}

fn page(token: &str, topics: &[TopicChoice], notice: Option<&str>) -> Response {
    let action = html_escape(&format!("/preferences/{token}"));
    let boxes: String = topics
        .iter()
        .map(|t| {
            format!(
                "<p><label><input type=\"checkbox\" name=\"categories\" value=\"{v}\"{c}> {l}</label></p>",
                v = html_escape(t.category.as_str()),
                c = if t.subscribed { " checked" } else { "" },
                l = html_escape(&pages::label(t.category.as_str())),
            )
        })
        .collect();
    let forms = format!(
        "<form method=\"post\" action=\"{action}\"><fieldset><legend>Emails I want</legend>{boxes}</fieldset>\
         <button type=\"submit\">Save my choices</button></form>\
         <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"unsubscribe_all\" value=\"yes\">\
         <button type=\"submit\" class=\"secondary\">Unsubscribe from all emails</button></form>"
    );
    let intro = "Choose the topics you want to hear about. Untick a topic to stop it.";
    let paragraphs: Vec<&str> = notice.into_iter().chain([intro]).collect();
    pages::page(StatusCode::OK, "Your email preferences", &paragraphs, &forms)
}

#[tracing::instrument(skip_all, fields(route = "GET /preferences/{token}"))]
async fn show(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    match app.preferences.topics(&token).await {
        Ok(topics) => page(&token, &topics, None),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = "POST /preferences/{token}"))]
async fn save(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: PreferencesForm = match body_bytes(body).and_then(|b| parse_form(&b)) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let all = form.unsubscribe_all.is_some_and(|v| !v.trim().is_empty());
    let change = if all { PreferenceChange::UnsubscribeAll } else { PreferenceChange::Topics(form.categories) };
    let notice = if all {
        "You are unsubscribed from all emails. You will not receive any more emails from us."
    } else {
        "Your choices are saved."
    };
    match app.preferences.update(&token, change, proof(ip, &headers)).await {
        Ok(()) => match app.preferences.topics(&token).await {
            Ok(topics) => page(&token, &topics, Some(notice)),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
