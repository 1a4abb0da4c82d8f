//! `newsdesk send`: mails the issue to the list address, or with `--to` to test
//! addresses, through the configured transport.
//!
//! The message sent is byte for byte the one `preview` wrote (same render, same
//! Message-ID and boundary; only `Date` follows the clock unless `SOURCE_DATE_EPOCH`
//! fixes it). A list send is recorded in the ledger and refused the second time unless
//! `--force`; it is recorded as sent only once the server accepted it. Test sends carry
//! the list's headers and body unchanged (with a Message-ID of their own) and are not
//! recorded.
//!
//! Two steps, so the caller can show what will happen and ask before anything goes
//! out: [`prepare`] renders every message and checks the ledger, [`ListSend::send`]
//! sends.

use super::issue::{self, Audience};
use super::preview::{self, MessageSummary, Prepared};
use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::model::Selection;
use crate::store::db::{self, DbError};
use crate::store::ledger::IssueKey;
use crate::store::ledger::list::{self as ledger, ListStatus, Outcome};
use crate::store::lock::SendLock;
use crate::transport::{self, Failure, Mailer, RetryPolicy};
use rusqlite::Connection;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `newsdesk send` (without `--subscribers`) sends, and to whom.
#[derive(Debug, Clone)]
pub struct SendOptions {
    pub selection: Selection,
    /// `--post`: this post instead of the newest.
    pub post: Option<String>,
    /// `--to`: test addresses instead of the list (not recorded in the ledger).
    pub to: Vec<String>,
    /// Send even if the ledger says this issue already went to the list.
    pub force: bool,
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

/// A send stopped before (or instead of) mailing: the errors, and the earlier send
/// that blocks this one, if that was the reason.
#[derive(Debug)]
pub struct Refused {
    pub report: Report,
    pub already_sent: Option<ledger::ListSend>,
}

impl From<Report> for Refused {
    fn from(report: Report) -> Refused {
        Refused { report, already_sent: None }
    }
}

/// A send ready to go: every message built, the ledger checked, the send lock held (a
/// list send and a subscriber send of one database never overlap).
pub struct ListSend {
    /// The warnings so far (the body's and the mail's, once).
    pub report: Report,
    /// One message per destination, in order.
    pub prepared: Vec<Prepared>,
    /// A `--to` test send.
    pub is_test: bool,
    mailer: Mailer,
    policy: RetryPolicy,
    conn: Option<Connection>,
    database: PathBuf,
    issue: IssueKey,
    post_source: PathBuf,
    force: bool,
    _lock: Option<SendLock>,
}

/// What happens while a send runs, for the caller to show.
#[derive(Debug)]
pub enum SendEvent<'a> {
    /// A temporary failure; the next attempt starts after `wait`.
    Retrying { address: &'a str, failure: &'a Failure, attempt: u32, max_attempts: u32, wait: Duration },
    /// The server accepted the message.
    Sent { address: &'a str, reply: &'a str },
}

/// What a send did: every destination's delivery, and the report (errors of failed
/// destinations included).
#[derive(Debug)]
pub struct SendOutcome {
    pub report: Report,
    pub message: MessageSummary,
    pub deliveries: Vec<Delivery>,
    /// Every message was accepted and recorded.
    pub ok: bool,
}

/// Renders the issue, builds every message and checks the ledger, so that nothing is
/// sent when any of it fails. A second list send of an issue is refused unless `force`.
pub fn prepare(config: &Config, options: &SendOptions) -> Result<ListSend, Refused> {
    let mut report = Report::default();
    let mut blocked = None;
    match prepare_in(config, options, &mut report, &mut blocked) {
        Some(send) => {
            report.sort();
            Ok(ListSend { report, ..send })
        }
        None => Err(Refused { report, already_sent: blocked }),
    }
}

