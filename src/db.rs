//! The embedded database (`.newsdesk/newsdesk.db`): one SQLite file in WAL mode holding
//! the send ledger and the subscriber list, so both survive crashes together.
//!
//! The schema is a list of migrations applied in order and recorded in
//! `PRAGMA user_version`; a migration, once released, is never edited, only followed.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// Schema steps, oldest first. Append; never edit or reorder a released step.
const MIGRATIONS: &[&str] = &[
    // 1: nothing yet; later steps add the ledger and the subscribers.
    "SELECT 1;",
    // 2: the subscriber list (src/subscribers.rs). `email` matches ignoring ASCII case,
    // so one person is one row; unsubscribing flips `status` and keeps the row.
    "CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT,
        token TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
        subscribed_at TEXT NOT NULL,
        unsubscribed_at TEXT
    );
    CREATE INDEX subscribers_by_status ON subscribers (status, id);",
    // 3: the ledger of digests sent to a list address (src/ledger.rs). A row is written
    // as `sending` before the message goes out and becomes `sent` only once the server
    // accepted it, so a crash in between is visible instead of silently re-sending.
    "CREATE TABLE list_sends (
        id INTEGER PRIMARY KEY,
        issue_id TEXT NOT NULL,
        destination TEXT NOT NULL,
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
        server_reply TEXT,
        started_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX list_sends_by_issue ON list_sends (issue_id, destination, id);",
    // 4: the per-subscriber send ledger (src/delivery/ledger.rs): one row per (issue,
    // subscriber), frozen when an issue's first run starts; `delivery_runs` records each
    // `send --subscribers` run. Removing a subscriber erases their rows.
    "CREATE TABLE delivery_runs (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        pid INTEGER,
        summary TEXT
    );
    CREATE INDEX delivery_runs_by_issue ON delivery_runs (issue, id);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL,
        label TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES delivery_runs (id),
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
            ('pending', 'sending', 'sent', 'failed_temporary', 'failed_permanent', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        message_id TEXT,
        reply TEXT,
        next_retry_at TEXT,
        sent_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (issue, subscriber_id)
    );
    CREATE INDEX deliveries_by_state ON deliveries (issue, state, id);
    CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
    CREATE INDEX deliveries_by_sent_at ON deliveries (sent_at) WHERE state = 'sent';",
];

/// Why the database could not be used, worded for the editor.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the folder for the database `{path}`: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("cannot open the database `{path}`: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("`{path}` is not a newsdesk database (or it is damaged): {source}")]
    Corrupt { path: String, source: rusqlite::Error },
    #[error("the database `{path}` was written by a newer newsdesk (schema {found}, this one knows {known})")]
    TooNew { path: String, found: i64, known: i64 },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Folder { path: shown.clone(), source })?;
    }
    let conn = Connection::open(path).map_err(|source| DbError::Open { path: shown.clone(), source })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // The first statement that reads the file tells a damaged or foreign file apart.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|source| DbError::Corrupt { path: shown.clone(), source })?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&conn, &shown)?;
    Ok(conn)
}

/// Brings the schema up to date. Two processes opening a new database at once must not
/// both run a step (`table subscribers already exists`): the version is read again
/// inside an immediate transaction, which only one process at a time holds, and all the
/// missing steps commit together.
fn migrate(conn: &Connection, shown: &str) -> Result<(), DbError> {
    let read_version = |c: &Connection| -> Result<i64, DbError> {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| DbError::Corrupt { path: shown.to_string(), source })
    };
    let known = MIGRATIONS.len() as i64;
    let version = read_version(conn)?;
    if version > known {
        return Err(DbError::TooNew { path: shown.to_string(), found: version, known });
    }
    if version == known {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version = read_version(conn)?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.clamp(0, known) as usize) {
            conn.execute_batch(step)?;
            conn.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".newsdesk/newsdesk.db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newsdesk.db");
        std::fs::write(&path, b"this is not sqlite, just some text that is long enough to be a header").unwrap();
        let err = open(&path).unwrap_err();
        assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("not a newsdesk database"));
        // Nothing was overwritten.
        assert!(std::fs::read(&path).unwrap().starts_with(b"this is not sqlite"));
    }
}
