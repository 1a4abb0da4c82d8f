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

mod bounces;
mod build;
mod check;
mod inbox;
mod new;
mod preview;
mod publish;
mod send;
mod serve;
mod social;
mod status;
mod subscribers;

const EXAMPLES: &str = "\
Examples:
  newsdesk new                        start the next issue in posts/ from post.md
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
    /// Start the next issue: its post from the template, named and dated by the archive's rule.
    #[command(
        after_help = "The issue is named for its week's last day ([new] week_ends, Sunday): title \"Week Ending August 16, 2026\",\nfile and slug 2026-08-16-update; dated the next [new] publish_weekday at publish_time ([site] timezone).\nAn existing file is never overwritten. Prints the new file's path."
    )]
    New(new::NewArgs),
    /// Publication day: check, build the feeds, preview, confirm, send, ping the hub, print the social texts.
    #[command(
        after_help = "Each finished step is recorded for the issue (.newsdesk/publish/LABEL.json): run again after an\nerror or an interruption, it goes on from the first unfinished step, and never sends twice. The issue is the newest dated\ntoday or earlier (one dated tonight goes out early, after saying so). The send is to Buttondown, the\nlist address ([email] to) or the subscribers, as configured."
    )]
    Publish(publish::PublishArgs),
    /// Print the issue's announcement for Bluesky and Mastodon, fitted to each one's limit.
    #[command(
        after_help = "Highlights come from the front matter (`highlights:`) or the entries under Featured PRs and\nKEP of the Week; they are dropped from the end until the text fits (Bluesky: 300 graphemes; Mastodon:\n500 characters, every link counted as 23). Nothing is posted."
    )]
    Social(social::SocialArgs),
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
        /// Treat warnings as errors (the deliverability report's too).
        #[arg(long)]
        strict: bool,
        /// Also look up the DKIM key, SPF and DMARC records in DNS.
        #[arg(long)]
        dns: bool,
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
        /// Then tell the WebSub hub (`[feeds] hub`) that the feeds changed.
        #[arg(long)]
        ping: bool,
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
    /// Read bounces and complaints: explain them (`parse`) or apply them to the list (`ingest`).
    Bounces {
        #[command(subcommand)]
        action: bounces::BouncesCommand,
    },
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
        Selection { drafts: self.drafts, future: self.future, now: now() }
    }

    /// [`Self::selection`] for a command that renders or sends `--post`: a post dated
    /// later than now needs `--future`, or, on a terminal, a yes to the question.
    pub fn selection_for(&self, config: &crate::config::Config, post: Option<&str>, format: Format) -> Selection {
        let mut selection = self.selection();
        if let Some(wanted) = post
            && !selection.future
            && format == Format::Human
            && std::io::IsTerminal::is_terminal(&std::io::stdin())
            && let Some((title, ahead)) = crate::ops::issue::dated_ahead(config, wanted, selection.now)
        {
            selection.future = confirm(&format!("\"{title}\" is {ahead}. Use it anyway?"));
        }
        selection
    }
}

/// The variable that sets the time commands take for now (RFC 3339): for tests, and
/// for rehearsing publication day before it comes.
pub const NOW_VAR: &str = "NEWSDESK_NOW";

/// Now, as commands see it: `NEWSDESK_NOW` when set (checked once in [`run`]), else the
/// clock.
pub fn now() -> chrono::DateTime<chrono::FixedOffset> {
    std::env::var(NOW_VAR)
        .ok()
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v.trim()).ok())
        .unwrap_or_else(|| chrono::Utc::now().fixed_offset())
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
    if let Ok(v) = std::env::var(NOW_VAR)
        && chrono::DateTime::parse_from_rfc3339(v.trim()).is_err()
    {
        eprintln!(
            "error: {NOW_VAR}=`{v}` is not an RFC 3339 time\n  = help: write it like `2026-12-10T21:00:00+00:00`, or unset it to use the clock"
        );
        return ExitCode::from(2);
    }
    // Explaining bounce files needs no config.
    if let Command::Bounces { action: bounces::BouncesCommand::Parse { files, format } } = &cli.command {
        return bounces::run_parse(files, *format, &ctx);
    }
    let mut config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(diags) => {
            let report = Report { diagnostics: diags };
            let format = match &cli.command {
                Command::Check { format, .. } | Command::Build { format, .. } => *format,
                Command::Preview(a) => a.format,
                Command::Send(a) => a.format,
                Command::Subscribers { action } => action.format(),
                Command::Bounces { action } => action.format(),
                Command::New(a) => a.format,
                Command::Social(a) => a.format,
                Command::Publish(a) => a.format,
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
        Command::Check { select, strict, dns, format } => {
            check::run(&config, select.selection(), strict, dns, format, &ctx)
        }
        Command::Build { select, out, ping, format } => {
            build::run(&config, select.selection(), out, ping, format, &ctx)
        }
        Command::Preview(args) => preview::run(&config, &args, &ctx),
        Command::Send(args) => send::run(&config, &args, &ctx),
        Command::Subscribers { action } => subscribers::run(&config, action, &ctx),
        Command::Unsubscribe { token, email } => subscribers::run_unsubscribe(&config, token, email, &ctx),
        Command::Status { post, format } => status::run(&config, post, format),
        Command::Serve(args) => serve::run(&config, &args, &ctx),
        Command::Inbox => inbox::run(&config, &ctx),
        Command::Bounces { action } => bounces::run(&config, action, &ctx),
        Command::New(args) => new::run(&config, &args, &ctx),
        Command::Social(args) => social::run(&config, &args, &ctx),
        Command::Publish(args) => publish::run(&config, &args, &ctx),
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

/// `--dns`: the name server from `NEWSDESK_DNS_SERVER` (`IP:PORT`) when set, else the
/// system's. Read here, once, so `ops` sees a plain option.
fn dns_options(dns: bool) -> Result<Option<crate::ops::deliverability::DnsOptions>, String> {
    if !dns {
        return Ok(None);
    }
    let nameserver = match std::env::var("NEWSDESK_DNS_SERVER") {
        Ok(v) if !v.trim().is_empty() => Some(
            v.trim()
                .parse()
                .map_err(|_| format!("NEWSDESK_DNS_SERVER=`{v}` is not an IP:PORT address (e.g. `127.0.0.1:53`)"))?,
        ),
        _ => None,
    };
    Ok(Some(crate::ops::deliverability::DnsOptions { nameserver }))
}

/// The deliverability report for people: one line per check (`ok`, `warning`,
/// `error`, its name and what was found), the hint under each that is not ok.
fn human_deliverability(checks: &[crate::deliverability::Check]) -> String {
    use crate::deliverability::{Status, count};
    let mut out = String::from("Deliverability (the message as a receiver checks it):\n");
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        out.push_str(&format!("  {:<8} {:<width$}  {}\n", c.status.as_str(), c.name, c.detail));
        if c.status != Status::Ok
            && let Some(hint) = &c.hint
        {
            out.push_str(&format!("  {:<8} {:<width$}  help: {hint}\n", "", ""));
        }
    }
    let (w, e) = (count(checks, Status::Warning), count(checks, Status::Error));
    out.push_str(&format!(
        "  {} ok, {w} warning{}, {e} error{}\n",
        count(checks, Status::Ok),
        if w == 1 { "" } else { "s" },
        if e == 1 { "" } else { "s" }
    ));
    out
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
