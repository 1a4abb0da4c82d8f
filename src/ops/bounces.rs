//! `newsdesk bounces parse|ingest`, and the bounce rules the send applies.
//!
//! - [`parse_files`] explains messages and touches nothing.
//! - [`ingest`] reads messages (one on stdin from an MTA pipe, a maildir, an mbox, an
//!   IMAP mailbox),
//!   matches each to a subscriber (VERP token, then the returned Message-ID in the
//!   ledger, then the failed address), applies it (`store::bounces`) and files the raw
//!   message in the archive: `processed/` when it was applied or explained (an
//!   auto-reply, a delivery report without a failure), `unmatched/` otherwise. Nothing
//!   is lost: a maildir's messages are moved into the archive once filed, an mbox is
//!   left as it is, an IMAP message is marked (seen, moved, deleted) only once it was
//!   applied and filed, and an unmatched one is left unmarked. Reading the same message
//!   twice changes nothing (its SHA-256).
//! - [`record_refusals`] turns a send's 5xx replies into bounces, after the run.
//! - [`held_by_previous_issue`] is the check before a send: the last issue's complaint
//!   and hard-bounce rates.

use crate::bounces::{self, Kind, Report, Verp};
use crate::config::Config;
use crate::store::bounces::{self as store, Effect, Failure, MatchedBy, Source, Target};
use crate::store::db::{self, DbError};
use rusqlite::Connection;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The largest message read; bounces carry at most the returned message.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// One file explained by `bounces parse`.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedFile {
    pub file: String,
    #[serde(flatten)]
    pub report: Report,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{file}`: {source}")]
pub struct ReadError {
    pub file: String,
    pub source: std::io::Error,
}

/// `bounces parse FILE...`: each file's reading, in order. Reads no config and no
/// database.
pub fn parse_files(files: &[PathBuf]) -> Result<Vec<ParsedFile>, ReadError> {
    files
        .iter()
        .map(|f| {
            let raw = read_limited(f).map_err(|source| ReadError { file: f.display().to_string(), source })?;
            Ok(ParsedFile { file: f.display().to_string(), report: bounces::parse(&raw) })
        })
        .collect()
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    std::fs::File::open(path)?.take(MAX_MESSAGE as u64).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Where `bounces ingest` reads.
#[derive(Debug, Clone)]
pub enum IngestSource {
    /// One message (from stdin: an MTA pipe).
    Message(Vec<u8>),
    /// A maildir (`new/` and `cur/`): each message is moved into the archive once filed.
    Maildir(PathBuf),
    /// An mbox file: each message is copied into the archive; the file is left as it is.
    Mbox(PathBuf),
    /// The `[bounces.imap]` mailbox: each message is marked (seen, moved or deleted, as
    /// configured) once applied and filed, never before.
    Imap,
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub source: IngestSource,
    /// The envelope recipient the MTA hands over (Postfix's `${original_recipient}`): it
    /// carries the VERP token when the headers do not.
    pub recipient: Option<String>,
}

/// What happened to one message.
#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    /// The file it came from, or `stdin`, or `MBOX#N`.
    pub source: String,
    pub kind: Kind,
    /// `processed` or `unmatched`.
    pub filed: &'static str,
    /// Where the archive copy is.
    pub archived: String,
    pub applied: Vec<Applied>,
}

/// One failure applied to one subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub email: String,
    pub status: Option<String>,
    pub reason: String,
    pub matched_by: MatchedBy,
    #[serde(flatten)]
    pub effect: Effect,
}

/// What `bounces ingest` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestOutcome {
    pub messages: Vec<Ingested>,
    /// Messages that could not be read or filed (their files are left where they were).
    pub errors: Vec<String>,
}

/// Why ingest could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("`{0}` is not a maildir (it has no `new/` or `cur/` folder)")]
    NotAMaildir(String),
    #[error("{0}")]
    Imap(String),
}

/// The archive folder, absolute.
pub fn archive_dir(config: &Config) -> PathBuf {
    config.resolve(&config.bounces.archive)
}

