//! The send ledger: one row per (issue, subscriber), the single source of truth for who
//! got which issue.
//!
//! A row moves `pending → sending → sent | failed_temporary | failed_permanent`, and to
//! `cancelled` when the subscriber unsubscribed after the send started. Every
//! transition is its own committed statement: `sending` is on disk before `MAIL FROM`,
//! `sent` right after the server's 250. A row found in `sending` when a send starts was
//! interrupted between the two: the server may or may not have taken it ("unknown").
//!
//! The recipient list is frozen when the first run for an issue starts (one
//! `INSERT ... SELECT` of the active subscribers); later runs resume that list and only
//! add subscribers who joined since when asked to (`--include-new`).

pub mod list;

use crate::store::clock;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A ledger row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Sending,
    Sent,
    FailedTemporary,
    FailedPermanent,
    Cancelled,
}

impl State {
    /// Every state, in the order `status` prints them.
    pub const ALL: [State; 6] =
        [State::Sent, State::Pending, State::Sending, State::FailedTemporary, State::FailedPermanent, State::Cancelled];

    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Sent => "sent",
            State::FailedTemporary => "failed_temporary",
            State::FailedPermanent => "failed_permanent",
            State::Cancelled => "cancelled",
        }
    }

    /// Reads a stored value.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Which rows a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A first send or a resume: pending rows, rows left in `sending` by an interrupted
    /// run (unless `skip_unknown`), and temporary failures whose retry time has come.
    Resume { skip_unknown: bool },
    /// `--retry-failed`: only rows that failed (temporarily or permanently).
    RetryFailed,
}

impl Mode {
    /// The SQL condition selecting this mode's rows (`?now` is bound by the caller).
    fn condition(self) -> &'static str {
        match self {
            Mode::Resume { skip_unknown: false } => {
                "(d.state IN ('pending', 'sending') OR (d.state = 'failed_temporary' AND d.next_retry_at <= :now))"
            }
            Mode::Resume { skip_unknown: true } => {
                "(d.state = 'pending' OR (d.state = 'failed_temporary' AND d.next_retry_at <= :now))"
            }
            // (`:now` is unused here but bound for every mode.) A bounced subscriber's
            // failure stays as it is: their address is dead (store::bounces).
            Mode::RetryFailed => {
                "(d.state IN ('failed_temporary', 'failed_permanent') AND :now IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM subscribers b WHERE b.id = d.subscriber_id AND b.status = 'bounced'))"
            }
        }
    }
}

/// Identifies an issue in the ledger: the post's stable id, plus its file stem so
/// people can name it (`--post 2020-05-10-update`).
#[derive(Debug, Clone)]
pub struct IssueKey {
    pub id: String,
    pub label: String,
}

/// Row counts per state for one issue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed_temporary: i64,
    pub failed_permanent: i64,
    pub cancelled: i64,
}

impl StateCounts {
    pub fn get(&self, s: State) -> i64 {
        match s {
            State::Pending => self.pending,
            State::Sending => self.sending,
            State::Sent => self.sent,
            State::FailedTemporary => self.failed_temporary,
            State::FailedPermanent => self.failed_permanent,
            State::Cancelled => self.cancelled,
        }
    }

    fn slot(&mut self, s: State) -> &mut i64 {
        match s {
            State::Pending => &mut self.pending,
            State::Sending => &mut self.sending,
            State::Sent => &mut self.sent,
            State::FailedTemporary => &mut self.failed_temporary,
            State::FailedPermanent => &mut self.failed_permanent,
            State::Cancelled => &mut self.cancelled,
        }
    }

    pub fn total(&self) -> i64 {
        State::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Rows that may still be delivered by a later run.
    pub fn open(&self) -> i64 {
        self.pending + self.sending + self.failed_temporary
    }
}

/// What starting a run found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub run_id: i64,
    /// True for the first run of the issue (the recipient list was frozen now).
    pub first: bool,
    /// Rows added to the frozen list by this run (all of them on a first run).
    pub added: i64,
    /// Active subscribers not in this issue's list (joined after it started), left out.
    pub joined_since: i64,
    /// StateCounts before this run sends anything.
    pub before: StateCounts,
    /// Rows this run will try.
    pub to_send: i64,
    /// Rows in `sending` from an interrupted run (their fate at the server is unknown).
    pub unknown: i64,
    /// Temporary failures whose retry time has not come yet (not tried by a resume).
    pub waiting: i64,
}

