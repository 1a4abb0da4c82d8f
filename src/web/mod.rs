//! `newsdesk serve`: the subscriber-facing web endpoints, beside [`crate::cli`] and
//! calling [`crate::ops`] and [`crate::store`] like it (never `cli`).
//!
//! - `POST /unsubscribe/{token}` unsubscribes at once (RFC 8058 one-click: a mailbox
//!   provider posts `List-Unsubscribe=One-Click`; the page's button posts the same),
//!   committed before the answer. Unknown, malformed and repeated tokens get the same
//!   answer, so the endpoint says nothing about who subscribes. The page after it has
//!   a "resubscribe" button, which posts `resubscribe=yes` to the same URL.
//! - `GET /unsubscribe/{token}` never changes anything (mail scanners and link previews
//!   fetch every link): it shows a page with one button that posts.
//! - `GET /subscribe` is the form; `POST /subscribe` (`email`, optional `name`, and the
//!   `website` trap that people never fill in) queues one confirmation mail and answers
//!   "check your inbox", the same page whatever the address's state. Limits per client
//!   and per address ([`client::Limits`]) and one mail per address per `confirm_hours`
//!   keep the form from being used to flood an inbox.
//! - `GET /confirm/{token}` shows a button; `POST` confirms: the address becomes a
//!   subscriber. Links expire and work once.
//! - `GET /healthz` answers `ok`.
//!
//! Every answer carries a strict Content-Security-Policy, `Referrer-Policy: no-referrer`
//! (the URL holds a secret) and `Cache-Control: no-store`; request bodies are capped at
//! 16 KiB and requests time out. SQLite work runs on one database thread ([`db`]), never
//! on the async threads; mails go out from a thread of their own ([`mailer`]). Tokens
//! never appear in answers, errors or the access log.

pub mod client;
mod db;
mod mailer;

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::digest::templates::{self, Templates};
use crate::ops::subscribe::ConfirmationSender;
use crate::store::{confirmations, subscribers};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest request body accepted (a one-click POST is 26 bytes).
pub const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
    db: db::Database,
}

struct Shared {
    config: Config,
    pages: Templates,
    site: Value,
    /// `None` when subscribing is off (no `[web] public_url`).
    mailer: Option<mailer::MailerThread>,
    limits: client::Limits,
    confirm_hours: u32,
}

impl AppState {
    /// Loads the pages and, when `[web] public_url` is set, what confirmation mails
    /// need, and starts the database and mailer threads. A page template that does not
    /// render, or a subscribe set-up that cannot send, is an error here rather than on
    /// a reader's first visit.
    pub fn new(config: Config) -> Result<AppState, Vec<Diagnostic>> {
        let web = config.web.as_ref();
        let (dir, default) = match web.and_then(|w| w.templates.as_ref()) {
            Some(dir) => (config.resolve(dir), false),
            None => (config.resolve(std::path::Path::new("web-templates")), true),
        };
        let pages = templates::load_set(&templates::WEB, &dir, default, &config.path)?;
        let site = Value::from(minijinja::value::Serde(&config.site));
        check_pages(&pages, &site)?;
        let confirm_hours = web.map_or(168, |w| w.confirm_hours);
        let mailer = match web.and_then(|w| w.public_url.as_ref()) {
            Some(_) => {
                let sender = ConfirmationSender::from_config(&config)?;
                Some(mailer::MailerThread::start(config.database_path(), sender))
            }
            None => None,
        };
        let db = db::Database::start(config.database_path());
        let shared = Shared { config, pages, site, mailer, limits: client::Limits::default(), confirm_hours };
        Ok(AppState { inner: Arc::new(shared), db })
    }

    /// Whether the subscribe form is on (it needs `[web] public_url`).
    pub fn subscribing(&self) -> bool {
        self.inner.mailer.is_some()
    }

    /// Lets the confirmation mail being sent finish and stops the mailer thread.
    pub fn stop(&self) {
        if let Some(m) = &self.inner.mailer {
            m.stop();
        }
    }

