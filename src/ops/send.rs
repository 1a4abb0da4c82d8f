//! `newsdesk send`: mails the issue to the list address, or with `--to` to test
//! addresses, through the configured transport.
//!
//! The message sent is byte for byte the one `preview` wrote (same render, same
//! Message-ID and boundary; only `Date` follows the clock unless `SOURCE_DATE_EPOCH`
//! fixes it). A list send is recorded in the ledger and refused the second time unless
//! `--force`; it is recorded as sent only once the server accepted it. Test sends carry
//! the list's headers and body unchanged (with a Message-ID of their own) and are not
//! recorded.

use super::preview::{self, Prepared, PreviewArgs};
use crate::cli::{Format, SelectArgs, print_report};
use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::store::ledger::list::{self as ledger, Outcome, ListStatus};
use crate::transport::{self, Failure, RetryPolicy};
use clap::Args;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `newsdesk send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Send this post (slug or file name) instead of the newest.
    #[arg(long, value_name = "SLUG")]
    pub post: Option<String>,
    /// Test send to ADDR instead of the list (repeatable); not recorded as sent.
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Vec<String>,
    /// Send even if the ledger says this issue already went to the list.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation (for scripts).
    #[arg(short, long)]
    pub yes: bool,
    /// Do what `preview` does instead: write the message, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output folder for `--dry-run` [default: `_preview` beside the config file].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// `--subscribers` and its flags: per-subscriber sends (src/delivery).
    #[command(flatten)]
    pub subscriber_send: crate::ops::send_subscribers::SubscriberArgs,
}

/// How one destination fared.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub address: String,
    /// A `--to` test send (not recorded in the ledger).
    pub test: bool,
    pub message_id: String,
    pub attempts: u32,
    /// The server's reply when accepted.
    pub reply: Option<String>,
    pub error: Option<Failure>,
}

/// Runs `newsdesk send`; returns the exit code.
pub fn run(config: &Config, posts_dir: Option<&Path>, args: &SendArgs, cwd: Option<&Path>) -> ExitCode {
    if args.subscriber_send.subscribers {
        return crate::ops::send_subscribers::run(&crate::ops::send_subscribers::Invocation {
            config,
            posts_dir,
            selection: args.select.selection(),
            post: args.post.as_deref(),
            flags: &args.subscriber_send,
            yes: args.yes,
            dry_run: args.dry_run,
            format: args.format,
            cwd,
        });
    }
    if args.dry_run {
        let p = PreviewArgs {
            select: args.select,
            post: args.post.clone(),
            out: args.out.clone(),
            open: false,
            format: args.format,
        };
        return preview::run(config, posts_dir, &p, cwd);
    }
    let human = args.format == Format::Human;
    let mut report = Report::default();
    let fail = |mut report: Report, extra: serde_json::Value| {
        report.sort();
        print_report(&report, args.format, cwd, extra);
        ExitCode::FAILURE
    };

    // Test addresses first: a typo is reported before anything is rendered.
    let mut tests = Vec::new();
    for a in &args.to {
        match a.trim().parse::<lettre::Address>() {
            Ok(addr) => tests.push(addr),
            Err(e) => report.push(
                Diagnostic::error("bad-address", format!("`--to {a}` is not a mail address: {e}"))
                    .help("write a bare address, e.g. `--to editor@example.org`"),
            ),
        }
    }
    if report.has_errors() {
        return fail(report, serde_json::json!({ "ok": false }));
    }
    let Some((_archive, digest)) =
        preview::load_and_render(config, posts_dir, args.select.selection(), args.post.as_deref(), &mut report)
    else {
        return fail(report, serde_json::json!({ "ok": false }));
    };
    let is_test = !tests.is_empty();
    let recipients = if is_test {
        tests.iter().map(|a| digest.test_recipient(a.clone())).collect::<Vec<_>>()
    } else {
        match digest.list_recipient() {
            Some(r) => vec![r],
            None => {
                report.push(
                    Diagnostic::error("no-list-address", "there is no list address to send to")
                        .in_file(&config.path)
                        .help("set `to = \"list@example.org\"` under [email], or pass `--to ADDR` for a test send"),
                );
                return fail(report, serde_json::json!({ "ok": false }));
            }
        }
    };
    let issue_id = digest.issue_id.clone();
    let list_address = digest.settings.to.as_ref().map(|m| m.email.to_string());

    // A list send holds the same lock as a subscriber send for its whole run: two
    // sends of one database never overlap.
    let _lock = if is_test {
        None
    } else {
        match crate::store::lock::SendLock::acquire(&config.database_path()) {
            Ok(l) => Some(l),
            Err(e) => {
                report.push(Diagnostic::error("send-running", e.to_string()));
                return fail(report, serde_json::json!({ "ok": false }));
            }
        }
    };
    // The ledger: refuse a second list send before asking or connecting.
    let mut conn = if is_test {
        None
    } else {
        match crate::store::db::open(&config.database_path()) {
            Ok(c) => Some(c),
            Err(e) => {
                report.push(e.diagnostic());
                return fail(report, serde_json::json!({ "ok": false }));
            }
        }
    };
    if let (Some(conn), Some(list)) = (&conn, &list_address)
        && !args.force
    {
        match ledger::blocking_send(conn, &issue_id, list) {
            Ok(Some(prev)) => {
                return fail(
                    already_sent(&mut report, &prev, list, &digest.post_source),
                    serde_json::json!({ "ok": false, "already_sent": prev }),
                );
            }
            Ok(None) => {}
            Err(e) => {
                report.push(crate::store::db::DbError::at(&config.database_path(), e).diagnostic());
                return fail(report, serde_json::json!({ "ok": false }));
            }
        }
    }
    let signer = match crate::transport::dkim::Signer::for_command(config) {
        Ok(s) => s,
        Err(d) => {
            report.push(d);
            return fail(report, serde_json::json!({ "ok": false }));
        }
    };
    let mailer = match transport::mailer(config) {
        Ok(m) => m,
        Err(d) => {
            report.push(d);
            return fail(report, serde_json::json!({ "ok": false }));
        }
    };

    // Build every message before anything goes out; the digest was rendered once.
    let mut prepared: Vec<Prepared> = Vec::new();
    for (i, r) in recipients.into_iter().enumerate() {
        let mut copies = Report::default();
        // Every copy has the same body: its warnings are reported once.
        let target = if i == 0 { &mut report } else { &mut copies };
        match preview::for_recipient(&digest, r, signer.as_ref(), target) {
            Some(p) => prepared.push(p),
            None => {
                report.extend(copies.diagnostics);
                return fail(report, serde_json::json!({ "ok": false }));
            }
        }
    }
    report.sort();
    if human {
        eprint!("{}", report.render(cwd));
    }

    let destinations: Vec<String> =
        prepared.iter().flat_map(|p| p.envelope.to().iter().map(ToString::to_string)).collect();
    if human {
        print!("{}", preview::human_summary(&prepared[0].summary, cwd));
        println!("Send to:    {}{}", destinations.join(", "), if is_test { " (test send; not recorded)" } else { "" });
        println!("Transport:  {}", mailer.describe());
    }
    if !args.yes && std::io::stdin().is_terminal() && !confirm(&prepared[0].summary.subject, &destinations) {
        eprintln!("nothing was sent");
        return ExitCode::FAILURE;
    }

    let policy = RetryPolicy::from_config(config);
    let mut deliveries = Vec::new();
    let mut all_ok = true;
    for p in &prepared {
        let address = p.envelope.to().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let ledger_row = match (&mut conn, is_test) {
            (Some(conn), false) => {
                let issue = crate::store::ledger::IssueKey {
                    id: issue_id.clone(),
                    label: digest
                        .post_source
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or(digest.slug.clone()),
                };
                match ledger::claim(conn, &issue, &address, &p.summary.message_id, &p.summary.subject, args.force) {
                    Ok(ledger::Claim::Started(id)) => Some(id),
                    Ok(ledger::Claim::Blocked(prev)) => {
                        let r = already_sent(&mut report, &prev, &address, &digest.post_source);
                        return fail(r, serde_json::json!({ "ok": false, "already_sent": prev }));
                    }
                    Err(e) => {
                        report.push(crate::store::db::DbError::at(&config.database_path(), e).diagnostic());
                        return fail(report, serde_json::json!({ "ok": false }));
                    }
                }
            }
            _ => None,
        };
        let mut attempts_seen = 1;
        let result = transport::send_with_retry(&mailer, &p.envelope, &p.eml, policy, |e, attempt, wait| {
            attempts_seen = attempt + 1;
            if human {
                eprintln!(
                    "temporary failure sending to {address}: {e}; retrying in {:.1}s (attempt {} of {})",
                    wait.as_secs_f64(),
                    attempt + 1,
                    policy.max_attempts
                );
            }
        });
        let delivery = match result {
            Ok(accepted) => {
                if let (Some(conn), Some(id)) = (&conn, ledger_row)
                    && let Err(e) = ledger::finish(conn, id, Outcome::Sent, &accepted.reply, attempts_seen)
                {
                    report.push(Diagnostic::error(
                        "database",
                        format!("the message was sent, but recording it failed: {e}; do not send again without checking the list"),
                    ));
                    all_ok = false;
                }
                if human {
                    println!("sent to {address}: {}", accepted.reply);
                }
                Delivery {
                    address,
                    test: is_test,
                    message_id: p.summary.message_id.clone(),
                    attempts: attempts_seen,
                    reply: Some(accepted.reply),
                    error: None,
                }
            }
            Err((e, attempts)) => {
                all_ok = false;
                let diagnostic = if e.is_unknown() {
                    // The server may have it: the row stays `sending`, so the next `send`
                    // refuses until the editor has looked (`--force`).
                    let next = if is_test {
                        "look in that mailbox before sending again"
                    } else {
                        "check the list's archive: if the issue is there, it was sent; if not, `newsdesk send --force` \
                         sends it (until then `newsdesk send` refuses, so nobody gets it twice)"
                    };
                    Diagnostic::error("send-unknown", format!("the message to {address} may have been delivered: {e}"))
                        .help(next)
                } else {
                    let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
                    Diagnostic::error("send-failed", format!("sending to {address} failed{tries}: {e}"))
                        .help(format!("{}; nothing was recorded as sent", mailer.help(&e)))
                };
                if let (Some(conn), Some(id)) = (&conn, ledger_row) {
                    let outcome = if e.is_unknown() {
                        Outcome::Unknown
                    } else if e.is_temporary() {
                        Outcome::FailedTemporary
                    } else {
                        Outcome::FailedPermanent
                    };
                    let _ = ledger::finish(conn, id, outcome, &e.to_string(), attempts);
                }
                report.push(diagnostic);
                Delivery {
                    address,
                    test: is_test,
                    message_id: p.summary.message_id.clone(),
                    attempts,
                    reply: None,
                    error: Some(e),
                }
            }
        };
        deliveries.push(delivery);
    }
    let errors: Vec<Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    match args.format {
        Format::Human => {
            let r = Report { diagnostics: errors };
            eprint!("{}", r.render(cwd));
        }
        Format::Json => print_report(
            &report,
            Format::Json,
            cwd,
            serde_json::json!({ "ok": all_ok, "message": prepared[0].summary, "deliveries": deliveries }),
        ),
    }
    if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Asks on the terminal; true only for an explicit yes.
fn confirm(subject: &str, destinations: &[String]) -> bool {
    eprint!("Send \"{subject}\" to {}? [y/N] ", destinations.join(", "));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The refusal of a second list send, added to `report`.
fn already_sent(report: &mut Report, prev: &ledger::ListSend, list: &str, post: &Path) -> Report {
    let (what, help) = match prev.status {
        ListStatus::Sent => (
            format!(
                "this issue was already sent to {list} on {} (Message-ID {}, the server answered `{}`)",
                prev.sent_at.as_deref().unwrap_or(&prev.started_at),
                prev.message_id,
                prev.server_reply.as_deref().unwrap_or("")
            ),
            "pass `--force` to send it again, or `--to ADDR` for a test send",
        ),
        _ => (
            match &prev.server_reply {
                Some(why) => {
                    format!("a send of this issue to {list} on {} may have been delivered: {why}", prev.started_at)
                }
                None => format!(
                    "a send of this issue to {list} started on {} and never finished: the server may or may not have accepted it",
                    prev.started_at
                ),
            },
            "check the list's archive; if the issue is not there, pass `--force` to send it",
        ),
    };
    report.push(Diagnostic::error("already-sent", what).in_file(post).help(help));
    std::mem::take(report)
}
