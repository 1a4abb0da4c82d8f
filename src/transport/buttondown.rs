//! Buttondown's REST API (API version 2026-04-01, docs.buttondown.com): create the issue
//! as an email there (`POST /v1/emails`), as a draft or to be sent, and send a draft
//! made earlier (`PATCH /v1/emails/{id}`). The API key goes in `Authorization: Token
//! KEY` and is never part of an error.

use serde::Deserialize;
use std::time::Duration;

/// The API version these requests follow: the one whose default status is `draft` and
/// whose immediate sends need `X-Buttondown-Live-Dangerously: true`.
pub const API_VERSION: &str = "2026-04-01";

#[derive(Debug, Clone)]
pub struct Account {
    /// `https://api.buttondown.com/v1`.
    pub api_url: String,
    pub api_key: String,
}

/// What Buttondown made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Email {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .user_agent(concat!("newsdesk/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn outcome(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Email, String> {
    let response = response.map_err(|e| format!("no answer from Buttondown: {e}"))?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        serde_json::from_str(&text)
            .map_err(|e| format!("Buttondown answered HTTP {status} with something else than an email: {e}"))
    } else {
        let words: String = text.trim().chars().take(300).collect();
        Err(format!("Buttondown answered HTTP {status}: {words}"))
    }
}

/// Creates the email: a draft, or (`send`) one Buttondown sends at once.
pub fn create(account: &Account, subject: &str, body: &str, send: bool) -> Result<Email, String> {
    let mut request = agent()
        .post(format!("{}/emails", account.api_url.trim_end_matches('/')))
        .header("Authorization", format!("Token {}", account.api_key))
        .header("X-API-Version", API_VERSION);
    if send {
        request = request.header("X-Buttondown-Live-Dangerously", "true");
    }
    let status = if send { "about_to_send" } else { "draft" };
    outcome(request.send_json(serde_json::json!({ "subject": subject, "body": body, "status": status })))
}

/// Sends a draft made earlier.
pub fn send_draft(account: &Account, id: &str) -> Result<Email, String> {
    let request = agent()
        .patch(format!("{}/emails/{id}", account.api_url.trim_end_matches('/')))
        .header("Authorization", format!("Token {}", account.api_key))
        .header("X-API-Version", API_VERSION);
    outcome(request.send_json(serde_json::json!({ "status": "about_to_send" })))
}
