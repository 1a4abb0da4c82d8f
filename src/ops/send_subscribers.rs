//! `newsdesk send --subscribers`: the issue to every active subscriber, one
//! personalised message each, recorded in the ledger so a second run resumes instead
//! of starting over.
//!
//! Two steps, so the caller can show the plan and ask first: [`prepare`] renders the
//! digest once, checks the message, takes the send lock and reads the plan;
//! [`SubscriberSend::run`] hands the engine a render callback and runs it.

use super::issue::{self, Audience};
use crate::config::{Config, SmtpConfig};
use crate::delivery::engine::{self, EngineSettings, Outgoing, Progress, Request, RunSummary};
use crate::diag::{Diagnostic, Report};
use crate::digest::{Digest, Recipient};
use crate::model::Selection;
use crate::store::ledger::{self, IssueKey, Mode, Row, Started};
use crate::store::lock::SendLock;
use crate::transport::RetryPolicy;
use crate::transport::dkim::Signer;
use crate::transport::smtp::Server;
use lettre::message::Mailbox;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What `newsdesk send --subscribers` does.
#[derive(Debug, Clone)]
pub struct SubscriberSendOptions {
    pub selection: Selection,
    /// `--post`: this post instead of the newest.
    pub post: Option<String>,
    /// Retry only the rows that failed; nothing else is sent.
    pub retry_failed: bool,
    /// Leave rows of an interrupted send ("unknown") alone instead of resending them.
    pub skip_unknown: bool,
    /// Also send to subscribers who joined after this issue's send started.
    pub include_new: bool,
    /// Read the plan and send nothing (the password is not needed).
    pub dry_run: bool,
    /// Start a new issue even when the previous one's complaint or hard-bounce rate is
    /// over the limits.
    pub force: bool,
}

impl SubscriberSendOptions {
    pub fn mode(&self) -> Mode {
        if self.retry_failed { Mode::RetryFailed } else { Mode::Resume { skip_unknown: self.skip_unknown } }
    }
}

/// A subscriber send ready to run: the digest rendered once, the message checked on a
/// sample subscriber, the send lock held, the plan read.
pub struct SubscriberSend {
    /// The warnings so far (the body's and the mail's, once).
    pub report: Report,
    /// The issue's title and its ledger label (the file name without `.md`).
    pub title: String,
    pub label: String,
    /// The subject a subscriber gets.
    pub subject: String,
    pub plan: Plan,
    /// Where the messages go, for people: `smtp HOST:PORT, N connections[, DKIM ...]`.
    pub transport: String,
    pub mode: Mode,
    digest: Digest,
    signer: Option<Signer>,
    personal: Personal,
    issue: IssueKey,
    soft_limit: u32,
    include_new: bool,
    server: Server,
    settings: EngineSettings,
    database: PathBuf,
    lock: SendLock,
}

/// Renders the issue and reads the plan; sends nothing.
pub fn prepare(config: &Config, options: &SubscriberSendOptions) -> Result<SubscriberSend, Report> {
    let mut report = Report::default();
    match prepare_in(config, options, &mut report) {
        Some(send) => {
            report.sort();
            Ok(SubscriberSend { report, ..send })
        }
        None => Err(report),
    }
}

