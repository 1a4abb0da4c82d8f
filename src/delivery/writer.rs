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

use super::ledger::{self, State};
use rusqlite::Connection;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
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

/// `<database>.sent-journal`.
pub fn journal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".sent-journal");
    PathBuf::from(name)
}

/// The journal of a running send, appended to with one `write` per call (the file is
/// opened in append mode, so workers never interleave). Three kinds of line:
///
/// - `<id>\t<at>\t<reply>`: the server accepted ledger row `id` (its 250).
/// - `c\t<id>\t<state>`: row `id`, until now in `<state>`, is about to be claimed
///   (committed `sending`) as part of a worker's batch. Written before the claim commits.
/// - `a\t<id>`: the worker is about to say `MAIL FROM` for row `id`.
///
/// Replay after a crash: a sent line settles the row; a claimed row still `sending`
/// with no attempt line never started and goes back to its earlier state; a row with
/// an attempt line and no sent line stays `sending` (unknown). Rows that were already
/// unknown when claimed get no claim line, so they stay unknown.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating) the journal for appending.
    pub fn open(database: &Path) -> std::io::Result<Journal> {
        let path = journal_path(database);
        let file = crate::db::private_file_options().create(true).append(true).open(&path)?;
        Ok(Journal { file, path })
    }

    /// Records that the server accepted ledger row `id`. One `write` call.
    pub fn record(&self, id: i64, at: &str, reply: &str) -> std::io::Result<()> {
        let reply: String = reply.chars().map(|c| if c == '\t' || c == '\n' || c == '\r' { ' ' } else { c }).collect();
        let line = format!("{id}\t{at}\t{reply}\n");
        (&self.file).write_all(line.as_bytes())
    }

    /// Records that rows (id, state before) are about to be claimed. One `write` call.
    pub fn claims(&self, rows: &[(i64, State)]) -> std::io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(rows.len() * 24);
        for (id, prev) in rows {
            text.push_str(&format!("c\t{id}\t{}\n", prev.as_str()));
        }
        (&self.file).write_all(text.as_bytes())
    }

    /// Records that `MAIL FROM` for row `id` is about to go out. One `write` call.
    pub fn attempt(&self, id: i64) -> std::io::Result<()> {
        (&self.file).write_all(format!("a\t{id}\n").as_bytes())
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

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// (ledger row, sent at, reply).
    Sent(i64, String, String),
    /// (ledger row, state before the claim).
    Claimed(i64, State),
    /// `MAIL FROM` was about to go out for this row.
    Attempted(i64),
}

