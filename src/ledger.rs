//! The send ledger: which issue went to which list address, when, and what the server
//! answered, kept in the embedded database so `send` can refuse to mail an issue twice.
//!
//! A send is recorded in two steps: [`begin`] writes a `sending` row before the message
//! goes out, [`finish`] turns it into `sent` (with the server's reply) or `failed`.
//! Only `sent` means the server accepted the message; a `sending` row that never
//! finished tells the editor a previous run stopped half-way, where the message may or
//! may not have been delivered. Per-subscriber delivery keeps its own rows beside these.

use rusqlite::{Connection, OptionalExtension, params};

/// Where a recorded send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Handed to the transport; no answer recorded (the run stopped or is running).
    Sending,
    /// The server accepted the message.
    Sent,
    /// The transport gave up; nothing was delivered.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "sent" => Status::Sent,
            "failed" => Status::Failed,
            _ => Status::Sending,
        }
    }
}

/// One row of `list_sends`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListSend {
    pub id: i64,
    /// The post's stable id (the feed id), so a retitled issue is still the same issue.
    pub issue_id: String,
    /// The list address, lowercased.
    pub destination: String,
    pub message_id: String,
    pub subject: String,
    pub status: Status,
    /// The server's final reply (`250 2.0.0 queued as ...`) or the error that ended the send.
    pub server_reply: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub sent_at: Option<String>,
}

/// Addresses compare ignoring case, as list servers treat them.
pub fn normalize_destination(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The latest send of `issue_id` to `destination` that did not fail: a `sent` row, or a
/// `sending` row left by a run that never finished. `None` when sending is safe.
pub fn blocking_send(conn: &Connection, issue_id: &str, destination: &str) -> rusqlite::Result<Option<ListSend>> {
    conn.query_row(
        "SELECT id, issue_id, destination, message_id, subject, status, server_reply, started_at, sent_at
         FROM list_sends WHERE issue_id = ?1 AND destination = ?2 AND status != 'failed'
         ORDER BY id DESC LIMIT 1",
        params![issue_id, normalize_destination(destination)],
        row_to_send,
    )
    .optional()
}

/// Every recorded send of an issue, oldest first.
pub fn history(conn: &Connection, issue_id: &str) -> rusqlite::Result<Vec<ListSend>> {
    let mut stmt = conn.prepare(
        "SELECT id, issue_id, destination, message_id, subject, status, server_reply, started_at, sent_at
         FROM list_sends WHERE issue_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![issue_id], row_to_send)?;
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
/// block (the history is kept: the forced send is a row of its own).
pub fn claim(
    conn: &mut Connection,
    issue_id: &str,
    destination: &str,
    message_id: &str,
    subject: &str,
    force: bool,
) -> rusqlite::Result<Claim> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !force && let Some(prev) = blocking_send(&tx, issue_id, destination)? {
        return Ok(Claim::Blocked(Box::new(prev)));
    }
    let id = begin(&tx, issue_id, destination, message_id, subject)?;
    tx.commit()?;
    Ok(Claim::Started(id))
}

/// Notes why a send's outcome is unknown (the row stays `sending`, so it blocks).
pub fn note_unknown(conn: &Connection, id: i64, why: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE list_sends SET server_reply = ?2 WHERE id = ?1 AND status = 'sending'", params![id, why])?;
    Ok(())
}

/// Records that a send is starting; returns the row id for [`finish`].
pub fn begin(
    conn: &Connection,
    issue_id: &str,
    destination: &str,
    message_id: &str,
    subject: &str,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO list_sends (issue_id, destination, message_id, subject, status, started_at)
         VALUES (?1, ?2, ?3, ?4, 'sending', ?5)",
        params![issue_id, normalize_destination(destination), message_id, subject, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Records how a send ended: `Sent` with the server's reply, or `Failed` with the error.
pub fn finish(conn: &Connection, id: i64, status: Status, reply: &str) -> rusqlite::Result<()> {
    let sent_at = (status == Status::Sent).then(now);
    conn.execute(
        "UPDATE list_sends SET status = ?2, server_reply = ?3, sent_at = ?4 WHERE id = ?1",
        params![id, status.as_str(), reply, sent_at],
    )?;
    Ok(())
}

fn row_to_send(r: &rusqlite::Row) -> rusqlite::Result<ListSend> {
    Ok(ListSend {
        id: r.get(0)?,
        issue_id: r.get(1)?,
        destination: r.get(2)?,
        message_id: r.get(3)?,
        subject: r.get(4)?,
        status: Status::parse(&r.get::<_, String>(5)?),
        server_reply: r.get(6)?,
        started_at: r.get(7)?,
        sent_at: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("newsdesk.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn only_accepted_or_unfinished_sends_block() {
        let (_dir, conn) = db();
        let issue = "https://lwkd.info/2020/20200512";
        assert_eq!(blocking_send(&conn, issue, "list@example.org").unwrap(), None);

        let failed = begin(&conn, issue, "List@Example.org", "<a@x>", "S").unwrap();
        finish(&conn, failed, Status::Failed, "550 no such list").unwrap();
        assert_eq!(blocking_send(&conn, issue, "list@example.org").unwrap(), None);

        let unfinished = begin(&conn, issue, "list@example.org", "<a@x>", "S").unwrap();
        let b = blocking_send(&conn, issue, "LIST@example.org").unwrap().unwrap();
        assert_eq!((b.id, b.status), (unfinished, Status::Sending));

        finish(&conn, unfinished, Status::Sent, "250 OK").unwrap();
        let b = blocking_send(&conn, issue, "list@example.org").unwrap().unwrap();
        assert_eq!(b.status, Status::Sent);
        assert_eq!(b.server_reply.as_deref(), Some("250 OK"));
        assert!(b.sent_at.is_some());

        // Another destination or another issue is not blocked.
        assert_eq!(blocking_send(&conn, issue, "other@example.org").unwrap(), None);
        assert_eq!(blocking_send(&conn, "https://lwkd.info/2020/20200505", "list@example.org").unwrap(), None);
        assert_eq!(history(&conn, issue).unwrap().len(), 2);
    }
}
