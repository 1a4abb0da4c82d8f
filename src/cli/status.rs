//! `newsdesk status`: the ledger, per issue and per list address.

use super::Format;
use crate::config::Config;
use crate::ops::status::{self, StatusOptions, StatusReport};
use crate::store::ledger::State;
use std::process::ExitCode;

pub fn run(config: &Config, post: Option<String>, format: Format) -> ExitCode {
    match status::status(config, &StatusOptions { post }) {
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

fn print(shown: &StatusReport, format: Format) {
    let issues = &shown.issues;
    let running = shown.running.is_some();
    if format == Format::Json {
        let v = serde_json::json!({
            "issues": issues,
            "bounces": shown.bounces,
            "list_sends": shown.lists,
            "running": shown.running,
        });
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
        if let Some(b) = shown.bounces.get(i).filter(|b| b.hard + b.soft + b.complaints > 0) {
            println!(
                "  bounces and complaints of the {} delivered: {} hard, {} soft, {} complaint(s) (complaint rate {:.2} %, hard-bounce rate {:.1} %)",
                b.delivered,
                b.hard,
                b.soft,
                b.complaints,
                b.complaint_rate * 100.0,
                b.hard_bounce_rate * 100.0
            );
            if b.complaint_rate > crate::ops::bounces::MAX_COMPLAINT_RATE
                || b.hard_bounce_rate > crate::ops::bounces::MAX_HARD_BOUNCE_RATE
            {
                println!(
                    "  over Gmail's and Yahoo's limits (0.3 % complaints, 5 % hard bounces): the next issue's send needs --force"
                );
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