/// The journal's lines, in order.
pub fn read_journal(database: &Path) -> std::io::Result<Vec<Entry>> {
    let path = journal_path(database);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        // Each line is one `write` ending in `\n`: a last line without one was torn by
        // a crash (`a\t12` of `a\t123\n` would name another row), so it is not read.
        let Some(complete) = line.strip_suffix(b"\n") else { break };
        let text = String::from_utf8_lossy(complete);
        let mut parts = text.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("c"), Some(id), Some(prev)) => {
                if let (Ok(id), Some(prev)) = (id.parse::<i64>(), State::parse(prev)) {
                    out.push(Entry::Claimed(id, prev));
                }
            }
            (Some("a"), Some(id), None) => {
                if let Ok(id) = id.parse::<i64>() {
                    out.push(Entry::Attempted(id));
                }
            }
            (Some(id), Some(at), Some(reply)) => {
                if let Ok(id) = id.parse::<i64>() {
                    out.push(Entry::Sent(id, at.to_string(), reply.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Applies a previous run's journal to the ledger (rows still `sending` become `sent`
/// when their 250 is there; claimed rows never attempted go back to their earlier
/// state) and empties it. Returns how many rows it settled as sent.
pub fn replay_journal(conn: &mut Connection, database: &Path) -> Result<usize, String> {
    let entries = read_journal(database).map_err(|e| format!("cannot read the sent journal: {e}"))?;
    if entries.is_empty() {
        return Ok(0);
    }
    let mut attempted = std::collections::HashSet::new();
    let mut claimed = std::collections::HashMap::new();
    for e in &entries {
        match e {
            Entry::Sent(id, ..) | Entry::Attempted(id) => {
                attempted.insert(*id);
            }
            Entry::Claimed(id, prev) => {
                claimed.insert(*id, *prev);
            }
        }
    }
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut settled = 0;
    for e in &entries {
        if let Entry::Sent(id, at, reply) = e {
            ledger::mark_sent(&tx, *id, reply, at).map_err(|e| e.to_string())?;
            settled += tx.changes() as usize;
        }
    }
    for (id, prev) in &claimed {
        if !attempted.contains(id) {
            ledger::unclaim(&tx, *id, *prev).map_err(|e| e.to_string())?;
        }
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
        let mut f = std::fs::OpenOptions::new().append(true).open(journal_path(&db)).unwrap();
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
    fn claimed_rows_never_attempted_go_back_and_attempted_ones_stay_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::db::open(&db).unwrap();
        for i in 0..4 {
            crate::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
        }
        let issue = IssueKey { id: "i".into(), label: "i".into() };
        ledger::start_run(&mut conn, &issue, Mode::Resume { skip_unknown: false }, false).unwrap();
        let rows = ledger::next_page(&conn, "i", Mode::Resume { skip_unknown: false }, 0, 10, "x").unwrap();
        // Rows 0-2 claimed in one batch (row 3 was unknown already: no claim line).
        let j = Journal::open(&db).unwrap();
        j.claims(&[(rows[0].id, State::Pending), (rows[1].id, State::Pending), (rows[2].id, State::Pending)]).unwrap();
        for r in &rows {
            assert!(ledger::mark_sending(&conn, r.id, "<m@x>").unwrap());
        }
        // Row 0 sent, row 1 attempted (no 250 noted), row 2 never started.
        j.attempt(rows[0].id).unwrap();
        j.record(rows[0].id, "2026-01-01T00:00:00.000Z", "250 ok").unwrap();
        j.attempt(rows[1].id).unwrap();
        drop(j);
        assert_eq!(replay_journal(&mut conn, &db).unwrap(), 1);
        let get = |id: i64| -> (String, i64) {
            conn.query_row("SELECT state, attempts FROM deliveries WHERE id = ?1", [id], |x| Ok((x.get(0)?, x.get(1)?)))
                .unwrap()
        };
        assert_eq!(get(rows[0].id), ("sent".into(), 1));
        assert_eq!(get(rows[1].id), ("sending".into(), 1));
        assert_eq!(get(rows[2].id), ("pending".into(), 0));
        assert_eq!(get(rows[3].id), ("sending".into(), 1));
    }

    #[test]
    fn a_torn_last_line_is_not_read_as_another_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::db::open(&db).unwrap();
        for i in 0..12 {
            crate::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
        }
        let issue = IssueKey { id: "i".into(), label: "i".into() };
        ledger::start_run(&mut conn, &issue, Mode::Resume { skip_unknown: false }, false).unwrap();
        let rows = ledger::next_page(&conn, "i", Mode::Resume { skip_unknown: false }, 0, 20, "x").unwrap();
        let (one, twelve) = (rows[0].id, rows[11].id);
        assert_eq!((one, twelve), (1, 12));
        let j = Journal::open(&db).unwrap();
        j.claims(&[(one, State::Pending), (twelve, State::Pending)]).unwrap();
        drop(j);
        for id in [one, twelve] {
            assert!(ledger::mark_sending(&conn, id, "<m@x>").unwrap());
        }
        // The crash tore `a\t12\n` after its first digit: row 1 was never attempted.
        let mut f = std::fs::OpenOptions::new().append(true).open(journal_path(&db)).unwrap();
        f.write_all(b"a\t1").unwrap();
        drop(f);
        let entries = read_journal(&db).unwrap();
        assert_eq!(entries, [Entry::Claimed(1, State::Pending), Entry::Claimed(12, State::Pending)]);
        replay_journal(&mut conn, &db).unwrap();
        let state = |id: i64| -> String {
            conn.query_row("SELECT state FROM deliveries WHERE id = ?1", [id], |x| x.get(0)).unwrap()
        };
        assert_eq!(state(one), "pending", "row 1 never started");
        assert_eq!(state(twelve), "pending", "row 12's attempt line never made it whole either");
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