/// `bounces ingest`.
pub fn ingest(config: &Config, options: &IngestOptions) -> Result<IngestOutcome, IngestError> {
    let database = config.database_path();
    let mut conn = db::open(&database)?;
    let at = |e| IngestError::Db(DbError::at(&database, e));
    let verp = config.email.as_ref().and_then(|e| e.return_path.as_deref()).and_then(Verp::new);
    let archive = archive_dir(config);
    let mut out = IngestOutcome::default();
    // Files one message; returns where, and whether it was explained (`processed/`).
    // Refusals a killed send left unrecorded count before anything else.
    record_refusals(&mut conn, config.bounces.soft_limit).map_err(at)?;
    // Files one message; returns where, and whether it was explained (`processed/`).
    // Only the first MAX_MESSAGE bytes are read (a bounce explains itself at the top);
    // the whole message is filed.
    let mut one =
        |raw: &[u8], source: String, out: &mut IngestOutcome| -> Result<Option<(PathBuf, bool)>, IngestError> {
            let report = bounces::parse(&raw[..raw.len().min(MAX_MESSAGE)]);
            let sha = store::message_sha256(raw);
            let applied = apply_report(&mut conn, verp.as_ref(), options.recipient.as_deref(), &report, &sha, config)
                .map_err(at)?;
            let explained = !applied.is_empty()
                || matches!(report.kind, Kind::AutoReply)
                || (report.kind == Kind::NotBounce && report.delivery_report);
            let filed = if explained { "processed" } else { "unmatched" };
            let path = archive.join(filed).join(format!("{}.eml", &sha[..32]));
            match file_message(&path, raw) {
                Ok(()) => {
                    out.messages.push(Ingested {
                        source,
                        kind: report.kind,
                        filed,
                        archived: path.display().to_string(),
                        applied,
                    });
                    Ok(Some((path, explained)))
                }
                Err(e) => {
                    let what = if applied.is_empty() { "read" } else { "applied" };
                    out.errors.push(format!(
                        "{source}: {what}, but cannot be filed in `{}`: {e}; it is left where it was",
                        path.display()
                    ));
                    Ok(None)
                }
            }
        };
    match &options.source {
        IngestSource::Message(raw) => {
            one(raw, "stdin".into(), &mut out)?;
        }
        IngestSource::Mbox(path) => {
            let bytes =
                std::fs::read(path).map_err(|source| IngestError::Read { path: path.display().to_string(), source })?;
            for (i, message) in split_mbox(&bytes).into_iter().enumerate() {
                one(&message, format!("{}#{}", path.display(), i + 1), &mut out)?;
            }
        }
        IngestSource::Imap => {
            let (settings, after) = crate::transport::imap::settings(config).map_err(IngestError::Imap)?;
            let mut mailbox =
                crate::transport::imap::Mailbox::open(&settings).map_err(|e| IngestError::Imap(e.to_string()))?;
            let uids = mailbox.uids(&after).map_err(|e| IngestError::Imap(e.to_string()))?;
            // A connection lost half-way leaves the rest unmarked: the next run reads
            // them (the ones applied already count once, by their SHA-256).
            for uid in uids {
                let source = format!("imap:{}/{uid}", settings.mailbox);
                let raw = match mailbox.fetch(uid) {
                    Ok(Some(raw)) => raw,
                    Ok(None) => continue,
                    Err(e) => {
                        out.errors.push(format!("{source}: {e}; the messages not read yet stay in the mailbox"));
                        return Ok(out);
                    }
                };
                // Only what was explained is marked: an unmatched message (a person's
                // reply, say) stays as it was, for the editor, besides its copy in
                // `unmatched/`.
                if let Some((_, true)) = one(&raw, source.clone(), &mut out)?
                    && let Err(e) = mailbox.done(uid, &after)
                {
                    out.errors.push(format!(
                        "{source}: applied and filed, but not marked in the mailbox ({e}); the next run reads it again and changes nothing"
                    ));
                    return Ok(out);
                }
            }
            mailbox.close();
        }
        IngestSource::Maildir(dir) => {
            let (new, cur) = (dir.join("new"), dir.join("cur"));
            if !new.is_dir() && !cur.is_dir() {
                return Err(IngestError::NotAMaildir(dir.display().to_string()));
            }
            let mut files = Vec::new();
            for sub in [new, cur] {
                let Ok(entries) = std::fs::read_dir(&sub) else { continue };
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                        files.push(p);
                    }
                }
            }
            // Maildir names start with the delivery time: oldest first.
            files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
            for file in files {
                let raw = match std::fs::read(&file) {
                    Ok(r) => r,
                    Err(e) => {
                        out.errors.push(format!("{}: {e}", file.display()));
                        continue;
                    }
                };
                // Applied and filed: the maildir's copy goes (the archive has it).
                if one(&raw, file.display().to_string(), &mut out)?.is_some()
                    && let Err(e) = std::fs::remove_file(&file)
                {
                    out.errors.push(format!("{}: filed, but cannot be removed from the maildir: {e}", file.display()));
                }
            }
        }
    }
    Ok(out)
}