/// Starts a run for `issue`: freezes the recipient list on the first run, adds
/// subscribers who joined since when `include_new`, and records the run.
pub fn start_run(conn: &mut Connection, issue: &IssueKey, mode: Mode, include_new: bool) -> rusqlite::Result<Started> {
    let now = clock::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let existing: i64 =
        tx.query_row("SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber'", [&issue.id], |r| {
            r.get(0)
        })?;
    let first = existing == 0;
    let kind = match mode {
        Mode::Resume { .. } if first => "first",
        Mode::Resume { .. } => "resume",
        Mode::RetryFailed => "retry_failed",
    };
    tx.execute(
        "INSERT INTO delivery_runs (issue, label, kind, started_at, pid) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![issue.id, issue.label, kind, now, std::process::id()],
    )?;
    let run_id = tx.last_insert_rowid();
    let added = if first || include_new {
        tx.execute(
            "INSERT INTO deliveries (issue, label, subscriber_id, email, run_id, state, updated_at)
             SELECT ?1, ?2, s.id, s.email, ?3, 'pending', ?4 FROM subscribers s
             WHERE s.status = 'active' AND s.suppressed_reason IS NULL
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue = ?1 AND d.subscriber_id = s.id)
             ORDER BY s.id",
            params![issue.id, issue.label, run_id, now],
        )? as i64
    } else {
        0
    };
    let joined_since = active_not_in_send(&tx, &issue.id)?;
    let before = counts_in(&tx, &issue.id)?;
    let to_send: i64 = tx.query_row(
        &format!(
            "SELECT COUNT(*) FROM deliveries d WHERE d.issue = :issue AND d.kind = 'subscriber' AND {}",
            mode.condition()
        ),
        rusqlite::named_params! { ":issue": issue.id, ":now": now },
        |r| r.get(0),
    )?;
    let waiting: i64 = if matches!(mode, Mode::Resume { .. }) {
        tx.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' AND state = 'failed_temporary' AND next_retry_at > ?2",
            params![issue.id, now],
            |r| r.get(0),
        )?
    } else {
        0
    };
    tx.commit()?;
    Ok(Started { run_id, first, added, joined_since, unknown: before.sending, before, to_send, waiting })
}

/// Records that a run ended (normally or after Ctrl-C), with its final counts.
pub fn finish_run(conn: &Connection, run_id: i64, summary: &serde_json::Value) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE delivery_runs SET finished_at = ?2, summary = ?3 WHERE id = ?1",
        params![run_id, clock::now(), summary.to_string()],
    )?;
    Ok(())
}

/// A ledger row with what a message needs about its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The ledger row's id.
    pub id: i64,
    pub subscriber_id: i64,
    /// The address frozen into the ledger when the row was created.
    pub email: String,
    pub name: Option<String>,
    pub token: String,
    pub state: State,
    /// Attempts made so far, by all runs.
    pub attempts: i64,
    /// False when the subscriber unsubscribed after the row was frozen.
    pub active: bool,
}

/// The next `limit` rows of this run after ledger id `after`, in id order. Reading
/// page by page keeps memory flat whatever the list size; the id cursor means each row
/// is visited once per run even when its state changes meanwhile.
pub fn next_page(
    conn: &Connection,
    issue: &str,
    mode: Mode,
    after: i64,
    limit: usize,
    now: &str,
) -> rusqlite::Result<Vec<Row>> {
    let sql = format!(
        "SELECT d.id, d.subscriber_id, d.email, s.name, s.token, d.state, d.attempts,
                s.status = 'active' AND s.suppressed_reason IS NULL
         FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE d.issue = :issue AND d.id > :after AND {}
         ORDER BY d.id LIMIT :limit",
        mode.condition()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        rusqlite::named_params! { ":issue": issue, ":after": after, ":limit": limit as i64, ":now": now },
        |r| {
            Ok(Row {
                id: r.get(0)?,
                subscriber_id: r.get(1)?,
                email: r.get(2)?,
                name: r.get(3)?,
                token: r.get(4)?,
                state: State::parse(&r.get::<_, String>(5)?).unwrap_or(State::Pending),
                attempts: r.get(6)?,
                active: r.get(7)?,
            })
        },
    )?;
    rows.collect()
}