/// [`prepare`]'s steps; `None` when one fails (its errors in `report`, and the earlier
/// send in `blocked` when that is why).
fn prepare_in(
    config: &Config,
    options: &SendOptions,
    report: &mut Report,
    blocked: &mut Option<ledger::ListSend>,
) -> Option<ListSend> {
    // Test addresses first: a typo is reported before anything is rendered.
    let mut tests = Vec::new();
    for a in &options.to {
        match a.trim().parse::<lettre::Address>() {
            Ok(addr) => tests.push(addr),
            Err(e) => report.push(
                Diagnostic::error("bad-address", format!("`--to {a}` is not a mail address: {e}"))
                    .help("write a bare address, e.g. `--to editor@example.org`"),
            ),
        }
    }
    // A suppressed address (bounced, or its reader reported spam) is never mailed, a
    // test send included. Without a database there is nothing suppressed.
    let database = config.database_path();
    if !tests.is_empty() && database.exists() {
        match crate::store::db::open(&database) {
            Ok(conn) => {
                for t in &tests {
                    if let Ok(Some((reason, since))) = crate::store::bounces::suppression_of(&conn, t.as_ref()) {
                        report.push(
                            Diagnostic::error(
                                "suppressed-address",
                                format!(
                                    "`--to {t}`: mail to this address {} on {since}, so newsdesk does not send to it",
                                    crate::store::subscribers::suppression_words(&reason)
                                ),
                            )
                            .help("test with another address; if this one works again, `newsdesk subscribers add ADDR --resubscribe` lifts the suppression"),
                        );
                    }
                }
            }
            Err(e) => report.push(e.diagnostic()),
        }
    }
    if report.has_errors() {
        return None;
    }
    let digest = issue::prepare(config, options.selection, options.post.as_deref(), Audience::List, report)?.digest;
    let is_test = !tests.is_empty();
    let recipients = if is_test {
        tests.iter().map(|a| digest.test_recipient(a.clone())).collect::<Vec<_>>()
    } else {
        let Some(r) = digest.list_recipient() else {
            report.push(
                Diagnostic::error("no-list-address", "there is no list address to send to")
                    .in_file(&config.path)
                    .help("set `to = \"list@example.org\"` under [email], or pass `--to ADDR` for a test send"),
            );
            return None;
        };
        vec![r]
    };
    let database = config.database_path();
    // A list send holds the same lock as a subscriber send for its whole run (two sends
    // of one database never overlap), and reads the ledger: a second list send is
    // refused before asking or connecting.
    let (lock, conn) = if is_test {
        (None, None)
    } else {
        let lock = SendLock::acquire(&database)
            .map_err(|e| report.push(Diagnostic::error("send-running", e.to_string())))
            .ok()?;
        let conn = db::open(&database).map_err(|e| report.push(e.diagnostic())).ok()?;
        if let Some(list) = digest.settings.to.as_ref().map(|m| m.email.to_string())
            && !options.force
        {
            match ledger::blocking_send(&conn, &digest.issue_id, &list) {
                Ok(Some(prev)) => {
                    report.push(already_sent(&prev, &list, &digest.post_source));
                    *blocked = Some(prev);
                    return None;
                }
                Ok(None) => {}
                Err(e) => {
                    report.push(DbError::at(&database, e).diagnostic());
                    return None;
                }
            }
        }
        (Some(lock), Some(conn))
    };
    let signer = crate::transport::dkim::Signer::for_command(config).map_err(|d| report.push(d)).ok()?;
    let mailer = transport::mailer(config).map_err(|d| report.push(d)).ok()?;

    // Build every message before anything goes out; the digest was rendered once.
    let mut prepared: Vec<Prepared> = Vec::new();
    for (i, r) in recipients.into_iter().enumerate() {
        let mut copies = Report::default();
        // Every copy has the same body: its warnings are reported once.
        let target = if i == 0 { &mut *report } else { &mut copies };
        let p = preview::for_recipient(&digest, r, signer.as_ref(), target);
        report.extend(copies.diagnostics.into_iter().filter(Diagnostic::is_error));
        prepared.push(p?);
    }
    let label = digest.post_source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(digest.slug.clone());
    Some(ListSend {
        report: Report::default(),
        prepared,
        is_test,
        policy: RetryPolicy::from_config(config),
        mailer,
        conn,
        database,
        issue: IssueKey { id: digest.issue_id.clone(), label },
        post_source: digest.post_source.clone(),
        force: options.force,
        _lock: lock,
    })
}

