//! `newsdesk status`: what the ledger says about each issue's sends, to subscribers
//! and to list addresses.

use crate::cli::Format;
use crate::config::Config;
use crate::store::ledger::list::{self as list_ledger, ListSend};
use crate::store::ledger::{self, IssueStatus, State};
use crate::store::lock::{self, SendLock};
use std::path::Path;
use std::process::ExitCode;

/// Runs `newsdesk status [--post SLUG]`.
pub fn run(config: &Config, posts_dir: Option<&Path>, post: Option<&str>, format: Format) -> ExitCode {
    match collect(config, posts_dir, post) {
        Ok(shown) => {
            print(&shown, format);
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// What `status` shows: the subscriber sends per issue, the list sends, and the send
/// running now, if any.
struct Shown {
    issues: Vec<IssueStatus>,
    lists: Vec<ListSend>,
    /// The running send's lock holder (`pid 123, started ...`).
    running: Option<String>,
}

fn collect(config: &Config, posts_dir: Option<&Path>, post: Option<&str>) -> Result<Shown, String> {
    let db = config.database_path();
    let mut conn = crate::store::subscribers::open_existing(&db).map_err(|e| match e {
        crate::store::subscribers::SubscriberError::Db(e) => format!("{e}\n  = help: {}", e.help()),
        other => other.to_string(),
    })?;
    // With no send running, 250s a killed run noted in the sent journal are settled
    // first (under the send lock, so no send can start meanwhile), so a delivered row
    // is never shown as unknown. While a send runs, its rows are in flight.
    let running = match SendLock::acquire(&db) {
        Ok(lock) => {
            crate::store::journal::replay_journal(&mut conn, &db)?;
            drop(lock);
            None
        }
        Err(lock::LockError::Busy { holder, .. }) => Some(holder),
        Err(e) => return Err(e.to_string()),
    };
    let sql = |e: rusqlite::Error| {
        let e = crate::store::db::DbError::at(&db, e);
        format!("cannot read the ledger: {e}\n  = help: {}", e.help())
    };
    let Some(wanted) = post else {
        let issues = ledger::status(&conn, None).map_err(sql)?;
        let lists = list_ledger::all(&conn).map_err(sql)?;
        return Ok(Shown { issues, lists, running });
    };
    let mut issues = ledger::status(&conn, Some(wanted)).map_err(sql)?;
    let mut id = issues.first().map(|i| i.issue.clone());
    if id.is_none() {
        // A slug or file name: resolve it through the posts (`--posts` included), as
        // `send --post` does; list sends are found by the post's id.
        let loaded = crate::load::load(config, posts_dir);
        if let Some(p) = crate::ops::issue::find_post(&loaded.archive, wanted) {
            issues = ledger::status(&conn, Some(&p.id)).map_err(sql)?;
            id = Some(p.id.clone());
        } else if wanted.contains("://") {
            id = Some(wanted.to_string());
        }
    }
    let lists = match &id {
        Some(id) => list_ledger::history(&conn, id).map_err(sql)?,
        None => Vec::new(),
    };
    if issues.is_empty() && lists.is_empty() {
        let known: Vec<String> = ledger::status(&conn, None).map_err(sql)?.into_iter().map(|i| i.label).collect();
        return Err(if known.is_empty() {
            format!("no send has been recorded yet, so there is nothing for `{wanted}`")
        } else {
            format!("no send recorded for `{wanted}`; issues in the ledger: {}", known.join(", "))
        });
    }
    Ok(Shown { issues, lists, running })
}

fn label(s: State, running: bool) -> &'static str {
    match s {
        State::Sent => "sent",
        State::Pending => "pending",
        State::Sending if running => "in flight (a send is running)",
        State::Sending => "unknown (interrupted while sending)",
        State::FailedTemporary => "failed temporarily",
        State::FailedPermanent => "failed permanently",
        State::Cancelled => "cancelled (unsubscribed meanwhile)",
    }
}

fn print(shown: &Shown, format: Format) {
    let issues = &shown.issues;
    let running = shown.running.is_some();
    if format == Format::Json {
        let v = serde_json::json!({ "issues": issues, "list_sends": shown.lists, "running": shown.running });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    if let Some(holder) = &shown.running {
        println!("a send is running ({holder})");
    }
    if !shown.lists.is_empty() {
        println!("list sends:");
        for l in &shown.lists {
            let what = match l.state {
                State::Sent => format!("sent {}", l.sent_at.as_deref().unwrap_or("")),
                State::Sending if running => "in flight (a send is running)".to_string(),
                State::Sending => "unknown: may or may not have been delivered".to_string(),
                State::FailedTemporary => "failed temporarily".to_string(),
                State::FailedPermanent => "failed permanently".to_string(),
                State::Pending | State::Cancelled => l.state.as_str().to_string(),
            };
            println!("  {}  to {}  {what}  (started {})", label_of(&l.issue_id), l.destination, l.started_at);
            if let Some(r) = &l.server_reply {
                println!("      {r}");
            }
        }
        if !issues.is_empty() {
            println!();
        }
    }
    if issues.is_empty() {
        if shown.lists.is_empty() {
            println!("no send has been recorded yet");
        }
        return;
    }
    for (i, issue) in issues.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{} ({})", issue.label, issue.issue);
        let c = &issue.counts;
        println!("  {} recipients", c.total());
        for s in State::ALL {
            let n = c.get(s);
            if n > 0 || matches!(s, State::Sent | State::Pending) {
                println!("  {:>8}  {}", n, label(s, running));
            }
        }
        let runs = if issue.runs == 1 { "1 run".to_string() } else { format!("{} runs", issue.runs) };
        let state = if issue.last_finished {
            "finished"
        } else if running {
            "is running"
        } else {
            "did not finish (interrupted)"
        };
        println!("  {runs}, first started {}, last started {} and {state}", issue.first_started, issue.last_started);
        if let Some(t) = &issue.next_retry_at {
            println!("  next retry of temporary failures: {t} (run `newsdesk send --subscribers --resume`)");
        }
        if c.sending > 0 && running {
            println!(
                "  {} in flight: the running send is sending them now; run `newsdesk status` again when it ends",
                c.sending
            );
        } else if c.sending > 0 {
            println!(
                "  {} unknown: the server may or may not have them; `newsdesk send --subscribers --resume` \
                 sends them again with the same Message-ID",
                c.sending
            );
        }
        if !issue.permanent_failures.is_empty() {
            println!("  permanent failures:");
            for f in &issue.permanent_failures {
                println!(
                    "    {}  {}  ({}, {})",
                    f.email,
                    f.reply.as_deref().unwrap_or("-"),
                    attempts(f.attempts),
                    f.at
                );
            }
        }
    }
}

fn attempts(n: i64) -> String {
    if n == 1 { "1 attempt".into() } else { format!("{n} attempts") }
}

/// The last path segment of an issue id (`https://lwkd.info/2020/2020-05-10-update` →
/// `2020-05-10-update`), how list sends are named in the listing.
fn label_of(issue_id: &str) -> &str {
    issue_id.trim_end_matches('/').rsplit('/').next().unwrap_or(issue_id)
}