/// `* → sending`, committed before the message is handed to the server. Refuses
/// (returns false) for a row that is already sent or cancelled, or no longer exists:
/// such a row must not be mailed.
pub fn mark_sending(conn: &Connection, id: i64, message_id: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, message_id = ?2, updated_at = ?3
         WHERE id = ?1 AND state IN ('pending', 'sending', 'failed_temporary', 'failed_permanent')",
        params![id, message_id, clock::now()],
    )?;
    Ok(n == 1)
}

/// `sending → prev`, one attempt fewer: a row claimed by a batch but never attempted
/// (the run stopped, the connection failed, or a crash before its `MAIL FROM`).
pub fn unclaim(conn: &Connection, id: i64, prev: State) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET state = ?2, attempts = MAX(attempts - 1, 0), updated_at = ?3
         WHERE id = ?1 AND state = 'sending'",
        params![id, prev.as_str(), clock::now()],
    )?;
    Ok(())
}

/// `sending → sent`, with the server's reply to the data and when it came.
pub fn mark_sent(conn: &Connection, id: i64, reply: &str, at: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET state = 'sent', reply = ?2, sent_at = ?3, updated_at = ?3, next_retry_at = NULL
         WHERE id = ?1 AND state = 'sending'",
        params![id, reply, at],
    )?;
    Ok(())
}

/// `sending → failed_temporary`: try again at `next_retry_at` (or in a later run).
pub fn mark_failed_temporary(conn: &Connection, id: i64, reply: &str, next_retry_at: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET state = 'failed_temporary', reply = ?2, next_retry_at = ?3, updated_at = ?4
         WHERE id = ?1 AND state = 'sending'",
        params![id, reply, next_retry_at, clock::now()],
    )?;
    Ok(())
}

/// `sending → failed_permanent`, with the server's reply (a 5xx).
pub fn mark_failed_permanent(conn: &Connection, id: i64, reply: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET state = 'failed_permanent', reply = ?2, next_retry_at = NULL, updated_at = ?3
         WHERE id = ?1 AND state = 'sending'",
        params![id, reply, clock::now()],
    )?;
    Ok(())
}

/// `sending` stays `sending` (unknown: the server may have the message), with why.
pub fn mark_unknown(conn: &Connection, id: i64, reply: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET reply = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'sending'",
        params![id, reply, clock::now()],
    )?;
    Ok(())
}

/// `pending|failed → cancelled`: the subscriber left after the send started.
pub fn mark_cancelled(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET state = 'cancelled', updated_at = ?2
         WHERE id = ?1 AND state IN ('pending', 'sending', 'failed_temporary', 'failed_permanent')",
        params![id, clock::now()],
    )?;
    Ok(())
}

/// How many of this issue's rows `mode` would send now (as a run's start counts them).
pub fn count_for(conn: &Connection, issue: &str, mode: Mode, now: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM deliveries d WHERE d.issue = :issue AND d.kind = 'subscriber' AND {}",
            mode.condition()
        ),
        rusqlite::named_params! { ":issue": issue, ":now": now },
        |r| r.get(0),
    )
}

/// Active subscribers with no row in this issue's send: everyone on a first send, and
/// those who joined after it started (left out unless `--include-new`).
pub fn active_not_in_send(conn: &Connection, issue: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM subscribers s WHERE s.status = 'active' AND s.suppressed_reason IS NULL
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue = ?1 AND d.subscriber_id = s.id)",
        [issue],
        |r| r.get(0),
    )
}

fn counts_in(conn: &Connection, issue: &str) -> rusqlite::Result<StateCounts> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' GROUP BY state",
    )?;
    let mut counts = StateCounts::default();
    let mut rows = stmt.query([issue])?;
    while let Some(r) = rows.next()? {
        if let Some(s) = State::parse(&r.get::<_, String>(0)?) {
            *counts.slot(s) = r.get(1)?;
        }
    }
    Ok(counts)
}

