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
    // 5: one ledger. A list send is a delivery to one recipient of kind `list` (no
    // subscriber row); every send of it, a forced one included, is a run of its own with
    // its own row, so the history is kept. `list_sends` rows move over with their run:
    // `sending` stays `sending` (unknown), `sent` stays `sent`, `failed` becomes
    // `failed_permanent` for a 5xx reply and `failed_temporary` otherwise; second-precision
    // times get the one clock format (milliseconds, `Z`).
    "CREATE TABLE deliveries_v5 (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL,
        label TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'subscriber' CHECK (kind IN ('subscriber', 'list')),
        subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES delivery_runs (id),
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
            ('pending', 'sending', 'sent', 'failed_temporary', 'failed_permanent', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        message_id TEXT,
        subject TEXT,
        reply TEXT,
        next_retry_at TEXT,
        sent_at TEXT,
        updated_at TEXT NOT NULL,
        CHECK ((kind = 'subscriber') = (subscriber_id IS NOT NULL)),
        UNIQUE (issue, subscriber_id)
    );
    INSERT INTO deliveries_v5 (id, issue, label, kind, subscriber_id, email, run_id, state, attempts,
                               message_id, reply, next_retry_at, sent_at, updated_at)
        SELECT id, issue, label, 'subscriber', subscriber_id, email, run_id, state, attempts,
               message_id, reply, next_retry_at, sent_at, updated_at
        FROM deliveries ORDER BY id;
    INSERT INTO delivery_runs (issue, label, kind, started_at, finished_at, summary)
        SELECT issue_id,
               replace(issue_id, rtrim(issue_id, replace(issue_id, '/', '')), ''),
               'list',
               strftime('%Y-%m-%dT%H:%M:%fZ', started_at),
               CASE WHEN status != 'sending' THEN strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(sent_at, started_at)) END,
               '{\"migrated_list_send\":' || id || '}'
        FROM list_sends ORDER BY id;
    INSERT INTO deliveries_v5 (issue, label, kind, subscriber_id, email, run_id, state, attempts,
                               message_id, subject, reply, sent_at, updated_at)
        SELECT l.issue_id, r.label, 'list', NULL, l.destination, r.id,
               CASE l.status WHEN 'sent' THEN 'sent' WHEN 'sending' THEN 'sending'
                    WHEN 'failed' THEN CASE WHEN l.server_reply GLOB '5[0-9][0-9]*' THEN 'failed_permanent'
                                            ELSE 'failed_temporary' END END,
               1, l.message_id, l.subject, l.server_reply,
               strftime('%Y-%m-%dT%H:%M:%fZ', l.sent_at),
               strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(l.sent_at, l.started_at))
        FROM list_sends l JOIN delivery_runs r ON r.kind = 'list' AND r.summary = '{\"migrated_list_send\":' || l.id || '}'
        ORDER BY l.id;
    UPDATE delivery_runs SET summary = NULL WHERE kind = 'list' AND summary LIKE '{\"migrated_list_send\":%';
    DROP TABLE deliveries;
    DROP TABLE list_sends;
    ALTER TABLE deliveries_v5 RENAME TO deliveries;
    CREATE INDEX deliveries_by_state ON deliveries (issue, state, id);
    CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
    CREATE INDEX deliveries_by_sent_at ON deliveries (sent_at) WHERE state = 'sent';
    CREATE INDEX deliveries_lists ON deliveries (issue, email, id) WHERE kind = 'list';",
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
