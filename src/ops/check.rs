//! `newsdesk check`: every problem in the config and every post, in one run.
//!
//! Loading already reports what makes a post unusable (errors); here every body is
//! rendered too, for the link and HTML warnings, plus checks that need the whole
//! archive (future dates, missing authors), and the deliverability report of the
//! newest issue's message (`--dns`: with its DNS records).

use super::deliverability::{self, DnsOptions};
use super::issue::{self, Audience};
use crate::config::Config;
use crate::deliverability::Check;
use crate::diag::{Diagnostic, Report};
use crate::digest::{lint, settings};
use crate::load;
use crate::model::{Archive, Post, Selection};
use crate::render;
use crate::transport::dkim::Signer;
use rayon::prelude::*;
use std::path::Path;

/// What `newsdesk check` checks.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Which posts count as published (drafts and future posts are checked either way).
    pub selection: Selection,
    /// `--dns`: the deliverability report looks up the DNS records too.
    pub dns: Option<DnsOptions>,
}

/// What `check` found: the diagnostics (sorted), and the deliverability report of the
/// newest issue's list message (empty without `[email]` or an issue to render).
#[derive(Debug)]
pub struct CheckOutcome {
    pub report: Report,
    pub deliverability: Vec<Check>,
}

/// Checks the config and every post.
pub fn check(config: &Config, options: &CheckOptions) -> CheckOutcome {
    let selection = options.selection;
    let loaded = load::load(config);
    let mut report = loaded.report;
    report.extend(archive_checks(config, &loaded.archive, selection));
    let (mail, deliverability) = mail_checks(config, &loaded.archive, options);
    report.extend(mail);
    report.extend(private_files(config));
    report.extend(readable_secrets(config));
    report.sort();
    CheckOutcome { report, deliverability }
}

/// The warning for a post dated in the future, at its `date:` line.
pub fn future_warning(p: &Post, now: chrono::DateTime<chrono::FixedOffset>) -> Diagnostic {
    let mut d = Diagnostic::warning(
        "future-date",
        format!(
            "this post is dated {} (in the future): \"{}\" is an upcoming issue, due in {}; it is left out of feeds and mail until then",
            p.date.format("%Y-%m-%d %H:%M %z"),
            p.title,
            due_in(p.date - now)
        ),
    )
    .in_file(&p.source)
    .help("fix the date, or pass `--future` to publish it now");
    if p.date_line > 0 {
        d = d.at(p.date_line, 1);
    }
    d
}

/// `3 days and 4 hours`, `5 hours`, `12 minutes`: how long until a post is due.
pub(crate) fn due_in(d: chrono::Duration) -> String {
    let plural = |n: i64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let (days, hours, minutes) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    match (days, hours) {
        (0, 0) => plural(minutes.max(1), "minute"),
        (0, h) => plural(h, "hour"),
        (d, 0) => plural(d, "day"),
        (d, h) => format!("{} and {}", plural(d, "day"), plural(h, "hour")),
    }
}

/// A warning for each existing file of the subscriber database that others can read:
/// it holds every subscriber's address and secret unsubscribe token.
pub fn private_files(config: &Config) -> Vec<Diagnostic> {
    let cwd = std::env::current_dir().ok();
    let mut out = Vec::new();
    for path in crate::store::db::private_files(&config.database_path()) {
        let Some(mode) = group_or_other_bits(&path) else { continue };
        let shown = crate::diag::display_path(&path, cwd.as_deref());
        let what = if path == config.database_path() { "the database" } else { "this file of the database" };
        out.push(
            Diagnostic::warning(
                "readable-database",
                format!(
                    "{what} can be read by other users (mode {mode:o}), and it holds every subscriber's address and unsubscribe token"
                ),
            )
            .in_file(&path)
            .help(format!("run `chmod 600 {shown}` (newsdesk creates its files that way)")),
        );
    }
    out
}

