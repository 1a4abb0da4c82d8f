//! Getting ledger transitions onto disk quickly and in order.
//!
//! **Group commit.** With `synchronous = FULL` every SQLite commit waits for an fsync
//! (milliseconds on real disks). One writer thread applies the transitions of all
//! workers that are waiting at that moment in one transaction, then acknowledges
//! each: `sending` is still committed before its `MAIL FROM`, but N workers share one
//! fsync instead of queueing for N.
//!
//! **The sent journal.** Between the server's 250 and the commit of `sent` a crash
//! would leave the row `sending`, and the next run would mail that subscriber again.
//! Waiting for the writer (and its fsync) would hold that window open for
//! milliseconds, so the worker first appends one line to `<database>.sent-journal`:
//! a single `write` that the kernel keeps even if the process is killed the next
//! instant. The next run replays the journal into the ledger before it looks for
//! unknown rows, and empties it. What is left is the time between reading the 250 off
//! the socket and that `write` — microseconds — plus, for power loss only (the journal
//! is not fsynced), the time until the writer's next commit.
//!
//! **Batch claims.** A worker claims its next rows (up to 16) as `sending` in one
//! commit, so each is still committed before its `MAIL FROM`, but one fsync serves the
//! batch. The journal keeps "unknown" exact: a claim line per row goes in (one
//! `write`) before the claim commits, and an attempt line (one `write`) right before
//! each `MAIL FROM`. A replay sends a claimed row with no attempt line back to its
//! earlier state: it never started. The attempt line is not fsynced either (measured:
//! fsyncing it cost 16 % of the throughput even with 0.15 ms fsyncs, and it would be
//! one fsync per message again): after a power loss only, a lost attempt line can make
//! a row whose message reached the server look never-started, and it is sent again
//! with the same Message-ID.

use crate::store::ledger::{self, State};
use rusqlite::Connection;
use std::sync::mpsc;

/// A ledger transition.
#[derive(Debug)]
pub enum Op {
    Sending {
        id: i64,
        message_id: String,
    },
    /// A claimed row that was never attempted goes back to the state it had (`sending`
    /// → `prev`, one attempt fewer): the run stopped or the connection failed first.
    Unclaim {
        id: i64,
        prev: State,
    },
    Sent {
        id: i64,
        reply: String,
        at: String,
    },
    FailedTemporary {
        id: i64,
        reply: String,
        next_retry_at: String,
    },
    FailedPermanent {
        id: i64,
        reply: String,
    },
    Cancelled {
        id: i64,
    },
    /// The message went out whole but its reply never came: the row stays `sending`
    /// (unknown), with what happened as its reply.
    Unknown {
        id: i64,
        reply: String,
    },
}

/// The answer to an acknowledged op: for `Sending`, whether the row may be mailed.
pub type Ack = Result<bool, String>;

struct Msg {
    ops: Vec<Op>,
    ack: Option<mpsc::SyncSender<Result<Vec<bool>, String>>>,
}

/// The handle workers use; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Applies `op` and waits until it is committed (on disk).
    pub fn commit(&self, op: Op) -> Ack {
        Ok(self.commit_all(vec![op])?.first().copied().unwrap_or(false))
    }

    /// Applies all of `ops` in one transaction (one fsync) and waits until it is
    /// committed; one answer per op, in order.
    pub fn commit_all(&self, ops: Vec<Op>) -> Result<Vec<bool>, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg { ops, ack: Some(tx) }).map_err(|_| "the ledger writer stopped".to_string())?;
        rx.recv().map_err(|_| "the ledger writer stopped".to_string())?
    }

    /// Queues `op` without waiting; it is committed with the next group, in order.
    pub fn post(&self, op: Op) -> Result<(), String> {
        self.tx.send(Msg { ops: vec![op], ack: None }).map_err(|_| "the ledger writer stopped".to_string())
    }
}

/// Starts the writer thread on `conn`. It stops when every [`Writer`] is dropped and
/// returns the connection, or the first error (after which it acknowledges every op
/// with that error).
pub fn spawn(conn: Connection) -> (Writer, std::thread::JoinHandle<(Connection, Option<String>)>) {
    let (tx, rx) = mpsc::channel::<Msg>();
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || run(conn, rx))
        .expect("spawn the ledger writer");
    (Writer { tx }, handle)
}

/// The most transitions committed together.
const MAX_GROUP: usize = 1024;

fn run(mut conn: Connection, rx: mpsc::Receiver<Msg>) -> (Connection, Option<String>) {
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => group.push(m),
                Err(_) => break,
            }
        }
        let results: Vec<Result<Vec<bool>, String>> = match &failed {
            Some(e) => vec![Err(e.clone()); group.len()],
            None => match apply(&mut conn, &group) {
                Ok(r) => r.into_iter().map(Ok).collect(),
                Err(e) => {
                    let e = format!("cannot record the send in the ledger: {e}");
                    failed = Some(e.clone());
                    vec![Err(e); group.len()]
                }
            },
        };
        for (m, r) in group.into_iter().zip(results) {
            if let Some(ack) = m.ack {
                let _ = ack.send(r);
            }
        }
    }
    (conn, failed)
}

fn apply(conn: &mut Connection, group: &[Msg]) -> rusqlite::Result<Vec<Vec<bool>>> {
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(group.len());
    for m in group {
        let mut answers = Vec::with_capacity(m.ops.len());
        for op in &m.ops {
            answers.push(apply_one(&tx, op)?);
        }
        out.push(answers);
    }
    tx.commit()?;
    Ok(out)
}

fn apply_one(tx: &rusqlite::Transaction, op: &Op) -> rusqlite::Result<bool> {
    Ok(match op {
        Op::Sending { id, message_id } => ledger::mark_sending(tx, *id, message_id)?,
        Op::Unclaim { id, prev } => ledger::unclaim(tx, *id, *prev).map(|_| true)?,
        Op::Sent { id, reply, at } => ledger::mark_sent(tx, *id, reply, at).map(|_| true)?,
        Op::FailedTemporary { id, reply, next_retry_at } => {
            ledger::mark_failed_temporary(tx, *id, reply, next_retry_at).map(|_| true)?
        }
        Op::FailedPermanent { id, reply } => ledger::mark_failed_permanent(tx, *id, reply).map(|_| true)?,
        Op::Cancelled { id } => ledger::mark_cancelled(tx, *id).map(|_| true)?,
        Op::Unknown { id, reply } => ledger::mark_unknown(tx, *id, reply).map(|_| true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::{IssueKey, Mode};

    #[test]
    fn group_commit_applies_in_order_and_acknowledges() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::store::db::open(&db).unwrap();
        crate::store::subscribers::add(&conn, "a@example.org", None, false).unwrap();
        let issue = IssueKey { id: "i".into(), label: "i".into() };
        ledger::start_run(&mut conn, &issue, Mode::Resume { skip_unknown: false }, false).unwrap();
        let id = ledger::next_page(&conn, "i", Mode::Resume { skip_unknown: false }, 0, 10, "x").unwrap()[0].id;
        let (w, handle) = spawn(conn);
        assert_eq!(w.commit(Op::Sending { id, message_id: "<m@x>".into() }), Ok(true));
        w.post(Op::Sent { id, reply: "250 ok".into(), at: "t".into() }).unwrap();
        // A sent row can never be marked sending again.
        assert_eq!(w.commit(Op::Sending { id, message_id: "<m@x>".into() }), Ok(false));
        drop(w);
        let (conn, failed) = handle.join().unwrap();
        assert!(failed.is_none());
        assert_eq!(ledger::counts(&conn, "i").unwrap().sent, 1);
    }
}
