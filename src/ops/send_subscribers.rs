//! `newsdesk send --subscribers`: the issue to every active subscriber, one
//! personalised message each, recorded in the ledger so a second run resumes instead
//! of starting over.

use crate::cli::{Format, print_report};
use crate::config::Config;
use crate::delivery::engine::{self, Outgoing, Request, EngineSettings, RunSummary};
use crate::diag::{Diagnostic, Report};
use crate::digest::{Digest, Recipient};
use crate::store::ledger::{self, IssueKey, Mode, Row};
use crate::store::lock::SendLock;
use crate::transport::dkim::Signer;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lettre::message::Mailbox;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The subscriber-send flags of `newsdesk send`.
#[derive(Debug, Clone, Default, Args)]
pub struct SubscriberArgs {
    /// Send to every active subscriber (one personalised message each) instead of the list address.
    #[arg(long, conflicts_with = "to")]
    pub subscribers: bool,
    /// Continue an interrupted subscriber send (running `send --subscribers` again does the same).
    #[arg(long, requires = "subscribers")]
    pub resume: bool,
    /// Retry only the rows that failed (temporarily or permanently); nothing else is sent.
    #[arg(long, requires = "subscribers", conflicts_with_all = ["include_new", "skip_unknown"])]
    pub retry_failed: bool,
    /// Leave rows whose earlier attempt was interrupted mid-send ("unknown") alone instead of resending them.
    #[arg(long, requires = "subscribers")]
    pub skip_unknown: bool,
    /// Also send to subscribers who joined after this issue's send started.
    #[arg(long, requires = "subscribers")]
    pub include_new: bool,
}

/// What the caller passes from `newsdesk send`.
pub struct Invocation<'a> {
    pub config: &'a Config,
    pub posts_dir: Option<&'a Path>,
    pub selection: crate::model::Selection,
    pub post: Option<&'a str>,
    pub flags: &'a SubscriberArgs,
    pub yes: bool,
    pub dry_run: bool,
    pub format: Format,
    pub cwd: Option<&'a Path>,
}