impl ListSend {
    /// Every destination's address, in order.
    pub fn destinations(&self) -> Vec<String> {
        self.prepared.iter().flat_map(|p| p.envelope.to().iter().map(ToString::to_string)).collect()
    }

    /// The transport, for people (`smtp 127.0.0.1:2525`).
    pub fn transport(&self) -> String {
        self.mailer.describe()
    }

    /// Sends every message, retrying temporary failures; a list send is recorded in the
    /// ledger (`sending` before it goes out, then its outcome).
    pub fn send(mut self, on_event: &mut dyn FnMut(SendEvent)) -> Result<SendOutcome, Refused> {
        let mut report = std::mem::take(&mut self.report);
        let policy = self.policy;
        let is_test = self.is_test;
        let mut deliveries = Vec::new();
        let mut all_ok = true;
        for p in &self.prepared {
            let address = p.envelope.to().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let ledger_row = match &mut self.conn {
                Some(conn) => {
                    match ledger::claim(
                        conn,
                        &self.issue,
                        &address,
                        &p.summary.message_id,
                        &p.summary.subject,
                        self.force,
                    ) {
                        Ok(ledger::Claim::Started(id)) => Some(id),
                        Ok(ledger::Claim::Blocked(prev)) => {
                            report.push(already_sent(&prev, &address, &self.post_source));
                            return Err(Refused { report, already_sent: Some(*prev) });
                        }
                        Err(e) => {
                            report.push(DbError::at(&self.database, e).diagnostic());
                            return Err(report.into());
                        }
                    }
                }
                None => None,
            };
            let mut attempts_seen = 1;
            let result = transport::send_with_retry(&self.mailer, &p.envelope, &p.eml, policy, |e, attempt, wait| {
                attempts_seen = attempt + 1;
                on_event(SendEvent::Retrying {
                    address: &address,
                    failure: e,
                    attempt: attempt + 1,
                    max_attempts: policy.max_attempts,
                    wait,
                });
            });
            let delivery = match result {
                Ok(accepted) => {
                    if let (Some(conn), Some(id)) = (&self.conn, ledger_row)
                        && let Err(e) = ledger::finish(conn, id, Outcome::Sent, &accepted.reply, attempts_seen)
                    {
                        report.push(Diagnostic::error(
                            "database",
                            format!("the message was sent, but recording it failed: {e}; do not send again without checking the list"),
                        ));
                        all_ok = false;
                    }
                    on_event(SendEvent::Sent { address: &address, reply: &accepted.reply });
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
                        Diagnostic::error(
                            "send-unknown",
                            format!("the message to {address} may have been delivered: {e}"),
                        )
                        .help(next)
                    } else {
                        let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
                        Diagnostic::error("send-failed", format!("sending to {address} failed{tries}: {e}"))
                            .help(format!("{}; nothing was recorded as sent", self.mailer.help(&e)))
                    };
                    if let (Some(conn), Some(id)) = (&self.conn, ledger_row) {
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
        let message = self.prepared.swap_remove(0).summary;
        Ok(SendOutcome { report, message, deliveries, ok: all_ok })
    }
}

/// The refusal of a second list send.
fn already_sent(prev: &ledger::ListSend, list: &str, post: &Path) -> Diagnostic {
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
    Diagnostic::error("already-sent", what).in_file(post).help(help)
}