fn prepare_in(config: &Config, options: &SubscriberSendOptions, report: &mut Report) -> Option<SubscriberSend> {
    let url_template = unsubscribe_template(config).map_err(|d| report.push(*d)).ok()?;
    let database = config.database_path();
    if let Err(e) = crate::store::subscribers::open_existing(&database) {
        report.push(Diagnostic::error("no-subscribers", e.to_string()));
        return None;
    }
    let audience = Audience::Subscribers { unsubscribe_url: &url_template };
    let personal = Personal::for_config(config, url_template.clone());
    let digest = issue::prepare(config, options.selection, options.post.as_deref(), audience, report)?.digest;
    let signer = Signer::for_command(config).map_err(|d| report.push(d)).ok()?;
    // A dry run sends nothing, so it needs no password: the server is resolved without
    // one (the address, security and the loopback rule are still checked).
    let server = crate::transport::smtp_server(config, !options.dry_run).map_err(|d| report.push(d)).ok()?;
    // The body's warnings, once, from a sample subscriber's message.
    let sample = sample_row();
    let sample_recipient = recipient_for(&digest, &sample, &personal)
        .map_err(|e| report.push(Diagnostic::error("bad-return-path", e)))
        .ok()?;
    report.extend(crate::digest::lint::lint(&digest, &digest.parts_for(&sample_recipient)));
    if let Err(e) = digest.message_for(&sample_recipient) {
        report.push(Diagnostic::error("bad-message", format!("cannot build the message: {e}")));
        return None;
    }
    let lock =
        SendLock::acquire(&database).map_err(|e| report.push(Diagnostic::error("send-running", e.to_string()))).ok()?;
    let label = digest.post_source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(digest.slug.clone());
    let issue = IssueKey { id: digest.issue_id.clone(), label: label.clone() };
    let mode = options.mode();
    let plan = plan(&database, &issue, mode, options.include_new)
        .map_err(|e| report.push(Diagnostic::error("database", format!("cannot read the ledger: {e}"))))
        .ok()?;
    if plan.first && !options.force {
        // The refusals of a send killed before it recorded them count first.
        let held = crate::store::db::open(&database).map_err(|e| e.to_string()).and_then(|mut conn| {
            if !options.dry_run {
                super::bounces::record_refusals(&mut conn, config.bounces.soft_limit).map_err(|e| e.to_string())?;
            }
            super::bounces::held_by_previous_issue(&conn, &issue.id).map_err(|e| e.to_string())
        });
        match held {
            Ok(Some(held)) => {
                let d = Diagnostic::error(
                    "send-held",
                    format!(
                        "not sending: the previous issue ({}) had too many complaints or bounces: {}",
                        held.previous.issue,
                        held.reasons.join("; ")
                    ),
                );
                report.push(d.help(
                    "find out why (`newsdesk status`, `newsdesk subscribers list --suppressed`): the list may hold old or bought addresses, or the mail may not say who it is from; send anyway with --force",
                ));
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                report.push(Diagnostic::error("database", format!("cannot read the bounces: {e}")));
                return None;
            }
        }
    }
    let settings = engine_settings(&config.smtp);
    let transport = format!(
        "smtp {}:{}, {} connection{}{}",
        server.host,
        server.port,
        settings.connections,
        if settings.connections == 1 { "" } else { "s" },
        signer.as_ref().map(|s| format!(", DKIM {} s={} d={}", s.algorithm, s.selector, s.domain)).unwrap_or_default()
    );
    Some(SubscriberSend {
        report: Report::default(),
        title: digest.title.clone(),
        label,
        subject: digest.parts_for(&sample_recipient).subject,
        plan,
        transport,
        mode,
        digest,
        signer,
        personal,
        issue,
        soft_limit: config.bounces.soft_limit,
        include_new: options.include_new,
        server,
        settings,
        database,
        lock,
    })
}

