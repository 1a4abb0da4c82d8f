//! `newsdesk status`: what the ledger says about each issue's sends, to subscribers
//! and to list addresses.

use crate::config::Config;
use crate::store::bounces::{self as bounce_store, IssueBounces};
use crate::store::ledger::list::{self as list_ledger, ListSend};
use crate::store::ledger::{self, IssueStatus};
use crate::store::lock::{self, SendLock};

/// What `newsdesk status` shows.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// `--post`: only this issue (slug, file name or post id).
    pub post: Option<String>,
}

/// What the ledger says: the subscriber sends per issue, the list sends, and the send
/// running now, if any.
#[derive(Debug)]
pub struct StatusReport {
    pub issues: Vec<IssueStatus>,
    /// Per issue, in the same order: delivered, bounces, complaints and their rates.
    pub bounces: Vec<IssueBounces>,
    pub lists: Vec<ListSend>,
    /// The running send's lock holder (`pid 123, started ...`).
    pub running: Option<String>,
}

/// Reads the ledger (after settling a killed run's sent journal); the error says what
/// went wrong and what to do.
pub fn status(config: &Config, options: &StatusOptions) -> Result<StatusReport, String> {
    let post = options.post.as_deref();
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
        let bounces =
            issues.iter().map(|i| bounce_store::for_issue(&conn, &i.issue)).collect::<Result<_, _>>().map_err(sql)?;
        return Ok(StatusReport { issues, bounces, lists, running });
    };
    let mut issues = ledger::status(&conn, Some(wanted)).map_err(sql)?;
    let mut id = issues.first().map(|i| i.issue.clone());
    if id.is_none() {
        // A slug or file name: resolve it through the posts (`--posts` included), as
        // `send --post` does; list sends are found by the post's id.
        let loaded = crate::load::load(config);
        if let Some(p) = super::issue::find_post(&loaded.archive, wanted) {
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
    let bounces =
        issues.iter().map(|i| bounce_store::for_issue(&conn, &i.issue)).collect::<Result<_, _>>().map_err(sql)?;
    Ok(StatusReport { issues, bounces, lists, running })
}