/// Runs a subscriber send; returns the exit code (0: nothing left to retry).
pub fn run(inv: &Invocation) -> ExitCode {
    let config = inv.config;
    let mut report = Report::default();
    let fail = |mut report: Report| {
        report.sort();
        print_report(&report, inv.format, inv.cwd, serde_json::json!({ "ok": false }));
        ExitCode::FAILURE
    };
    let url_template = match unsubscribe_template(config) {
        Ok(u) => u,
        Err(d) => {
            report.push(*d);
            return fail(report);
        }
    };
    let db_path = config.database_path();
    if let Err(e) = crate::store::subscribers::open_existing(&db_path) {
        report.push(Diagnostic::error("no-subscribers", e.to_string()));
        return fail(report);
    }
    let Some(digest) = render_digest(inv, &url_template, &mut report) else {
        return fail(report);
    };
    let signer = match Signer::for_command(config) {
        Ok(s) => s,
        Err(d) => {
            report.push(d);
            return fail(report);
        }
    };
    // A dry run sends nothing, so it needs no password: the server is resolved without
    // one (the address, security and the loopback rule are still checked).
    let server = match crate::transport::smtp_server(config, !inv.dry_run) {
        Ok(s) => s,
        Err(d) => {
            report.push(d);
            return fail(report);
        }
    };
    // The body's warnings, once, from a sample subscriber's message.
    let sample = sample_row();
    let sample_recipient = recipient_for(&digest, &sample, &url_template).expect("the sample address is valid");
    report.extend(crate::digest::lint::lint(&digest, &digest.parts_for(&sample_recipient)));
    if let Err(e) = digest.message_for(&sample_recipient) {
        report.push(Diagnostic::error("bad-message", format!("cannot build the message: {e}")));
        return fail(report);
    }

    let lock = match SendLock::acquire(&db_path) {
        Ok(l) => l,
        Err(e) => {
            report.push(Diagnostic::error("send-running", e.to_string()));
            return fail(report);
        }
    };
    let label = digest.post_source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(digest.slug.clone());
    let issue = IssueKey { id: digest.issue_id.clone(), label };
    let mode =
        if inv.flags.retry_failed { Mode::RetryFailed } else { Mode::Resume { skip_unknown: inv.flags.skip_unknown } };
    let plan = match plan(&db_path, &issue, mode, inv.flags.include_new) {
        Ok(p) => p,
        Err(e) => {
            report.push(Diagnostic::error("database", format!("cannot read the ledger: {e}")));
            return fail(report);
        }
    };
    report.sort();
    let human = inv.format == Format::Human;
    if human {
        eprint!("{}", report.render(inv.cwd));
        eprintln!("Issue:      {} ({})", digest.title, issue.label);
        eprintln!("Subject:    {}", sample_recipient_subject(&digest, &sample_recipient));
        eprintln!("Send to:    {}", plan.describe());
        eprintln!(
            "Transport:  smtp {}:{}, {} connection{}{}",
            server.host,
            server.port,
            config.smtp.connections.max(1),
            if config.smtp.connections.max(1) == 1 { "" } else { "s" },
            signer
                .as_ref()
                .map(|s| format!(", DKIM {} s={} d={}", s.algorithm, s.selector, s.domain))
                .unwrap_or_default()
        );
    }
    if inv.dry_run {
        if !human {
            print_report(
                &report,
                inv.format,
                inv.cwd,
                serde_json::json!({ "ok": true, "dry_run": true, "plan": plan.json() }),
            );
        } else {
            eprintln!("dry run: nothing was sent");
        }
        return ExitCode::SUCCESS;
    }
    if plan.to_send == 0 {
        let s = "nothing to send";
        if human {
            eprintln!("{s}: {}", plan.nothing_reason());
        } else {
            print_report(&report, inv.format, inv.cwd, serde_json::json!({ "ok": true, "plan": plan.json() }));
        }
        return ExitCode::SUCCESS;
    }
    if !inv.yes && std::io::stdin().is_terminal() && !confirm(&digest.title, plan.to_send) {
        eprintln!("nothing was sent");
        return ExitCode::FAILURE;
    }

    let stop = Arc::new(AtomicBool::new(false));
    install_ctrl_c(stop.clone());
    let bar = progress_bar(human);
    let render = |row: &Row| -> Result<Outgoing, String> {
        let r = recipient_for(&digest, row, &url_template)?;
        let message_id = digest.message_id_for(&r);
        let mut message = digest.message_for(&r).map_err(|e| format!("cannot build the message: {e}"))?;
        if let Some(s) = &signer {
            s.sign(&mut message);
        }
        Ok(Outgoing { envelope: message.envelope().clone(), bytes: message.formatted(), message_id })
    };
    let on_start = |s: &ledger::Started| {
        if let Some(b) = &bar {
            b.set_length(s.to_send.max(0) as u64);
        }
        if human && s.unknown > 0 && matches!(mode, Mode::Resume { .. }) {
            let what = if inv.flags.skip_unknown {
                "left alone (--skip-unknown)"
            } else {
                "sent again with the same Message-ID"
            };
            eprintln!(
                "{} message{} of an interrupted send may or may not have reached the server: {what}",
                s.unknown,
                if s.unknown == 1 { "" } else { "s" }
            );
        }
    };
    let on_progress = |p: &engine::Progress| {
        if let Some(b) = &bar {
            b.set_position(p.done());
            let tf = p.failed_temporary.load(Ordering::Relaxed) + p.failed_permanent.load(Ordering::Relaxed);
            if tf > 0 {
                b.set_message(format!("{tf} failed"));
            }
        }
    };
    let request = Request {
        database: db_path.clone(),
        issue,
        mode,
        include_new: inv.flags.include_new,
        server,
        settings: EngineSettings::from_config(&config.smtp),
        render: &render,
        stop,
        on_start: &on_start,
        on_progress: &on_progress,
    };
    let result = engine::run(&request);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    drop(lock);
    match result {
        Ok(summary) => {
            let ok = summary.stopped.is_none() && summary.ledger.open() == 0;
            match inv.format {
                Format::Human => print_summary(&summary),
                Format::Json => {
                    print_report(&report, Format::Json, inv.cwd, serde_json::json!({ "ok": ok, "summary": summary }))
                }
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            report.push(Diagnostic::error("database", e.to_string()));
            fail(report)
        }
    }
}

/// Loads the posts, picks the issue and renders its digest once, with the
/// per-subscriber unsubscribe link in place of the list's.
fn render_digest(inv: &Invocation, url_template: &str, report: &mut Report) -> Option<Digest> {
    let config = inv.config;
    let loaded = crate::load::load(config, inv.posts_dir);
    report.extend(loaded.report.diagnostics);
    if report.has_errors() {
        return None;
    }
    let post = match crate::ops::issue::pick(config, &loaded.archive, inv.selection, inv.post) {
        Ok(p) => p,
        Err(d) => {
            report.push(d);
            return None;
        }
    };
    let rendered = match crate::render::render(post) {
        Ok(r) => r,
        Err(e) => {
            report.push(
                Diagnostic::error("unreadable", format!("cannot read this post's body: {e}")).in_file(&post.source),
            );
            return None;
        }
    };
    report.extend(rendered.diagnostics.clone());
    let mut settings = match crate::digest::settings::settings(config) {
        Ok(s) => s,
        Err(ds) => {
            report.extend(ds);
            return None;
        }
    };
    // Templates test `unsubscribe_page` to decide whether to print a link: every
    // subscriber has one.
    settings.unsubscribe_url = Some(url_template.to_string());
    settings.subscriber_send = true;
    match Digest::render(config, settings, &rendered, crate::digest::render_time()) {
        Ok(d) => Some(d),
        Err(ds) => {
            report.extend(ds);
            None
        }
    }
}

/// `[subscribers] unsubscribe_url`, which must carry `{token}`.
fn unsubscribe_template(config: &Config) -> Result<String, Box<Diagnostic>> {
    let url = config.subscribers.as_ref().and_then(|s| s.unsubscribe_url.clone());
    let d = |msg: &str| {
        Box::new(
            crate::digest::settings::config_diagnostic(
                config,
                "subscribers",
                "unsubscribe_url",
                Diagnostic::error("no-unsubscribe-url", msg.to_string()),
            )
            .help("set `unsubscribe_url = \"https://example.org/unsubscribe/{token}\"` under [subscribers]: each subscriber's link carries their token"),
        )
    };
    match url {
        None => Err(d("mail to subscribers needs an unsubscribe link, and `[subscribers] unsubscribe_url` is not set")),
        Some(u) if !u.contains("{token}") => Err(d(&format!("`unsubscribe_url = \"{u}\"` has no `{{token}}`"))),
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            Err(d(&format!("`unsubscribe_url = \"{u}\"` is not an http(s) URL")))
        }
        Some(u) => Ok(u),
    }
}