/// Subscriber rows of `issue` that failed temporarily and whose retry time has come.
pub fn due_for_retry(conn: &Connection, issue: &str, now: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' AND state = 'failed_temporary'
         AND next_retry_at <= ?2",
        params![issue, now],
        |r| r.get(0),
    )
}

/// Row counts per state for one issue.
pub fn counts(conn: &Connection, issue: &str) -> rusqlite::Result<StateCounts> {
    counts_in(conn, issue)
}

/// One issue as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IssueStatus {
    pub issue: String,
    pub label: String,
    pub counts: StateCounts,
    pub first_started: String,
    pub last_started: String,
    /// Whether the last run ended (false: it is running, or was killed).
    pub last_finished: bool,
    pub runs: i64,
    pub permanent_failures: Vec<PermanentFailure>,
    /// The earliest retry time of a temporary failure, if any.
    pub next_retry_at: Option<String>,
}

/// A row that did not get through, with the server's reply.
#[derive(Debug, Clone, Serialize)]
pub struct PermanentFailure {
    pub email: String,
    pub reply: Option<String>,
    pub attempts: i64,
    pub at: String,
}

/// The issues in the ledger, oldest first, or just the one whose id or label is `only`.
pub fn status(conn: &Connection, only: Option<&str>) -> rusqlite::Result<Vec<IssueStatus>> {
    let mut stmt = conn.prepare(
        "SELECT issue, MAX(label), MIN(started_at), MAX(started_at), COUNT(*),
                (SELECT finished_at IS NOT NULL FROM delivery_runs r2 WHERE r2.issue = r.issue AND r2.kind != 'list' ORDER BY id DESC LIMIT 1)
         FROM delivery_runs r
         WHERE r.kind != 'list' AND (?1 IS NULL OR issue = ?1 OR label = ?1)
         GROUP BY issue ORDER BY MIN(id)",
    )?;
    let issues: Vec<(String, String, String, String, i64, bool)> = stmt
        .query_map([only], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (issue, label, first_started, last_started, runs, last_finished) in issues {
        let counts = counts_in(conn, &issue)?;
        let mut f = conn.prepare_cached(
            "SELECT email, reply, attempts, updated_at FROM deliveries
             WHERE issue = ?1 AND kind = 'subscriber' AND state = 'failed_permanent' ORDER BY id",
        )?;
        let permanent_failures = f
            .query_map([&issue], |r| {
                Ok(PermanentFailure { email: r.get(0)?, reply: r.get(1)?, attempts: r.get(2)?, at: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        let next_retry_at: Option<String> = conn
            .query_row(
                "SELECT MIN(next_retry_at) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' AND state = 'failed_temporary'",
                [&issue],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        out.push(IssueStatus {
            issue,
            label,
            counts,
            first_started,
            last_started,
            last_finished,
            runs,
            permanent_failures,
            next_retry_at,
        });
    }
    Ok(out)
}

/// Send times of the last hour (all issues), newest last: seeds the hourly rate limit
/// so a resumed send keeps to it.
pub fn sent_since(conn: &Connection, since: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT sent_at FROM deliveries WHERE state = 'sent' AND sent_at >= ?1 ORDER BY sent_at")?;
    stmt.query_map([since], |r| r.get(0))?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::subscribers;

    fn setup(n: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::db::open(&dir.path().join("n.db")).unwrap();
        for i in 0..n {
            subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
        }
        (dir, conn)
    }

    fn issue() -> IssueKey {
        IssueKey { id: "https://lwkd.info/2020/20200510".into(), label: "2020-05-10-update".into() }
    }

    const RESUME: Mode = Mode::Resume { skip_unknown: false };

    fn page(conn: &Connection, mode: Mode) -> Vec<Row> {
        next_page(conn, &issue().id, mode, 0, 1000, &clock::now()).unwrap()
    }

    #[test]
    fn the_first_run_freezes_the_list_and_later_subscribers_wait_for_include_new() {
        let (_d, mut conn) = setup(3);
        let s = start_run(&mut conn, &issue(), RESUME, false).unwrap();
        assert!(s.first);
        assert_eq!((s.added, s.to_send, s.joined_since), (3, 3, 0));
        subscribers::add(&conn, "late@example.org", None, false).unwrap();
        let s = start_run(&mut conn, &issue(), RESUME, false).unwrap();
        assert!(!s.first);
        assert_eq!((s.added, s.to_send, s.joined_since), (0, 3, 1));
        assert!(page(&conn, RESUME).iter().all(|r| r.email != "late@example.org"));
        let s = start_run(&mut conn, &issue(), RESUME, true).unwrap();
        assert_eq!((s.added, s.to_send, s.joined_since), (1, 4, 0));
    }

    #[test]
    fn transitions_and_what_each_mode_selects() {
        let (_d, mut conn) = setup(5);
        start_run(&mut conn, &issue(), RESUME, false).unwrap();
        let rows = page(&conn, RESUME);
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        // 0: sent, 1: left in sending (a crash), 2: temporary failure due now,
        // 3: temporary failure due later, 4: permanent failure.
        for &id in &ids {
            assert!(mark_sending(&conn, id, "<m@x>").unwrap());
        }
        mark_sent(&conn, ids[0], "250 2.0.0 queued", &clock::now()).unwrap();
        mark_failed_temporary(&conn, ids[2], "451 try later", "2000-01-01T00:00:00.000Z").unwrap();
        mark_failed_temporary(&conn, ids[3], "421 busy", "2999-01-01T00:00:00.000Z").unwrap();
        mark_failed_permanent(&conn, ids[4], "550 no such user").unwrap();

        // A sent row can never become sending again: it must not be mailed twice.
        assert!(!mark_sending(&conn, ids[0], "<m@x>").unwrap());

        let c = counts(&conn, &issue().id).unwrap();
        assert_eq!((c.sent, c.sending, c.failed_temporary, c.failed_permanent), (1, 1, 2, 1));

        let got = |mode| page(&conn, mode).iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(got(RESUME), [ids[1], ids[2]]);
        assert_eq!(got(Mode::Resume { skip_unknown: true }), [ids[2]]);
        assert_eq!(got(Mode::RetryFailed), [ids[2], ids[3], ids[4]]);

        let s = start_run(&mut conn, &issue(), RESUME, false).unwrap();
        assert_eq!((s.unknown, s.to_send, s.waiting), (1, 2, 1));
        let s = start_run(&mut conn, &issue(), Mode::RetryFailed, false).unwrap();
        assert_eq!(s.to_send, 3);

        let st = status(&conn, Some("2020-05-10-update")).unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].runs, 3);
        assert_eq!(st[0].permanent_failures.len(), 1);
        assert_eq!(st[0].permanent_failures[0].reply.as_deref(), Some("550 no such user"));
        assert_eq!(st[0].next_retry_at.as_deref(), Some("2000-01-01T00:00:00.000Z"));
        assert!(status(&conn, Some("other")).unwrap().is_empty());
    }

    #[test]
    fn unsubscribed_and_removed_subscribers_are_not_mailed() {
        let (_d, mut conn) = setup(3);
        start_run(&mut conn, &issue(), RESUME, false).unwrap();
        subscribers::unsubscribe(&conn, "s1@example.org").unwrap();
        subscribers::remove(&conn, "s2@example.org").unwrap();
        let rows = page(&conn, RESUME);
        assert_eq!(rows.len(), 2, "the removed subscriber's row is gone");
        assert!(rows[0].active);
        assert!(!rows[1].active);
        mark_cancelled(&conn, rows[1].id).unwrap();
        assert!(!mark_sending(&conn, rows[1].id, "<m@x>").unwrap());
        assert_eq!(counts(&conn, &issue().id).unwrap().cancelled, 1);
    }

    #[test]
    fn pages_follow_the_cursor() {
        let (_d, mut conn) = setup(25);
        start_run(&mut conn, &issue(), RESUME, false).unwrap();
        let (mut after, mut seen) = (0, 0);
        loop {
            let p = next_page(&conn, &issue().id, RESUME, after, 10, &clock::now()).unwrap();
            if p.is_empty() {
                break;
            }
            assert!(p.len() <= 10);
            after = p.last().unwrap().id;
            seen += p.len();
        }
        assert_eq!(seen, 25);
    }
}