/// Writes the raw message to `path` (0600: bounce mail names subscribers), atomically;
/// an existing file (the same message read before) is left.
fn file_message(path: &Path, raw: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    db::create_private_dir(dir)?;
    if path.exists() {
        return Ok(());
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, raw)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The new name is durable before the caller removes the maildir's copy or marks
    // the IMAP message.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The messages of an mbox: split before each `From ` line at the start of the file or
/// after an empty line; `>From ` quoting (mboxrd) is undone.
pub fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                messages.push(m);
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        let body = current.get_or_insert_with(Vec::new);
        let unquoted = line.iter().position(|&b| b != b'>').filter(|&n| n > 0 && line[n..].starts_with(b"From "));
        match unquoted {
            Some(_) => body.extend_from_slice(&line[1..]),
            None => body.extend_from_slice(line),
        }
        previous_blank = line == b"\n" || line == b"\r\n";
    }
    if let Some(m) = current {
        messages.push(m);
    }
    // The blank line mbox puts between messages is not part of the message.
    for m in &mut messages {
        if m.ends_with(b"\n\n") {
            m.pop();
        }
    }
    messages.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    messages
}

/// Matches `report` to subscribers and applies it; returns what changed.
fn apply_report(
    conn: &mut Connection,
    verp: Option<&Verp>,
    envelope_recipient: Option<&str>,
    report: &Report,
    sha: &str,
    config: &Config,
) -> rusqlite::Result<Vec<Applied>> {
    let source = match report.kind {
        Kind::Bounce => Source::Bounce,
        Kind::Complaint => Source::Complaint,
        Kind::AutoReply | Kind::NotBounce => return Ok(Vec::new()),
    };
    let soft_limit = config.bounces.soft_limit;
    // The one subscriber the message is about, when VERP or the Message-ID says.
    let mut by_verp = None;
    if let Some(v) = verp {
        for address in envelope_recipient.into_iter().chain(report.addressed_to.iter().map(String::as_str)) {
            if let Some(token) = v.token_of(address)
                && let Some(id) = store::by_verp(conn, token)?
            {
                by_verp = Some(id);
                break;
            }
        }
    }
    let by_id = match &report.original_message_id {
        Some(id) => store::by_message_id(conn, id)?,
        None => None,
    };
    let known: Option<(i64, Option<String>, MatchedBy)> = match (by_verp, &by_id) {
        (Some(sid), Some((id_sid, issue))) if *id_sid == sid => Some((sid, Some(issue.clone()), MatchedBy::Verp)),
        (Some(sid), _) => Some((sid, None, MatchedBy::Verp)),
        (None, Some((sid, issue))) => Some((*sid, Some(issue.clone()), MatchedBy::MessageId)),
        (None, None) => None,
    };
    let mut applied = Vec::new();
    let mut apply_one = |conn: &mut Connection,
                         r: Option<&bounces::Recipient>,
                         target: Target|
     -> rusqlite::Result<()> {
        let email: String =
            conn.query_row("SELECT email FROM subscribers WHERE id = ?1", [target.subscriber_id], |row| row.get(0))?;
        // A bounce whose recipient could not be read, matched by VERP: a soft one.
        let reason =
            r.map(|r| r.reason.as_str()).unwrap_or(if source == Source::Complaint { "complaint" } else { "other" });
        let failure = Failure {
            source,
            address: r.map(|r| r.address.as_str()).unwrap_or(&email),
            status: r.and_then(|r| r.status.as_deref()),
            permanent: r.is_some_and(|r| r.permanent),
            reason,
            diagnostic: r.and_then(|r| r.diagnostic.as_deref()),
        };
        let effect = store::apply(conn, Some(sha), &failure, &target, soft_limit)?;
        applied.push(Applied {
            email: email.clone(),
            status: failure.status.map(str::to_string),
            reason: reason.to_string(),
            matched_by: target.by,
            effect,
        });
        Ok(())
    };
    match known {
        Some((sid, issue, by)) => {
            let email: String =
                conn.query_row("SELECT email FROM subscribers WHERE id = ?1", [sid], |row| row.get(0))?;
            // The recipient that is this subscriber, else the first (a forwarded address).
            let r =
                report.recipients.iter().find(|r| r.address.eq_ignore_ascii_case(&email)).or(report.recipients.first());
            apply_one(conn, r, Target { subscriber_id: sid, issue, by })?;
        }
        None => {
            for r in &report.recipients {
                if let Some(sid) = store::by_address(conn, &r.address)? {
                    // With VERP on, a real bounce of subscriber mail names its token; one
                    // matched by the address alone may be forged by anyone who can write
                    // to the bounce address, so it cannot end a subscription at once: a
                    // hard bounce counts as a soft one.
                    let unverified;
                    let r = if verp.is_some() && r.permanent {
                        unverified = bounces::Recipient { permanent: false, ..r.clone() };
                        &unverified
                    } else {
                        r
                    };
                    apply_one(conn, Some(r), Target { subscriber_id: sid, issue: None, by: MatchedBy::Address })?;
                }
            }
        }
    }
    Ok(applied)
}