/// The digest's recipient for a ledger row: `To` with the subscriber's name, their
/// token in the unsubscribe link, and a Message-ID stable per (issue, address).
pub fn recipient_for(digest: &Digest, row: &Row, url_template: &str) -> Result<Recipient, String> {
    // Addresses are validated on import; a row edited by hand may not be.
    let address: lettre::Address =
        row.email.parse().map_err(|e| format!("`{}` is not a valid address: {e}", row.email))?;
    Ok(Recipient {
        to: Mailbox::new(row.name.clone(), address.clone()),
        envelope_to: vec![address],
        id_key: Some(format!("subscriber:{}", row.email.to_ascii_lowercase())),
        name: row.name.clone().unwrap_or_default(),
        unsubscribe_url: Some(url_template.replace("{token}", &row.token)),
        unsubscribe_mailto: digest.settings.unsubscribe_mailto.clone(),
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

fn sample_recipient_subject(digest: &Digest, r: &Recipient) -> String {
    digest.parts_for(r).subject
}

/// What a run would do, read before anything is frozen (for the prompt and `--dry-run`).
struct Plan {
    first: bool,
    to_send: i64,
    already_sent: i64,
    unknown: i64,
    failed: i64,
    joined_since: i64,
    include_new: bool,
    mode: Mode,
}

fn plan(db: &Path, issue: &IssueKey, mode: Mode, include_new: bool) -> rusqlite::Result<Plan> {
    let conn = crate::store::db::open(db).map_err(|e| match e {
        crate::store::db::DbError::Sql(s) => s,
        other => rusqlite::Error::InvalidPath(other.to_string().into()),
    })?;
    let c = ledger::counts(&conn, &issue.id)?;
    let first = c.total() == 0;
    let active = ledger::active_not_in_send(&conn, &issue.id)?;
    let now = crate::store::clock::now();
    let due_temp: i64 = conn.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' AND state = 'failed_temporary'
         AND next_retry_at <= ?2",
        rusqlite::params![issue.id, now],
        |r| r.get(0),
    )?;
    let to_send = match mode {
        _ if first => active,
        Mode::RetryFailed => c.failed_temporary + c.failed_permanent,
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
    fn describe(&self) -> String {
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

    fn nothing_reason(&self) -> String {
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

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "first_run": self.first, "to_send": self.to_send, "already_sent": self.already_sent,
            "unknown": self.unknown, "failed": self.failed, "joined_since": self.joined_since,
        })
    }
}

fn confirm(title: &str, n: i64) -> bool {
    eprint!("Send \"{title}\" to {n} subscriber{}? [y/N] ", if n == 1 { "" } else { "s" });
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// First Ctrl-C: finish the messages in flight and stop (the rest stays pending).
/// Second: exit at once (rows in flight are then reported as unknown by the next run).
fn install_ctrl_c(stop: Arc<AtomicBool>) {
    let presses = AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.store(true, Ordering::SeqCst);
            eprintln!("\nstopping after the messages in flight (Ctrl-C again to quit at once)");
        } else {
            std::process::exit(130);
        }
    });
}