/// A warning for each file the config names for a secret (a password, the DKIM key,
/// an API key) that others can read.
pub fn readable_secrets(config: &Config) -> Vec<Diagnostic> {
    let cwd = std::env::current_dir().ok();
    let mut out = Vec::new();
    for (section, key, path) in config.secret_files() {
        let Some(mode) = group_or_other_bits(&path) else { continue };
        let shown = crate::diag::display_path(&path, cwd.as_deref());
        out.push(crate::config::config_diagnostic(
            config,
            section,
            key,
            Diagnostic::warning(
                "readable-secret",
                format!(
                    "[{section}] {key} `{shown}` can be read by other users (mode {mode:o}), and it holds a secret"
                ),
            )
            .help(format!("run `chmod 600 {shown}`")),
        ));
    }
    out
}

/// The permission bits of `path` when group or others have any access to it.
#[cfg(unix)]
fn group_or_other_bits(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok().filter(|m| m.is_file())?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_or_other_bits(_: &Path) -> Option<u32> {
    None
}

/// Body lints for every post plus archive-wide warnings.
pub fn archive_checks(config: &Config, archive: &Archive, selection: Selection) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = archive
        .posts
        .par_iter()
        .flat_map_iter(|p| match render::render(p) {
            Ok(r) => r.diagnostics,
            Err(d) => vec![d],
        })
        .collect();
    for p in &archive.posts {
        if !selection.future && p.date > selection.now {
            out.push(future_warning(p, selection.now));
        }
    }
    if config.site.author.is_none() {
        let anonymous = archive.published(selection).filter(|p| p.authors.is_empty()).count();
        if anonymous > 0 {
            out.push(
                Diagnostic::warning(
                    "no-author",
                    format!("{anonymous} published post(s) name no author and `[site] author` is not set: Atom requires an author for every entry"),
                )
                .in_file(&config.path)
                .help("add `author = { name = \"...\", email = \"...\" }` under `[site]`, or `author:` to each post"),
            );
        }
    }
    out
}

/// Renders the newest issue's digest (when `[email]` is configured) and returns its
/// template errors and mail warnings, and the deliverability report of its list
/// message (signed as `preview` signs it).
fn mail_checks(config: &Config, archive: &Archive, options: &CheckOptions) -> (Vec<Diagnostic>, Vec<Check>) {
    let mut out = Vec::new();
    if config.email.is_none() {
        return (out, Vec::new());
    }
    // `[email]` and its DKIM key are checked even when there is no issue to render, as
    // `preview` and `send` would read them.
    let signer = Signer::for_command(config).map_err(|d| out.push(d)).ok().flatten();
    // The SMTP settings as a send resolves them (`ca_file` read), without the password.
    if config.email.as_ref().is_some_and(|e| e.transport == "smtp") {
        out.extend(crate::transport::smtp_server(config, false).err());
    }
    let Some(post) = archive.newest(options.selection) else {
        out.extend(settings::settings(config).err().unwrap_or_default());
        return (out, Vec::new());
    };
    // A body that cannot be read or has errors was reported with every post's.
    let Ok(rendered) = render::render(post) else { return (out, Vec::new()) };
    if rendered.diagnostics.iter().any(Diagnostic::is_error) {
        return (out, Vec::new());
    }
    let mut report = Report::default();
    let Some(digest) = issue::render_digest(config, &rendered, Audience::List, &mut report) else {
        out.extend(report.diagnostics);
        return (out, Vec::new());
    };
    // Body lints were reported for every post already; only the mail's own remain.
    let recipient =
        digest.list_recipient().unwrap_or_else(|| digest.test_recipient(digest.settings.from.email.clone()));
    out.extend(lint::lint(&digest, &digest.parts_for(&recipient)));
    let checks = match digest.message_for(&recipient) {
        Ok(message) => {
            let eml = match &signer {
                Some(s) => s.sign(&message.formatted()),
                None => message.formatted(),
            };
            deliverability::report(config, &eml, signer.as_ref(), options.dns.as_ref())
        }
        Err(e) => {
            out.push(Diagnostic::error("bad-message", format!("cannot build the message: {e}")));
            Vec::new()
        }
    };
    (out, checks)
}