/// The relay's refusals during subscriber sends, as bounces: each recipient refused
/// with a 5xx reply counts as a bounce with that reply (a `550 5.1.1` is a hard bounce,
/// a `552 5.2.2` a soft one), and one given up after 4xx replies as a soft bounce; once
/// per issue and subscriber. Run after every send, and before the next send and every
/// ingest, so the refusals of a send that was killed count too.
pub fn record_refusals(conn: &mut Connection, soft_limit: u32) -> rusqlite::Result<Vec<Applied>> {
    let mut applied = Vec::new();
    for refused in store::unrecorded_refusals(conn)? {
        let issue = refused.issue.as_str();
        let r = bounces::classify_reply(&refused.email, &refused.reply);
        let failure = Failure {
            source: Source::SendTime,
            address: &refused.email,
            status: r.status.as_deref(),
            permanent: r.permanent,
            reason: r.reason.as_str(),
            diagnostic: r.diagnostic.as_deref(),
        };
        let target =
            Target { subscriber_id: refused.subscriber_id, issue: Some(issue.to_string()), by: MatchedBy::Send };
        let effect = store::apply(conn, None, &failure, &target, soft_limit)?;
        applied.push(Applied {
            email: refused.email.clone(),
            status: r.status.clone(),
            reason: r.reason.as_str().to_string(),
            matched_by: MatchedBy::Send,
            effect,
        });
    }
    Ok(applied)
}

/// Gmail's and Yahoo's bulk-sender limits: above these a sender's mail goes to spam.
pub const MAX_COMPLAINT_RATE: f64 = 0.003;
pub const MAX_HARD_BOUNCE_RATE: f64 = 0.05;

/// Why a send should not start: the previous issue's rates, when over the limits.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub previous: store::IssueBounces,
    pub reasons: Vec<String>,
}

