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

use super::ledger;
use rusqlite::Connection;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// A ledger transition.
#[derive(Debug)]
pub enum Op {
    Sending { id: i64, message_id: String },
    Sent { id: i64, reply: String, at: String },
    FailedTemporary { id: i64, reply: String, next_retry_at: String },
    FailedPermanent { id: i64, reply: String },
    Cancelled { id: i64 },
}

/// The answer to an acknowledged op: for `Sending`, whether the row may be mailed.
pub type Ack = Result<bool, String>;

struct Msg {
    op: Op,
    ack: Option<mpsc::SyncSender<Ack>>,
}

/// The handle workers use; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Applies `op` and waits until it is committed (on disk).
    pub fn commit(&self, op: Op) -> Ack {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg { op, ack: Some(tx) }).map_err(|_| "the ledger writer stopped".to_string())?;
        rx.recv().map_err(|_| "the ledger writer stopped".to_string())?
    }

    /// Queues `op` without waiting; it is committed with the next group, in order.
    pub fn post(&self, op: Op) -> Result<(), String> {
        self.tx.send(Msg { op, ack: None }).map_err(|_| "the ledger writer stopped".to_string())
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
        let results = match &failed {
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

fn apply(conn: &mut Connection, group: &[Msg]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(group.len());
    for m in group {
        out.push(match &m.op {
            Op::Sending { id, message_id } => ledger::mark_sending(&tx, *id, message_id)?,
            Op::Sent { id, reply, at } => ledger::mark_sent(&tx, *id, reply, at).map(|_| true)?,
            Op::FailedTemporary { id, reply, next_retry_at } => {
                ledger::mark_failed_temporary(&tx, *id, reply, next_retry_at).map(|_| true)?
            }
            Op::FailedPermanent { id, reply } => ledger::mark_failed_permanent(&tx, *id, reply).map(|_| true)?,
            Op::Cancelled { id } => ledger::mark_cancelled(&tx, *id).map(|_| true)?,
        });
    }
    tx.commit()?;
    Ok(out)
}

/// `<database>.sent-journal`.
pub fn journal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".sent-journal");
    PathBuf::from(name)
}

/// The journal of a running send: one line per 250 received, appended with a single
/// `write` each (the file is opened in append mode, so workers never interleave).
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating) the journal for appending.
    pub fn open(database: &Path) -> std::io::Result<Journal> {
        let path = journal_path(database);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Journal { file, path })
    }

    /// Records that the server accepted ledger row `id`. One `write` call.
    pub fn record(&self, id: i64, at: &str, reply: &str) -> std::io::Result<()> {
        let reply: String = reply.chars().map(|c| if c == '\t' || c == '\n' || c == '\r' { ' ' } else { c }).collect();
        let line = format!("{id}\t{at}\t{reply}\n");
        (&self.file).write_all(line.as_bytes())
    }

    /// Empties the journal once everything in it is committed to the ledger.
    pub fn clear(&self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One journal line: (ledger row, sent at, reply).
pub fn read_journal(database: &Path) -> std::io::Result<Vec<(i64, String, String)>> {
    let path = journal_path(database);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        // A line cut short by a crash has no reply field or a bad id: skip it.
        let text = String::from_utf8_lossy(&line);
        let mut parts = text.splitn(3, '\t');
        if let (Some(id), Some(at), Some(reply)) = (parts.next(), parts.next(), parts.next())
            && let Ok(id) = id.parse::<i64>()
        {
            out.push((id, at.to_string(), reply.to_string()));
        }
    }
    Ok(out)
}

/// Applies a previous run's journal to the ledger (rows still `sending` become `sent`)
/// and empties it. Returns how many rows it settled.
pub fn replay_journal(conn: &mut Connection, database: &Path) -> Result<usize, String> {
    let entries = read_journal(database).map_err(|e| format!("cannot read the sent journal: {e}"))?;
    if entries.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut settled = 0;
    for (id, at, reply) in &entries {
        ledger::mark_sent(&tx, *id, reply, at).map_err(|e| e.to_string())?;
        settled += tx.changes() as usize;
    }
    tx.commit().map_err(|e| format!("cannot record the sent journal in the ledger: {e}"))?;
    let j = Journal::open(database).map_err(|e| format!("cannot open the sent journal: {e}"))?;
    j.clear().map_err(|e| format!("cannot empty the sent journal: {e}"))?;
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ledger::{IssueKey, Mode, State};

    #[test]
    fn the_journal_settles_rows_a_killed_run_left_sending() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::db::open(&db).unwrap();
        for i in 0..3 {
            crate::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
        }
        let issue = IssueKey { id: "i".into(), label: "i".into() };
        ledger::start_run(&mut conn, &issue, Mode::Resume { skip_unknown: false }, false).unwrap();
        let rows = ledger::next_page(&conn, "i", Mode::Resume { skip_unknown: false }, 0, 10, "x").unwrap();
        for r in &rows {
            assert!(ledger::mark_sending(&conn, r.id, "<m@x>").unwrap());
        }
        // Row 0's 250 made it into the journal, row 1's did not; then a line cut short.
        let j = Journal::open(&db).unwrap();
        j.record(rows[0].id, "2026-01-01T00:00:00.000Z", "250 2.0.0\tqueued").unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(journal_path(&db)).unwrap();
        f.write_all(format!("{}\t2026-01-01", rows[1].id).as_bytes()).unwrap();
        drop(f);

        assert_eq!(replay_journal(&mut conn, &db).unwrap(), 1);
        let states: Vec<State> = rows
            .iter()
            .map(|r| {
                let s: String =
                    conn.query_row("SELECT state FROM deliveries WHERE id = ?1", [r.id], |x| x.get(0)).unwrap();
                State::parse(&s).unwrap()
            })
            .collect();
        assert_eq!(states, [State::Sent, State::Sending, State::Sending]);
        let reply: String =
            conn.query_row("SELECT reply FROM deliveries WHERE id = ?1", [rows[0].id], |x| x.get(0)).unwrap();
        assert_eq!(reply, "250 2.0.0 queued");
        // Emptied once applied; replaying again changes nothing.
        assert!(read_journal(&db).unwrap().is_empty());
        assert_eq!(replay_journal(&mut conn, &db).unwrap(), 0);
    }

    #[test]
    fn group_commit_applies_in_order_and_acknowledges() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::db::open(&db).unwrap();
        crate::subscribers::add(&conn, "a@example.org", None, false).unwrap();
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
