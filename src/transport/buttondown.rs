//! Buttondown's REST API (API version 2026-04-01, docs.buttondown.com): create the issue
//! as an email there (`POST /v1/emails`), as a draft or to be sent, and send a draft
//! made earlier (`PATCH /v1/emails/{id}`). The API key goes in `Authorization: Token
//! KEY` and is never part of an error.

use serde::Deserialize;
use std::time::Duration;

/// The API version these requests follow: the one whose default status is `draft` and
/// whose immediate sends need `X-Buttondown-Live-Dangerously: true`.
pub const API_VERSION: &str = "2026-04-01";

/// Where and as whom: `api_key` is a secret, so `Debug` leaves it out.
#[derive(Clone)]
pub struct Account {
    /// `https://api.buttondown.com/v1`.
    pub api_url: String,
    pub api_key: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("api_url", &self.api_url).field("api_key", &"<hidden>").finish()
    }
}

/// What Buttondown made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Email {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub message: String,
    /// Whether Buttondown may have done it anyway: no answer came, or a 5xx (a server
    /// that failed after doing the work, a proxy that gave up waiting). A 4xx is an
    /// answer that nothing was done.
    pub uncertain: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .user_agent(concat!("newsdesk/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn outcome(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Email, ApiError> {
    let response =
        response.map_err(|e| ApiError { message: format!("no answer from Buttondown: {e}"), uncertain: true })?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        serde_json::from_str(&text).map_err(|e| ApiError {
            message: format!("Buttondown answered HTTP {status} with something else than an email: {e}"),
            uncertain: true,
        })
    } else {
        let words: String = text.trim().chars().take(300).collect();
        Err(ApiError { message: format!("Buttondown answered HTTP {status}: {words}"), uncertain: status >= 500 })
    }
}

/// Creates the email: a draft, or (`send`) one Buttondown sends at once.
/// `idempotency_key` (Buttondown's `X-Idempotency-Key`) makes a repeat of the same
/// request, after no answer came, return the first one's email instead of a second.
pub fn create(
    account: &Account,
    subject: &str,
    body: &str,
    send: bool,
    idempotency_key: &str,
) -> Result<Email, ApiError> {
    let mut request = agent()
        .post(format!("{}/emails", account.api_url.trim_end_matches('/')))
        .header("Authorization", format!("Token {}", account.api_key))
        .header("X-API-Version", API_VERSION)
        .header("X-Idempotency-Key", idempotency_key);
    if send {
        request = request.header("X-Buttondown-Live-Dangerously", "true");
    }
    let status = if send { "about_to_send" } else { "draft" };
    outcome(request.send_json(serde_json::json!({ "subject": subject, "body": body, "status": status })))
}

/// Sends a draft made earlier, with the subject and body as they are now (the
/// post may have been edited since the draft was made).
pub fn send_draft(account: &Account, id: &str, subject: &str, body: &str) -> Result<Email, ApiError> {
    let request = agent()
        .patch(format!("{}/emails/{id}", account.api_url.trim_end_matches('/')))
        .header("Authorization", format!("Token {}", account.api_key))
        .header("X-API-Version", API_VERSION)
        .header("X-Buttondown-Live-Dangerously", "true");
    outcome(request.send_json(serde_json::json!({ "subject": subject, "body": body, "status": "about_to_send" })))
}