/// The previous issue's figures when they are over Gmail's and Yahoo's limits.
pub fn held_by_previous_issue(conn: &Connection, issue: &str) -> rusqlite::Result<Option<Held>> {
    let Some(previous) = store::previous_issue(conn, issue)? else { return Ok(None) };
    let figures = store::for_issue(conn, &previous)?;
    let mut reasons = Vec::new();
    if figures.complaint_rate > MAX_COMPLAINT_RATE {
        reasons.push(format!(
            "{} complaint(s) for {} delivered is {:.2} %, over the 0.3 % at which Gmail and Yahoo file a sender's mail as spam",
            figures.complaints,
            figures.delivered,
            figures.complaint_rate * 100.0
        ));
    }
    if figures.hard_bounce_rate > MAX_HARD_BOUNCE_RATE {
        reasons.push(format!(
            "{} hard bounce(s) is {:.1} % of the issue's mail, over 5 %: mailing dead addresses costs the sender its reputation",
            figures.hard,
            figures.hard_bounce_rate * 100.0
        ));
    }
    Ok((!reasons.is_empty()).then_some(Held { previous: figures, reasons }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue `w1` delivered to 1,000 subscribers, `w2` about to go out; `complaints`
    /// complaints and `hard` hard bounces came back for `w1`.
    fn after_w1(complaints: usize, hard: usize) -> Connection {
        let conn = crate::store::db::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO delivery_runs (issue, label, kind, started_at) VALUES ('w1', 'w1', 'subscribers', '2026-07-01T00:00:00.000Z');
             INSERT INTO delivery_runs (issue, label, kind, started_at) VALUES ('w2', 'w2', 'subscribers', '2026-07-08T00:00:00.000Z');",
        )
        .unwrap();
        for i in 0..1000 {
            crate::store::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
            conn.execute(
                "INSERT INTO deliveries (issue, label, kind, subscriber_id, email, run_id, state, attempts, sent_at, updated_at)
                 VALUES ('w1', 'w1', 'subscriber', ?1, ?2, 1, 'sent', 1, '2026-07-01T00:00:01.000Z', '2026-07-01T00:00:01.000Z')",
                rusqlite::params![i + 1, format!("s{i}@example.org")],
            )
            .unwrap();
        }
        for (i, (kind, permanent)) in std::iter::repeat_n(("complaint", 0), complaints)
            .chain(std::iter::repeat_n(("bounce", 1), hard))
            .enumerate()
        {
            conn.execute(
                "INSERT INTO bounces (received_at, source_sha256, kind, subscriber_id, issue, address, permanent, reason)
                 VALUES ('2026-07-02T00:00:00.000Z', ?1, ?2, ?3, 'w1', ?4, ?5, 'x')",
                rusqlite::params![format!("m{i}"), kind, i as i64 + 1, format!("s{i}@example.org"), permanent],
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn the_next_issue_is_held_just_over_gmail_s_and_yahoo_s_limits() {
        // 3 complaints in 1,000 is 0.3 %: at the limit, not over it.
        assert!(held_by_previous_issue(&after_w1(3, 0), "w2").unwrap().is_none());
        let held = held_by_previous_issue(&after_w1(4, 0), "w2").unwrap().expect("0.4 % is over 0.3 %");
        assert_eq!(held.previous.issue, "w1");
        assert_eq!(held.reasons.len(), 1);
        assert!(held.reasons[0].starts_with("4 complaint(s) for 1000 delivered is 0.40 %"), "{:?}", held.reasons);
        // 50 hard bounces in 1,000 is 5 %: at the limit; 51 is over.
        assert!(held_by_previous_issue(&after_w1(0, 50), "w2").unwrap().is_none());
        let held = held_by_previous_issue(&after_w1(0, 51), "w2").unwrap().expect("5.1 % is over 5 %");
        assert!(held.reasons[0].contains("5.1 %"), "{:?}", held.reasons);
        // The first issue has nothing before it.
        assert!(held_by_previous_issue(&after_w1(500, 500), "w1").unwrap().is_none());
    }

    #[test]
    fn mboxes_split_at_from_lines_and_unquote() {
        let mbox = b"From a@b Mon Jul 27 14:00:00 2026\nSubject: one\n\nhello\n>From here\n\nFrom c@d Mon Jul 27 14:00:01 2026\nSubject: two\n\nbye\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"Subject: one\n\nhello\nFrom here\n");
        assert_eq!(m[1], b"Subject: two\n\nbye\n");
        assert!(split_mbox(b"").is_empty());
        // "From " inside a paragraph is not a separator.
        assert_eq!(split_mbox(b"From x\nSubject: a\n\nline\nFrom inside\n").len(), 1);
    }
}
