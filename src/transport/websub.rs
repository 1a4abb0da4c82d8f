//! The WebSub publish ping (W3C WebSub section 7, with the `hub.mode=publish` request
//! that hubs such as pubsubhubbub.appspot.com and WebSubHub accept): an HTTP POST of
//! `hub.mode=publish&hub.url=FEED` to the hub, form-encoded. Bytes out only; the
//! retries are the caller's.

use std::time::Duration;

/// How a ping went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingError {
    /// The hub answered with this status and text: a 4xx (but 429) will not change by
    /// itself.
    Refused { status: u16, body: String },
    /// No answer (connection, timeout, a 5xx or 429): worth trying again.
    Unavailable(String),
}

impl PingError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, PingError::Unavailable(_))
    }
}

impl std::fmt::Display for PingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingError::Refused { status, body } if body.is_empty() => {
                write!(f, "the hub refused it with HTTP {status}")
            }
            PingError::Refused { status, body } => write!(f, "the hub refused it with HTTP {status}: {body}"),
            PingError::Unavailable(why) => write!(f, "{why}"),
        }
    }
}

/// Tells `hub` that `feed` changed; returns the hub's HTTP status (2xx).
pub fn publish(hub: &str, feed: &str, timeout: Duration) -> Result<u16, PingError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("newsdesk/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent
        .post(hub)
        .send_form([("hub.mode", "publish"), ("hub.url", feed)])
        .map_err(|e| PingError::Unavailable(format!("no answer from the hub: {e}")))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(status);
    }
    let text = response.into_body().read_to_string().unwrap_or_default();
    // The hub's words, at most 300 characters of them.
    let body: String = text.trim().chars().take(300).collect();
    if status == 429 || status >= 500 {
        Err(PingError::Unavailable(format!(
            "the hub answered HTTP {status}{}",
            if body.is_empty() { String::new() } else { format!(": {body}") }
        )))
    } else {
        Err(PingError::Refused { status, body })
    }
}
