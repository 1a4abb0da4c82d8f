//! The command line: arguments (clap derive), and the only place that prints,
//! prompts, draws progress, handles Ctrl-C or makes an exit code.
//!
//! One file per command: it turns its arguments into the options of one
//! [`crate::ops`] function, calls it and prints the outcome (for people on stderr and
//! stdout, or as one JSON object on stdout with `--format json`).

use crate::config;
use crate::diag::Report;
use crate::model::Selection;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod build;
mod check;
mod inbox;
mod preview;
mod send;
mod serve;
mod status;
mod subscribers;

const EXAMPLES: &str = "\
Examples:
  newsdesk check                      check config.toml and every post
  newsdesk build                      write rss.xml, atom.xml and feed.json to _site/
  newsdesk -c site/config.toml build --out public/
  newsdesk preview --open             render the newest issue as mail into _preview/
  newsdesk send --to me@example.org   test send of the newest issue
  newsdesk send                       send it to the list ([email] to), once
  newsdesk --posts ../lwkd/_posts check --format json";

/// A publisher for weekly newsletters: feeds and email from markdown posts.
#[derive(Debug, Parser)]
#[command(name = "newsdesk", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The config file; relative paths in it are relative to its folder.
    #[arg(short, long, global = true, default_value = "config.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Read posts from DIR instead of `[site] posts`.
    #[arg(long, global = true, value_name = "DIR")]
    pub posts: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the newest issue as email into `_preview/` for review (never sends).
    Preview(preview::PreviewArgs),
    /// Send the newest issue to the list address, or a test send with `--to ADDR`.
    #[command(
        after_help = "An issue is sent to the list once; a second `send` is refused unless --force.\nExit status: 0 when every message was accepted, 1 otherwise."
    )]
    Send(send::SendArgs),
    /// Check the config and every post; report all problems.
    #[command(
        after_help = "Exit status: 0 when there are no errors, 1 when there are (with --strict, warnings count too)."
    )]
    Check {
        #[command(flatten)]
        select: SelectArgs,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Check, then write the RSS, Atom and JSON feeds (nothing is written if there are errors).
    Build {
        #[command(flatten)]
        select: SelectArgs,
        /// Output folder.
        #[arg(long, default_value = "_site", value_name = "DIR")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Manage the subscriber list (import, export, add, remove, list).
    Subscribers {
        #[command(subcommand)]
        action: subscribers::SubscribersCommand,
    },
    /// Unsubscribe a reader by the token of their unsubscribe link (the editor: `--email ADDR`).
    #[command(
        after_help = "The unsubscribe page runs `newsdesk unsubscribe -- TOKEN` with the token from the link's URL.\nAn address is only taken with --email, so a page passing on what a visitor sent can only\nunsubscribe the holder of that link. Exit status: 0 when the subscriber is (now) unsubscribed."
    )]
    Unsubscribe {
        /// The token from the subscriber's unsubscribe link (32 hexadecimal digits).
        #[arg(value_name = "TOKEN", required_unless_present = "email", conflicts_with = "email")]
        token: Option<String>,
        /// Unsubscribe this address instead (for the editor; never pass a visitor's input here).
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
    },
    /// Read one message on stdin (an MTA pipe for the unsubscribe address) and unsubscribe whom it names.
    #[command(
        after_help = "Pipe the mail to `[email] unsubscribe_mailto` here, e.g. in /etc/aliases:\n  lwkd-unsubscribe: \"|newsdesk -c /srv/lwkd/config.toml inbox\"\nA token in the message (the address `lwkd+unsubscribe+TOKEN@...` that subscriber mail names, or a quoted\nunsubscribe link) wins; else the sender is unsubscribed. Exit status: 0 when handled, 75 (try again) when\nthe database cannot be used."
    )]
    Inbox,
    /// Serve the subscriber web endpoints (subscribe with double opt-in, one-click unsubscribe) on 127.0.0.1.
    #[command(
        after_help = "Run it behind a reverse proxy that terminates TLS and set `[web] public_url` to the address readers\nuse: subscriber mail then links to its `/unsubscribe/{token}`, and `/subscribe` takes sign-ups (confirmed\nby mail). Logs one line per request on stderr, tokens masked. Stops on SIGTERM or Ctrl-C after the\nrequests in flight."
    )]
    Serve(serve::ServeArgs),
    /// Show the subscriber send ledger: counts per state and permanent failures.
    Status {
        /// Only this issue (slug, file name without `.md`, or post id).
        #[arg(long, value_name = "SLUG")]
        post: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// Which posts are published in this run.
#[derive(Debug, Clone, Copy, Args)]
pub struct SelectArgs {
    /// Include drafts (`published: false`).
    #[arg(long)]
    pub drafts: bool,
    /// Include posts dated in the future.
    #[arg(long)]
    pub future: bool,
}

impl SelectArgs {
    pub fn selection(&self) -> Selection {
        Selection { drafts: self.drafts, future: self.future, now: chrono::Utc::now().fixed_offset() }
    }
}

/// Output for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Where the command runs, for showing paths relative to it.
#[derive(Debug, Clone)]
pub struct Context {
    pub cwd: Option<PathBuf>,
}

impl Context {
    /// `p` as the user would type it from here.
    pub fn show(&self, p: &Path) -> String {
        crate::diag::display_path(p, self.cwd.as_deref())
    }

    fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let ctx = Context { cwd: std::env::current_dir().ok() };
    let mut config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(diags) => {
            let report = Report { diagnostics: diags };
            let format = match &cli.command {
                Command::Check { format, .. } | Command::Build { format, .. } => *format,
                Command::Preview(a) => a.format,
                Command::Send(a) => a.format,
                Command::Subscribers { action } => action.format(),
                Command::Unsubscribe { .. } | Command::Serve(_) | Command::Inbox => Format::Human,
                Command::Status { format, .. } => *format,
            };
            print_report(&report, format, &ctx, serde_json::json!({}));
            return ExitCode::FAILURE;
        }
    };
    // `--posts` replaces `[site] posts` once, here; nothing below knows it was given.
    if let Some(posts) = cli.posts {
        config.posts_dir = posts;
    }
    match cli.command {
        Command::Check { select, strict, format } => check::run(&config, select.selection(), strict, format, &ctx),
        Command::Build { select, out, format } => build::run(&config, select.selection(), out, format, &ctx),
        Command::Preview(args) => preview::run(&config, &args, &ctx),
        Command::Send(args) => send::run(&config, &args, &ctx),
        Command::Subscribers { action } => subscribers::run(&config, action, &ctx),
        Command::Unsubscribe { token, email } => subscribers::run_unsubscribe(&config, token, email, &ctx),
        Command::Status { post, format } => status::run(&config, post, format),
        Command::Serve(args) => serve::run(&config, &args, &ctx),
        Command::Inbox => inbox::run(&config, &ctx),
    }
}

/// Asks `question [y/N]` on the terminal; true only for an explicit yes.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn exit(failed: bool) -> ExitCode {
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Human: diagnostics and a tally on stderr. JSON: one object on stdout, `extra`'s keys merged in.
fn print_report(report: &Report, format: Format, ctx: &Context, extra: serde_json::Value) {
    match format {
        Format::Human => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(report.render(ctx.cwd()).as_bytes());
            if let Some(t) = report.tally() {
                let _ = writeln!(err, "{t} found");
            }
        }
        Format::Json => {
            let diags: Vec<serde_json::Value> = report
                .diagnostics
                .iter()
                .map(|d| {
                    let mut v = serde_json::to_value(d).unwrap_or_default();
                    if let (Some(obj), Some(f)) = (v.as_object_mut(), &d.file) {
                        obj.insert("file".into(), ctx.show(f).into());
                    }
                    v
                })
                .collect();
            let mut obj = serde_json::json!({
                "errors": report.errors(),
                "warnings": report.warnings(),
                "diagnostics": diags,
            });
            if let (Some(o), Some(e)) = (obj.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    o.insert(k.clone(), v.clone());
                }
            }
            println!("{}", serde_json::to_string_pretty(&obj).unwrap_or_default());
        }
    }
}