impl SubscriberSend {
    /// Runs the send until every row is tried or `stop` is set; `on_start` is told what
    /// the run froze, `on_progress` after every message. The send lock is released when
    /// it returns.
    pub fn run(
        self,
        stop: Arc<AtomicBool>,
        on_start: &(dyn Fn(&Started) + Sync),
        on_progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<SubscriberRun, Report> {
        let (digest, signer, personal) = (&self.digest, &self.signer, &self.personal);
        let render = |row: &Row| -> Result<Outgoing, String> {
            let r = recipient_for(digest, row, personal)?;
            let message_id = digest.message_id_for(&r);
            let message = digest.message_for(&r).map_err(|e| format!("cannot build the message: {e}"))?;
            let bytes = match signer {
                Some(s) => s.sign(&message.formatted()),
                None => message.formatted(),
            };
            Ok(Outgoing { envelope: message.envelope().clone(), bytes, message_id })
        };
        let request = Request {
            database: self.database.clone(),
            issue: self.issue.clone(),
            mode: self.mode,
            include_new: self.include_new,
            server: self.server.clone(),
            settings: self.settings.clone(),
            render: &render,
            stop,
            on_start,
            on_progress,
        };
        let result = engine::run(&request);
        // The relay's 5xx refusals count as bounces, before the lock goes: the next
        // run must not find them unrecorded.
        let refused = result.as_ref().ok().map(|_| {
            crate::store::db::open(&self.database).map_err(|e| e.to_string()).and_then(|mut conn| {
                super::bounces::record_refusals(&mut conn, self.soft_limit).map_err(|e| e.to_string())
            })
        });
        drop(self.lock);
        let mut report = self.report;
        match (result, refused) {
            (Ok(summary), Some(Ok(refused))) => Ok(SubscriberRun { summary, refused }),
            (Ok(summary), Some(Err(e))) => {
                // The send is done and in the ledger; `bounces` picks the refusals up
                // on the next run.
                let mut summary = summary;
                summary.warnings.push(format!("the relay's refusals could not be recorded as bounces yet: {e}"));
                Ok(SubscriberRun { summary, refused: Vec::new() })
            }
            (Ok(summary), None) => Ok(SubscriberRun { summary, refused: Vec::new() }),
            (Err(e), _) => {
                report.push(Diagnostic::error("database", e.to_string()));
                Err(report)
            }
        }
    }
}

/// What a subscriber send did: the engine's summary, and the recipients the relay
/// refused with a 5xx reply, applied as bounces.
#[derive(Debug, Clone)]
pub struct SubscriberRun {
    pub summary: RunSummary,
    pub refused: Vec<super::bounces::Applied>,
}

/// What differs per subscriber besides the address: the unsubscribe link (with
/// `{token}`) and the VERP envelope sender (`[email] return_path`, `{token}` optional).
#[derive(Debug, Clone)]
pub struct Personal {
    pub url_template: String,
    pub return_path: Option<String>,
}

impl Personal {
    pub fn for_config(config: &Config, url_template: String) -> Personal {
        Personal { url_template, return_path: config.email.as_ref().and_then(|e| e.return_path.clone()) }
    }
}

/// The engine's pacing and retries, from `[smtp]`.
fn engine_settings(smtp: &SmtpConfig) -> EngineSettings {
    EngineSettings {
        connections: smtp.connections.max(1),
        max_per_second: smtp.max_per_second.max(0.0),
        max_per_hour: smtp.max_per_hour,
        retry: RetryPolicy::from_smtp(smtp),
        page_size: 256,
    }
}

/// The unsubscribe link (`[subscribers] unsubscribe_url`, else `[web] public_url`),
/// which must carry `{token}`.
fn unsubscribe_template(config: &Config) -> Result<String, Box<Diagnostic>> {
    let url = config.unsubscribe_url_template();
    let d = |msg: &str| {
        Box::new(
            crate::config::config_diagnostic(
                config,
                "subscribers",
                "unsubscribe_url",
                Diagnostic::error("no-unsubscribe-url", msg.to_string()),
            )
            .help("set `unsubscribe_url = \"https://example.org/unsubscribe/{token}\"` under [subscribers], or `public_url` under [web] when `newsdesk serve` answers the link: each subscriber's link carries their token"),
        )
    };
    match url {
        None => Err(d(
            "mail to subscribers needs an unsubscribe link, and `[subscribers] unsubscribe_url` is not set (nor `[web] public_url`, from which `newsdesk serve` makes one)",
        )),
        Some(u) if !u.contains("{token}") => Err(d(&format!("`unsubscribe_url = \"{u}\"` has no `{{token}}`"))),
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            Err(d(&format!("`unsubscribe_url = \"{u}\"` is not an http(s) URL")))
        }
        Some(u) => Ok(u),
    }
}

/// The digest's recipient for a ledger row: `To` with the subscriber's name, their
/// token in the unsubscribe link, a Message-ID stable per (issue, address), and the
/// envelope sender `[email] return_path` with their VERP token.
pub fn recipient_for(digest: &Digest, row: &Row, personal: &Personal) -> Result<Recipient, String> {
    // Addresses are validated on import; a row edited by hand may not be.
    let address: lettre::Address =
        row.email.parse().map_err(|e| format!("`{}` is not a valid address: {e}", row.email))?;
    let url_template = personal.url_template.as_str();
    let envelope_from = match personal.return_path.as_deref() {
        None => None,
        Some(rp) => {
            let verp = crate::store::bounces::verp_token(&row.token);
            let sender = rp.replace("{token}", &verp);
            Some(sender.parse().map_err(|e| format!("`[email] return_path` makes `{sender}`, not an address: {e}"))?)
        }
    };
    Ok(Recipient {
        to: Mailbox::new(row.name.clone(), address.clone()),
        envelope_to: vec![address],
        envelope_from,
        id_key: Some(format!("subscriber:{}", row.email.to_ascii_lowercase())),
        name: row.name.clone().unwrap_or_default(),
        unsubscribe_url: Some(url_template.replace("{token}", &row.token)),
        // `lwkd+unsubscribe@…` becomes `lwkd+unsubscribe+TOKEN@…`: a reply to it tells
        // `newsdesk inbox` who is leaving even from another address.
        unsubscribe_mailto: digest.settings.unsubscribe_mailto.as_ref().map(|m| match m.split_once('@') {
            Some((local, domain)) => format!("{local}+{}@{domain}", row.token),
            None => m.clone(),
        }),
    })
}

