//! `newsdesk status`: what the ledger says about each issue's subscriber send.

use super::ledger::{self, IssueStatus, State};
use crate::cli::Format;
use crate::config::Config;
use std::process::ExitCode;

/// Runs `newsdesk status [--post SLUG]`.
pub fn run(config: &Config, post: Option<&str>, format: Format) -> ExitCode {
    match collect(config, post) {
        Ok(issues) => {
            print(&issues, format);
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn collect(config: &Config, post: Option<&str>) -> Result<Vec<IssueStatus>, String> {
    let path = config.database_path();
    let conn = crate::subscribers::open_existing(&path).map_err(|e| match e {
        crate::subscribers::SubscriberError::Db(e) => format!("{e}\n  = help: {}", e.help()),
        other => other.to_string(),
    })?;
    let sql = |e: rusqlite::Error| {
        let e = crate::db::DbError::at(&path, e);
        format!("cannot read the ledger: {e}\n  = help: {}", e.help())
    };
    let Some(wanted) = post else {
        return ledger::status(&conn, None).map_err(sql);
    };
    let mut found = ledger::status(&conn, Some(wanted)).map_err(sql)?;
    if found.is_empty() {
        // Maybe a front-matter slug: resolve it through the posts, as `send --post` does.
        let loaded = crate::load::load(config, None);
        if let Some(p) = crate::email::find_post(&loaded.archive, wanted) {
            found = ledger::status(&conn, Some(&p.id)).map_err(sql)?;
        }
    }
    if found.is_empty() {
        let known: Vec<String> = ledger::status(&conn, None).map_err(sql)?.into_iter().map(|i| i.label).collect();
        return Err(if known.is_empty() {
            format!("no subscriber send has been recorded yet, so there is nothing for `{wanted}`")
        } else {
            format!("no subscriber send recorded for `{wanted}`; issues in the ledger: {}", known.join(", "))
        });
    }
    Ok(found)
}

fn label(s: State) -> &'static str {
    match s {
        State::Sent => "sent",
        State::Pending => "pending",
        State::Sending => "unknown (interrupted while sending)",
        State::FailedTemporary => "failed temporarily",
        State::FailedPermanent => "failed permanently",
        State::Cancelled => "cancelled (unsubscribed meanwhile)",
    }
}

fn print(issues: &[IssueStatus], format: Format) {
    if format == Format::Json {
        let v = serde_json::json!({ "issues": issues });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    if issues.is_empty() {
        println!("no subscriber send has been recorded yet");
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
                println!("  {:>8}  {}", n, label(s));
            }
        }
        let runs = if issue.runs == 1 { "1 run".to_string() } else { format!("{} runs", issue.runs) };
        let state = if issue.last_finished { "finished" } else { "did not finish (still running, or interrupted)" };
        println!("  {runs}, first started {}, last started {} and {state}", issue.first_started, issue.last_started);
        if let Some(t) = &issue.next_retry_at {
            println!("  next retry of temporary failures: {t} (run `newsdesk send --subscribers --resume`)");
        }
        if c.sending > 0 {
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
