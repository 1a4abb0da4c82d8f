//! `newsdesk serve`: the subscriber-facing web endpoints until SIGTERM or Ctrl-C.

use super::{Context, Format, print_report};
use crate::config::Config;
use crate::diag::Report;
use crate::web::{self, AppState};
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments of `newsdesk serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on [default: `[web] listen`, else 127.0.0.1:8080]; loopback
    /// only, unless `[web] public_url` is https (a TLS-terminating proxy in front).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

pub fn run(config: &Config, args: &ServeArgs, ctx: &Context) -> ExitCode {
    // The access log and the mailer's lines: info and above, on stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the web server's runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen = args
        .listen
        .or(config.web.as_ref().map(|w| w.listen))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let state = match AppState::new(config.clone()) {
        Ok(s) => s,
        Err(diagnostics) => {
            print_report(&Report { diagnostics }, Format::Human, ctx, serde_json::json!({}));
            return ExitCode::FAILURE;
        }
    };
    let subscribing = state.subscribing();
    let result = runtime.block_on(async move {
        let listener = web::bind(listen, config).await?;
        if let Ok(addr) = listener.local_addr() {
            eprintln!("listening on http://{addr}/ (SIGTERM or Ctrl-C stops after the requests in flight)");
        }
        if !subscribing {
            eprintln!("note: the subscribe form is off: set `public_url` under `[web]` to take sign-ups");
        }
        web::serve(listener, state, shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            eprintln!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