    fn page(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        let ctx = minijinja::context! { site => self.inner.site.clone(), ..ctx };
        match self.inner.pages.render(name, &ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(d) => {
                tracing::error!("the page `{name}` did not render: {}", d.message);
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown\n").into_response()
            }
        }
    }

    fn error_page(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        self.page(status, "error.html", minijinja::context! { heading, message, status => status.as_u16() })
    }

    fn try_again(&self) -> Response {
        self.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "That did not work for a moment: nothing was changed. Please try again later.",
        )
    }
}

/// Renders every page once with sample values, so a template that uses an unknown
/// variable fails at start, naming the file and line.
fn check_pages(pages: &Templates, site: &Value) -> Result<(), Vec<Diagnostic>> {
    let ctx = minijinja::context! {
        site => site.clone(), email => "reader@example.org", name => "Reader", error => "a problem",
        confirm_hours => 168, confirm_period => "7 days", resubscribed => false, heading => "Error", message => "a message", status => 500,
    };
    let problems: Vec<Diagnostic> = templates::WEB
        .files
        .iter()
        .filter(|(name, _)| *name != "layout.html")
        .filter_map(|(name, _)| pages.render(name, &ctx).err())
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Why `serve` will not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "`{0}` is not a loopback address: newsdesk serves plain HTTP, so run it on 127.0.0.1 behind a reverse proxy that terminates TLS (or set an https `[web] public_url`, which says one is in front)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// The routes and layers, as one service (tests call it in-process).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe))
        .route("/subscribe", get(subscribe_page).post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .fallback(not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(10)))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(middleware::from_fn(access_log))
}

/// One line per request at info level: method, path with its secrets masked, status,
/// time taken. No query strings, no bodies, no tokens.
async fn access_log(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), client::masked_path(request.uri().path()));
    let started = Instant::now();
    let response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(target: "newsdesk::access", "{method} {path} {} {ms:.1}ms", response.status().as_u16());
    response
}

/// Binds `addr`. Other than a loopback address only when `[web] public_url` is https:
/// readers then reach the service through a proxy that terminates TLS, so tokens
/// never cross the network in plain text.
pub async fn bind(addr: SocketAddr, config: &Config) -> Result<tokio::net::TcpListener, ServeError> {
    let behind_tls =
        config.web.as_ref().and_then(|w| w.public_url.as_deref()).is_some_and(|u| u.starts_with("https://"));
    if !addr.ip().is_loopback() && !behind_tls {
        return Err(ServeError::NotLoopback(addr));
    }
    tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })
}

/// Serves until `shutdown` resolves, then lets the requests in flight finish and the
/// confirmation mail being sent go out.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    tokio::task::spawn_blocking(move || state.stop()).await.ok();
    result?;
    Ok(())
}

async fn not_found(State(state): State<AppState>) -> Response {
    state.error_page(StatusCode::NOT_FOUND, "Not found", "There is no page here.")
}

/// `GET /unsubscribe/{token}`: a page with one button; changes nothing.
async fn unsubscribe_page(State(state): State<AppState>, Path(_token): Path<String>) -> Response {
    // The form posts to this same URL: the token never appears in the page.
    state.page(StatusCode::OK, "unsubscribe.html", minijinja::context! {})
}

/// The fields of a form-encoded body, in order; other bodies have none.
pub fn form_fields(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return Vec::new();
    }
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `POST /unsubscribe/{token}`: unsubscribes (committed before the answer), or with
/// `resubscribe=yes` (the button on the page after it) subscribes again. The same
/// answer for every token, known or not, so the endpoint is no oracle.
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if field(&form_fields(&headers, &body), "resubscribe") == Some("yes") {
        let done = state
            .db
            .call(move |conn| match subscribers::resubscribe_token(conn, &token) {
                Ok(_) | Err(subscribers::SubscriberError::UnknownToken | subscribers::SubscriberError::NotAToken) => {
                    Ok(())
                }
                Err(e) => Err(e),
            })
            .await;
        return match done {
            Ok(()) => state.page(StatusCode::OK, "confirmed.html", minijinja::context! { resubscribed => true }),
            Err(()) => state.try_again(),
        };
    }
    match state.db.unsubscribe(token).await {
        db::Unsubscribed::Done => state.page(StatusCode::OK, "unsubscribed.html", minijinja::context! {}),
        // A database that cannot be written: say so, so the provider (or the reader)
        // tries again rather than believing it worked.
        db::Unsubscribed::Failed => state.try_again(),
    }
}

