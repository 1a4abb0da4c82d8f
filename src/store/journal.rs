//! The sent journal: `<database>.sent-journal`, one `write` per line, so a line the
//! kernel took survives the process being killed the next instant.
//!
//! A worker appends a line after each 250 (and claim/attempt lines around each
//! batch, see [`Journal`]); the next run, or `status`, replays it into the ledger
//! before reading the ledger, and empties it. Why this window matters, and what it
//! costs, is in `delivery::writer`.

use super::ledger::{self, State};
use rusqlite::Connection;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

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
/// - `a\t<id>`: the worker is about to write the body of row `id` (its envelope may
///   already be out: a message without its body cannot have been delivered).
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
        let file = crate::store::db::private_file_options().create(true).append(true).open(&path)?;
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

    /// Records that the body of row `id` is about to go out (its envelope may already
    /// have): from here a crash leaves it unknown. One `write` call.
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
    /// The body was about to go out for this row.
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
    use crate::store::ledger::{IssueKey, Mode, State};

    #[test]
    fn the_journal_settles_rows_a_killed_run_left_sending() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("n.db");
        let mut conn = crate::store::db::open(&db).unwrap();
        for i in 0..3 {
            crate::store::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
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
        let mut conn = crate::store::db::open(&db).unwrap();
        for i in 0..4 {
            crate::store::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
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
        let mut conn = crate::store::db::open(&db).unwrap();
        for i in 0..12 {
            crate::store::subscribers::add(&conn, &format!("s{i}@example.org"), None, false).unwrap();
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
}