fn sample_row() -> Row {
    Row {
        id: 0,
        subscriber_id: 0,
        email: "subscriber@example.org".into(),
        name: Some("Sample Subscriber".into()),
        token: "0".repeat(32),
        state: ledger::State::Pending,
        attempts: 0,
        active: true,
    }
}

/// What a run would do, read before anything is frozen (for the prompt and `--dry-run`).
#[derive(Debug, Clone)]
pub struct Plan {
    pub first: bool,
    pub to_send: i64,
    pub already_sent: i64,
    pub unknown: i64,
    pub failed: i64,
    pub joined_since: i64,
    pub include_new: bool,
    pub mode: Mode,
}

fn plan(db: &Path, issue: &IssueKey, mode: Mode, include_new: bool) -> rusqlite::Result<Plan> {
    let conn = crate::store::db::open(db).map_err(|e| match e {
        crate::store::db::DbError::Sql(s) => s,
        other => rusqlite::Error::InvalidPath(other.to_string().into()),
    })?;
    let c = ledger::counts(&conn, &issue.id)?;
    let first = c.total() == 0;
    let active = ledger::active_not_in_send(&conn, &issue.id)?;
    let due_temp = ledger::due_for_retry(&conn, &issue.id, &crate::store::clock::now())?;
    let to_send = match mode {
        _ if first => active,
        Mode::RetryFailed => ledger::count_for(&conn, &issue.id, mode, &crate::store::clock::now())?,
        Mode::Resume { skip_unknown } => {
            c.pending + due_temp + if skip_unknown { 0 } else { c.sending } + if include_new { active } else { 0 }
        }
    };
    Ok(Plan {
        first,
        to_send,
        already_sent: c.sent,
        unknown: c.sending,
        failed: c.failed_temporary + c.failed_permanent,
        joined_since: if first { 0 } else { active },
        include_new,
        mode,
    })
}

impl Plan {
    /// `N subscribers (resuming: ...)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} subscriber{}", self.to_send, if self.to_send == 1 { "" } else { "s" });
        if !self.first {
            s.push_str(&format!(" (resuming: {} already sent", self.already_sent));
            if self.unknown > 0 {
                s.push_str(&format!(", {} unknown", self.unknown));
            }
            if self.mode == Mode::RetryFailed {
                s.push_str(", failed rows only");
            }
            if self.joined_since > 0 && !self.include_new {
                s.push_str(&format!(", {} joined since: --include-new to add them", self.joined_since));
            }
            s.push(')');
        }
        s
    }

    /// Why nothing would be sent.
    pub fn nothing_reason(&self) -> String {
        if self.first {
            "there are no active subscribers (import a list with `newsdesk subscribers import FILE.csv`)".into()
        } else if self.mode == Mode::RetryFailed {
            "no row of this issue has failed".into()
        } else {
            let skipped_unknown =
                if matches!(self.mode, Mode::Resume { skip_unknown: true }) { self.unknown } else { 0 };
            let mut s = if self.failed == 0 && skipped_unknown == 0 {
                format!("this issue already went to all {} subscribers of its send", self.already_sent)
            } else {
                format!("every subscriber of this issue's send has been tried: {} sent", self.already_sent)
            };
            if self.failed > 0 {
                s.push_str(&format!(", {} failed (see `newsdesk status`, retry with --retry-failed)", self.failed));
            }
            if skipped_unknown > 0 {
                s.push_str(&format!(", {skipped_unknown} unknown left alone (--skip-unknown)"));
            }
            if self.joined_since > 0 {
                s.push_str(&format!("; {} joined since (add them with --include-new)", self.joined_since));
            }
            s
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "first_run": self.first, "to_send": self.to_send, "already_sent": self.already_sent,
            "unknown": self.unknown, "failed": self.failed, "joined_since": self.joined_since,
        })
    }
}