fn subscribing_off(state: &AppState) -> Response {
    state.error_page(StatusCode::NOT_FOUND, "Not found", "This newsletter does not take subscriptions here.")
}

/// `GET /subscribe`: the form.
async fn subscribe_page(State(state): State<AppState>) -> Response {
    if !state.subscribing() {
        return subscribing_off(&state);
    }
    state.page(StatusCode::OK, "subscribe.html", minijinja::context! {})
}

/// `POST /subscribe`: queues a confirmation mail when the address may get one; the
/// same answer whatever the address's state.
async fn subscribe(State(state): State<AppState>, request: Request) -> Response {
    let Some(mailer) = &state.inner.mailer else {
        return subscribing_off(&state);
    };
    let (parts, body) = request.into_parts();
    let ip = client::client_ip(&parts, &state.inner.config.web.as_ref().map(|w| w.trusted.clone()).unwrap_or_default());
    if let Err(wait) = state.inner.limits.client(ip) {
        let minutes = wait.div_ceil(60);
        let mut response = state.error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!(
                "There were too many subscribe requests from your network. Please try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return state.error_page(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "That request was too large.");
    };
    let fields = form_fields(&parts.headers, &body);
    let raw_email = field(&fields, "email").unwrap_or("").trim().to_string();
    let name = field(&fields, "name").map(str::to_string).filter(|n| !n.trim().is_empty());
    let inbox = || {
        state.page(
            StatusCode::OK,
            "check-your-inbox.html",
            minijinja::context! {
                confirm_hours => state.inner.confirm_hours,
                confirm_period => crate::digest::confirmation::period(state.inner.confirm_hours),
            },
        )
    };
    // The trap field: people never see it, robots fill it in. Answered as usual.
    if field(&fields, "website").is_some_and(|v| !v.is_empty()) {
        return inbox();
    }
    let email = match subscribers::normalise(&raw_email) {
        Ok((email, _)) => email,
        Err(reason) => {
            let error = if raw_email.is_empty() {
                "Please enter your email address.".to_string()
            } else {
                format!("“{raw_email}” is not an email address we can send to: {reason}.")
            };
            return state.page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "subscribe.html",
                minijinja::context! { error, email => raw_email, name },
            );
        }
    };
    if !state.inner.limits.address(&email) {
        return inbox();
    }
    let hours = state.inner.confirm_hours;
    let requested = state
        .db
        .call(move |conn| confirmations::request(conn, &email, name.as_deref(), chrono::Utc::now(), hours))
        .await;
    match requested {
        Ok(confirmations::Requested::Queued) => {
            mailer.wake();
            inbox()
        }
        Ok(_) => inbox(),
        Err(()) => state.try_again(),
    }
}

fn link_expired(state: &AppState) -> Response {
    state.error_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "This confirmation link has expired or was used already. Subscribe again to get a new one.",
    )
}

/// `GET /confirm/{token}`: a button that posts, for a link that works; changes nothing.
async fn confirm_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.db.call(move |conn| confirmations::is_valid(conn, &token, chrono::Utc::now())).await {
        Ok(true) => state.page(StatusCode::OK, "confirm.html", minijinja::context! {}),
        Ok(false) => link_expired(&state),
        Err(()) => state.try_again(),
    }
}

/// `POST /confirm/{token}`: the address becomes a subscriber; the link stops working.
async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.db.call(move |conn| confirmations::confirm(conn, &token, chrono::Utc::now())).await {
        Ok(Some(_)) => state.page(StatusCode::OK, "confirmed.html", minijinja::context! { resubscribed => false }),
        Ok(None) => link_expired(&state),
        Err(()) => state.try_again(),
    }
}
