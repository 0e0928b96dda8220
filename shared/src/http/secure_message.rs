//! The secure message page: `GET /s/{token}` asks the patient to prove who
//! they are, `POST /s/{token}/code` emails a one-time code, `POST
//! /s/{token}` (code and date of birth) shows the message. The token holds
//! IDs only; nothing of the patient is in the URL.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ApiError;
use super::extract::{body_bytes, parse_form};
use super::pages::{self, esc};
use crate::app::secure_message::{CODE_MINUTES, CodeOutcome, Opened, PageState};
use crate::app::{App, AppError};
use crate::domain::Sensitive;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/s/{token}", get(show).post(open)).route("/s/{token}/code", post(send_code))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenForm {
    /// Both are the patient's proof (the date of birth is PHI): never formatted.
    #[serde(default)]
    code: Sensitive<String>,
    #[serde(default)]
    date_of_birth: Sensitive<String>,
}

fn title(sender: &str) -> String {
    format!("A secure message from {sender}")
}

/// The two forms: ask for a code, then enter it with the date of birth.
fn forms(token: &str, notice: Option<(&str, &str)>) -> String {
    let notice = match notice {
        Some((role, text)) => format!("<p role=\"{role}\" class=\"{role}\">{}</p>", esc(text)),
        None => String::new(),
    };
    format!(
        "{notice}<form method=\"post\" action=\"/s/{t}/code\"><button type=\"submit\" class=\"secondary\">Email me a \
         code</button></form>\
         <form method=\"post\" action=\"/s/{t}\"><p><label for=\"code\">Code from the email</label><br>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" \
         maxlength=\"6\" required></p>\
         <p><label for=\"date_of_birth\">Date of birth</label><br>\
         <input id=\"date_of_birth\" name=\"date_of_birth\" type=\"date\" autocomplete=\"bday\"></p>\
         <button type=\"submit\">Show the message</button></form>",
        t = esc(token)
    )
}

const HOW: &str = "To keep it private, we need to check it is you. Ask for a code: we email it to the address this \
                   message was sent to. Then enter the code and your date of birth.";

fn locked(sender: &str) -> Response {
    pages::page(
        StatusCode::FORBIDDEN,
        &title(sender),
        &[&format!(
            "This message is locked after too many wrong tries. Please contact {sender} to receive it another way."
        )],
        "",
    )
}

#[tracing::instrument(skip_all, fields(route = "GET /s/{token}"))]
async fn show(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    match app.secure_messages.page(&token).await {
        Ok(view) if view.state == PageState::Locked => locked(&view.sender_name),
        Ok(view) => pages::page(StatusCode::OK, &title(&view.sender_name), &[HOW], &forms(&token, None)),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = "POST /s/{token}/code"))]
async fn send_code(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = body_bytes(body) {
        return e.into_response();
    }
    let view = match app.secure_messages.page(&token).await {
        Ok(view) => view,
        Err(AppError::BadToken) => return pages::invalid_link(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let title = title(&view.sender_name);
    match app.secure_messages.send_code(&token).await {
        Ok(CodeOutcome::Sent) => {
            let sent = format!("We emailed you a code. It works for {CODE_MINUTES} minutes.");
            pages::page(StatusCode::OK, &title, &[HOW], &forms(&token, Some(("status", &sent))))
        }
        Ok(CodeOutcome::TooMany) => pages::page(
            StatusCode::TOO_MANY_REQUESTS,
            &title,
            &[HOW],
            &forms(
                &token,
                Some(("alert", "Several codes were sent in the last hour. Use the latest one, or try again later.")),
            ),
        ),
        Ok(CodeOutcome::Locked) => locked(&view.sender_name),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[tracing::instrument(skip_all, fields(route = "POST /s/{token}"))]
async fn open(State(app): State<Arc<App>>, Path(token): Path<String>, body: Result<Bytes, BytesRejection>) -> Response {
    let form: OpenForm = match body_bytes(body).and_then(|b| parse_form(&b)) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let view = match app.secure_messages.page(&token).await {
        Ok(view) => view,
        Err(AppError::BadToken) => return pages::invalid_link(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    match app.secure_messages.open(&token, form.code.expose(), form.date_of_birth.expose()).await {
        Ok(Opened::Shown(content)) => pages::page(
            StatusCode::OK,
            &title(&view.sender_name),
            &[],
            &format!("<h2>{}</h2><div class=\"message\">{}</div>", esc(&content.subject), esc(&content.text)),
        ),
        Ok(Opened::Wrong { attempts_left }) => {
            let wrong = format!(
                "The code or the date of birth did not match. {attempts_left} {} left.",
                if attempts_left == 1 { "try" } else { "tries" }
            );
            pages::page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &title(&view.sender_name),
                &[HOW],
                &forms(&token, Some(("alert", &wrong))),
            )
        }
        Ok(Opened::Locked) => locked(&view.sender_name),
        Err(AppError::BadToken) => pages::invalid_link(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
