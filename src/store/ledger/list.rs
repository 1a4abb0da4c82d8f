//! List sends in the one ledger: which issue went to which list address, when, and what
//! the server answered, so `send` can refuse to mail an issue twice.
//!
//! A list send is a delivery to one recipient (`kind = 'list'` in `deliveries`, with no
//! subscriber): each send is a run of its own (`delivery_runs`, kind `list`) with one
//! row, in the same states and clock format as subscriber deliveries. [`claim`] writes
//! the row as `sending` before the message goes out; [`finish`] makes it `sent` (with the
//! server's reply) or failed. Only `sent` means the server accepted the message; a row
//! left `sending` tells the editor a previous run stopped half-way, or that the message
//! went out whole and no reply came: it may or may not have been delivered.

use crate::store::clock;
use crate::store::ledger::State;
use rusqlite::{Connection, OptionalExtension, params};

/// Where a list send stands, as `send` and the tests read it (a summary of [`State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListStatus {
    /// Handed to the transport; no answer recorded (the run stopped, is running, or the
    /// reply never came).
    Sending,
    /// The server accepted the message.
    Sent,
    /// The transport gave up; nothing was delivered.
    Failed,
}

impl ListStatus {
    fn of(state: State) -> ListStatus {
        match state {
            State::Sent => ListStatus::Sent,
            State::Pending | State::Sending => ListStatus::Sending,
            State::FailedTemporary | State::FailedPermanent | State::Cancelled => ListStatus::Failed,
        }
    }
}

/// One list send: a `kind = 'list'` row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListSend {
    pub id: i64,
    /// The post's stable id (the feed id), so a retitled issue is still the same issue.
    pub issue_id: String,
    /// The list address, lowercased.
    pub destination: String,
    pub message_id: String,
    pub subject: String,
    pub state: State,
    pub status: ListStatus,
    /// The server's final reply (`250 2.0.0 queued as ...`) or the error that ended the send.
    pub server_reply: Option<String>,
    /// When the send started (the ledger's clock format, UTC).
    pub started_at: String,
    pub sent_at: Option<String>,
}

/// Addresses compare ignoring case, as list servers treat them.
pub fn normalize_destination(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

const SELECT: &str = "SELECT d.id, d.issue, d.email, COALESCE(d.message_id, ''), COALESCE(d.subject, ''), d.state,
        d.reply, r.started_at, d.sent_at
    FROM deliveries d JOIN delivery_runs r ON r.id = d.run_id";

/// The latest send of `issue_id` to `destination` that did not fail: a `sent` row, or a
/// `sending` row left by a run that never finished. `None` when sending is safe.
pub fn blocking_send(conn: &Connection, issue_id: &str, destination: &str) -> rusqlite::Result<Option<ListSend>> {
    conn.query_row(
        &format!(
            "{SELECT} WHERE d.kind = 'list' AND d.issue = ?1 AND d.email = ?2
             AND d.state IN ('pending', 'sending', 'sent') ORDER BY d.id DESC LIMIT 1"
        ),
        params![issue_id, normalize_destination(destination)],
        row_to_send,
    )
    .optional()
}

/// Every list send of an issue, oldest first.
pub fn history(conn: &Connection, issue_id: &str) -> rusqlite::Result<Vec<ListSend>> {
    let mut stmt = conn.prepare(&format!("{SELECT} WHERE d.kind = 'list' AND d.issue = ?1 ORDER BY d.id"))?;
    let rows = stmt.query_map(params![issue_id], row_to_send)?;
    rows.collect()
}

/// Every list send, oldest first (for `status`).
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<ListSend>> {
    let mut stmt = conn.prepare(&format!("{SELECT} WHERE d.kind = 'list' ORDER BY d.id"))?;
    let rows = stmt.query_map([], row_to_send)?;
    rows.collect()
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A `sending` row was written: the send may go out. Its id, for [`finish`].
    Started(i64),
    /// A send of this issue to this address was already accepted or never finished.
    Blocked(Box<ListSend>),
}

/// The check and the `sending` row in one immediate transaction, so two runs can never
/// both find the issue unsent and both mail it. With `force`, an earlier send does not
/// block (the history is kept: the forced send is a run and a row of its own).
pub fn claim(
    conn: &mut Connection,
    issue: &crate::store::ledger::IssueKey,
    destination: &str,
    message_id: &str,
    subject: &str,
    force: bool,
) -> rusqlite::Result<Claim> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !force && let Some(prev) = blocking_send(&tx, &issue.id, destination)? {
        return Ok(Claim::Blocked(Box::new(prev)));
    }
    let id = begin(&tx, issue, destination, message_id, subject)?;
    tx.commit()?;
    Ok(Claim::Started(id))
}