fn progress_bar(human: bool) -> Option<ProgressBar> {
    if !human || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {rate} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} msg/s", s.per_sec());
            });
    bar.set_style(style);
    Some(bar)
}

fn print_summary(s: &RunSummary) {
    let mut out = std::io::stderr().lock();
    let _ = writeln!(
        out,
        "sent {} in {:.1}s ({:.1} messages/s); {} skipped as already sent",
        s.sent, s.elapsed_secs, s.per_second, s.already_sent
    );
    if s.failed_temporary > 0 || s.failed_permanent > 0 {
        let _ = writeln!(
            out,
            "failed: {} temporarily (retried {} times in all), {} permanently",
            s.failed_temporary, s.retries, s.failed_permanent
        );
    } else if s.retries > 0 {
        let _ = writeln!(out, "{} temporary failures were retried successfully", s.retries);
    }
    if s.unknown > 0 {
        let _ = writeln!(
            out,
            "{} message(s) went out whole but no reply came: the server may have them; left unknown, not retried \
             in this run (`newsdesk status` lists them; the next `send --subscribers` sends them again with the \
             same Message-ID, or leave them with --skip-unknown)",
            s.unknown
        );
    }
    if s.unknown_resent > 0 {
        let _ = writeln!(out, "{} interrupted message(s) sent again with the same Message-ID", s.unknown_resent);
    }
    if s.unknown_skipped > 0 {
        let _ = writeln!(out, "{} unknown message(s) left alone (--skip-unknown)", s.unknown_skipped);
    }
    if s.cancelled > 0 {
        let _ = writeln!(out, "{} not sent: unsubscribed after the send started", s.cancelled);
    }
    if s.joined_since > 0 {
        let _ = writeln!(
            out,
            "{} subscriber(s) joined after this send started: add them with --include-new",
            s.joined_since
        );
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(out, "stopped early: {why}");
    }
    let c = &s.ledger;
    let _ = writeln!(
        out,
        "ledger for {}: {} sent, {} pending, {} unknown, {} failed temporarily, {} failed permanently, {} cancelled",
        s.label, c.sent, c.pending, c.sending, c.failed_temporary, c.failed_permanent, c.cancelled
    );
    if c.open() > 0 {
        let _ = writeln!(
            out,
            "run `newsdesk send --subscribers --resume` to continue; `newsdesk status` shows the details"
        );
    }
}
