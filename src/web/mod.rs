//! `newsdesk serve`: the subscriber-facing web endpoints, beside [`crate::cli`] and
//! calling [`crate::ops`] like it (never `cli`).
//!
//! What is here so far is the unsubscribe link every subscriber message carries
//! (`List-Unsubscribe: <…/unsubscribe/TOKEN>` with `List-Unsubscribe-Post`):
//!
//! - `POST /unsubscribe/{token}` unsubscribes at once (RFC 8058 one-click: a mailbox
//!   provider posts `List-Unsubscribe=One-Click`; the page's button posts the same),
//!   committed before the answer. Unknown, malformed and repeated tokens get the same
//!   answer, so the endpoint says nothing about who subscribes.
//! - `GET /unsubscribe/{token}` never changes anything (mail scanners and link previews
//!   fetch every link): it shows a page with one button that posts.
//! - `GET /healthz` answers `ok`.
//!
//! Every answer carries a strict Content-Security-Policy, `Referrer-Policy: no-referrer`
//! (the URL holds a secret) and `Cache-Control: no-store`; request bodies are capped at
//! 16 KiB and requests time out. SQLite work runs on one database thread ([`db`]), never
//! on the async threads, with the unsubscribes waiting at a moment in one commit. Tokens
//! never appear in answers or errors.

mod db;

use crate::config::Config;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest request body accepted (a one-click POST is 26 bytes).
pub const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share: the config (for the site's name) and the database thread.
#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    db: db::Database,
}

impl AppState {
    /// Starts the database thread for `config`'s database.
    pub fn new(config: Config) -> AppState {
        let db = db::Database::start(config.database_path());
        AppState { config: Arc::new(config), db }
    }
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

/// Serves until `shutdown` resolves, then lets the requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// `GET /unsubscribe/{token}`: a page with one button; changes nothing.
async fn unsubscribe_page(State(state): State<AppState>, Path(_token): Path<String>) -> Html<String> {
    // The form posts to this same URL: the token never appears in the page.
    Html(page(
        &state,
        "Unsubscribe",
        "<p>Press the button to stop getting this newsletter.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>",
    ))
}

/// `POST /unsubscribe/{token}`: unsubscribes (committed before the answer). The same
/// answer for every token, known or not, so the endpoint is no oracle.
async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>, _body: Bytes) -> Response {
    match state.db.unsubscribe(token).await {
        db::Unsubscribed::Done => {
            Html(page(&state, "Unsubscribed", "<p>You are unsubscribed: you will get no further issues.</p>"))
                .into_response()
        }
        // A database that cannot be written: say so, so the provider (or the reader)
        // tries again rather than believing it worked.
        db::Unsubscribed::Failed => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(page(&state, "Try again", "<p>Unsubscribing failed for a moment. Please try again later.</p>")),
        )
            .into_response(),
    }
}

/// A page in the mail's look (email-templates/digest.html): the blue masthead with the
/// site's name, the same fonts, colours and 640 px column.
fn page(state: &AppState, title: &str, body: &str) -> String {
    let site = minijinja::HtmlEscape(&state.config.site.title).to_string();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {site}</title><style>\
         body{{margin:0;padding:24px 12px;background:#eef1f5;font:16px/1.6 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933}}\
         main{{max-width:640px;margin:0 auto;background:#fff;border-radius:6px}}\
         header{{background:#326ce5;color:#fff;padding:20px 32px;border-radius:6px 6px 0 0;font-size:15px;font-weight:600;letter-spacing:.02em}}\
         section{{padding:28px 32px 20px}}h1{{font-size:28px;line-height:1.25;margin:0 0 12px;color:#111827}}\
         button{{font:inherit;font-weight:600;padding:10px 22px;border:0;border-radius:6px;background:#326ce5;color:#fff;cursor:pointer}}\
         </style></head><body><main><header>{site}</header><section><h1>{title}</h1>{body}</section></main></body></html>\n"
    )
}