/// Records that a send is starting (a run and its one `sending` row); returns the row
/// id for [`finish`]. [`claim`] is the checked form.
pub fn begin(
    conn: &Connection,
    issue: &crate::store::ledger::IssueKey,
    destination: &str,
    message_id: &str,
    subject: &str,
) -> rusqlite::Result<i64> {
    let now = clock::now();
    conn.execute(
        "INSERT INTO delivery_runs (issue, label, kind, started_at, pid) VALUES (?1, ?2, 'list', ?3, ?4)",
        params![issue.id, issue.label, now, std::process::id()],
    )?;
    let run_id = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO deliveries (issue, label, kind, email, run_id, state, attempts, message_id, subject, updated_at)
         VALUES (?1, ?2, 'list', ?3, ?4, 'sending', 1, ?5, ?6, ?7)",
        params![issue.id, issue.label, normalize_destination(destination), run_id, message_id, subject, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Records the id the receiving service gave the message (Buttondown's email id), in
/// the row's `message_id`.
pub fn set_message_id(conn: &Connection, id: i64, message_id: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE deliveries SET message_id = ?2 WHERE id = ?1 AND kind = 'list'", params![id, message_id])?;
    Ok(())
}

/// Notes on a row still `sending` what was asked of the receiving service (for a
/// Buttondown hand-off: the status and the idempotency key), so a run that finds the
/// row unfinished can repeat exactly that request.
pub fn set_reply(conn: &Connection, id: i64, reply: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET reply = ?2, updated_at = ?3 WHERE id = ?1 AND kind = 'list'",
        params![id, reply, clock::now()],
    )?;
    Ok(())
}

/// How a list send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted it.
    Sent,
    /// Given up after temporary failures (a later `send` may try again).
    FailedTemporary,
    /// Refused for good (a 5xx, a configuration or TLS problem).
    FailedPermanent,
    /// The whole message went out and no reply came: the row stays `sending`.
    Unknown,
}

/// Records how a send ended, with the server's reply or what happened, and closes its
/// run. Tries made are recorded as the row's attempts.
pub fn finish(conn: &Connection, id: i64, outcome: Outcome, reply: &str, attempts: u32) -> rusqlite::Result<()> {
    let now = clock::now();
    let (state, sent_at) = match outcome {
        Outcome::Sent => (State::Sent, Some(now.clone())),
        Outcome::FailedTemporary => (State::FailedTemporary, None),
        Outcome::FailedPermanent => (State::FailedPermanent, None),
        Outcome::Unknown => (State::Sending, None),
    };
    conn.execute(
        "UPDATE deliveries SET state = ?2, reply = ?3, sent_at = ?4, attempts = ?5, updated_at = ?6
         WHERE id = ?1 AND kind = 'list'",
        params![id, state.as_str(), reply, sent_at, attempts.max(1), now],
    )?;
    conn.execute(
        "UPDATE delivery_runs SET finished_at = ?2 WHERE id = (SELECT run_id FROM deliveries WHERE id = ?1)",
        params![id, now],
    )?;
    Ok(())
}

fn row_to_send(r: &rusqlite::Row) -> rusqlite::Result<ListSend> {
    let state = State::parse(&r.get::<_, String>(5)?).unwrap_or(State::Sending);
    Ok(ListSend {
        id: r.get(0)?,
        issue_id: r.get(1)?,
        destination: r.get(2)?,
        message_id: r.get(3)?,
        subject: r.get(4)?,
        state,
        status: ListStatus::of(state),
        server_reply: r.get(6)?,
        started_at: r.get(7)?,
        sent_at: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::IssueKey;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::db::open(&dir.path().join("newsdesk.db")).unwrap();
        (dir, conn)
    }

    fn issue(id: &str) -> IssueKey {
        IssueKey { id: id.into(), label: "2020-05-10-update".into() }
    }

    #[test]
    fn only_accepted_or_unfinished_sends_block() {
        let (_dir, mut conn) = db();
        let i = issue("https://lwkd.info/2020/20200512");
        assert_eq!(blocking_send(&conn, &i.id, "list@example.org").unwrap(), None);

        let failed = begin(&conn, &i, "List@Example.org", "<a@x>", "S").unwrap();
        finish(&conn, failed, Outcome::FailedPermanent, "550 no such list", 1).unwrap();
        assert_eq!(blocking_send(&conn, &i.id, "list@example.org").unwrap(), None);

        let unfinished = match claim(&mut conn, &i, "list@example.org", "<a@x>", "S", false).unwrap() {
            Claim::Started(id) => id,
            other => panic!("{other:?}"),
        };
        let b = blocking_send(&conn, &i.id, "LIST@example.org").unwrap().unwrap();
        assert_eq!((b.id, b.status), (unfinished, ListStatus::Sending));
        assert!(matches!(claim(&mut conn, &i, "list@example.org", "<a@x>", "S", false).unwrap(), Claim::Blocked(_)));

        finish(&conn, unfinished, Outcome::Sent, "250 OK", 1).unwrap();
        let b = blocking_send(&conn, &i.id, "list@example.org").unwrap().unwrap();
        assert_eq!((b.status, b.state), (ListStatus::Sent, State::Sent));
        assert_eq!(b.server_reply.as_deref(), Some("250 OK"));
        assert!(b.sent_at.as_deref().is_some_and(|t| t.len() == "2026-01-01T00:00:00.000Z".len()));

        // Another destination or another issue is not blocked; a forced send is a row of its own.
        assert_eq!(blocking_send(&conn, &i.id, "other@example.org").unwrap(), None);
        assert_eq!(blocking_send(&conn, "https://lwkd.info/2020/20200505", "list@example.org").unwrap(), None);
        assert!(matches!(claim(&mut conn, &i, "list@example.org", "<a@x>", "S", true).unwrap(), Claim::Started(_)));
        assert_eq!(history(&conn, &i.id).unwrap().len(), 3);
        // List rows never show up as subscriber deliveries.
        assert_eq!(crate::store::ledger::counts(&conn, &i.id).unwrap().total(), 0);
    }
}
