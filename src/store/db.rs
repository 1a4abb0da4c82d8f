//! The embedded database (`.newsdesk/newsdesk.db`): one SQLite file in WAL mode holding
//! the send ledger and the subscriber list, so both survive crashes together.
//!
//! The schema is a list of migrations applied in order and recorded in
//! `PRAGMA user_version`; a migration, once released, is never edited, only followed.

use crate::diag::Diagnostic;
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// Schema steps, oldest first. Append; never edit or reorder a released step.
const MIGRATIONS: &[&str] = &[
    // 1: nothing yet; later steps add the ledger and the subscribers.
    "SELECT 1;",
    // 2: the subscriber list (src/store/subscribers.rs). `email` matches ignoring ASCII case,
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
    // 3: the ledger of digests sent to a list address (folded into `deliveries` by step
    // 5; src/store/ledger/list.rs reads it there). A row is written as `sending` before
    // the message goes out and becomes `sent` only once the server accepted it, so a
    // crash in between is visible instead of silently re-sending.
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
    // 4: the per-subscriber send ledger (src/store/ledger/): one row per (issue,
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
    // 6: double opt-in (src/store/confirmations.rs). An address asked for on the web form
    // is pending: a `confirmations` row, not a subscriber, so no send can reach it. The
    // row keeps only the SHA-256 of the secret in the confirm link (the link itself
    // exists only in the mail) and when it expires. `confirmation_mails` is the ledger of
    // those mails, kept after the confirmation: `queued` when the request is accepted,
    // `sending` before the message goes out, `sent` or `failed` after.
    "CREATE TABLE confirmation_mails (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
        message_id TEXT,
        reply TEXT,
        queued_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX confirmation_mails_by_email ON confirmation_mails (email, queued_at);
    CREATE INDEX confirmation_mails_queued ON confirmation_mails (id) WHERE state = 'queued';
    CREATE TABLE confirmations (
        email TEXT PRIMARY KEY COLLATE NOCASE,
        name TEXT,
        token_hash TEXT UNIQUE,
        requested_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        mail_id INTEGER REFERENCES confirmation_mails (id)
    );
    CREATE INDEX confirmations_by_expiry ON confirmations (expires_at);",
    // 7: bounces and complaints (src/store/bounces.rs). A subscriber can be `bounced`
    // (never mailed again); `suppressed_reason` says why an address is suppressed
    // (`hard-bounce`, `soft-bounces`, or `complaint` for an unsubscribe by the spam
    // button) and when, and an import never brings it back. `verp` caches the VERP token
    // (a hash of `token`, filled in by `store::bounces` when a bounce is looked up). The status CHECK changes,
    // so the table is rebuilt (SQLite's 12-step procedure: `migrate` turns foreign keys
    // off around it, or dropping the old table would delete every delivery row).
    // `bounces` keeps each bounce as read: the SHA-256 of the raw message makes a
    // message read twice count once; a send-time refusal has none and is unique per
    // (issue, subscriber).
    "CREATE TABLE subscribers_v7 (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT,
        token TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed', 'bounced')),
        subscribed_at TEXT NOT NULL,
        unsubscribed_at TEXT,
        suppressed_reason TEXT CHECK (suppressed_reason IN ('hard-bounce', 'soft-bounces', 'complaint')),
        suppressed_at TEXT,
        suppressed_detail TEXT,
        verp TEXT,
        CHECK (status != 'bounced' OR suppressed_reason IS NOT NULL)
    );
    INSERT INTO subscribers_v7 (id, email, name, token, status, subscribed_at, unsubscribed_at)
        SELECT id, email, name, token, status, subscribed_at, unsubscribed_at FROM subscribers ORDER BY id;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_v7 RENAME TO subscribers;
    CREATE INDEX subscribers_by_status ON subscribers (status, id);
    CREATE UNIQUE INDEX subscribers_by_verp ON subscribers (verp) WHERE verp IS NOT NULL;
    CREATE INDEX subscribers_without_verp ON subscribers (id) WHERE verp IS NULL;
    CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        source_sha256 TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('bounce', 'complaint', 'send-time')),
        subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
        issue TEXT,
        address TEXT NOT NULL COLLATE NOCASE,
        status TEXT,
        permanent INTEGER NOT NULL,
        reason TEXT NOT NULL,
        diagnostic TEXT,
        matched_by TEXT CHECK (matched_by IN ('verp', 'message-id', 'address', 'send')),
        UNIQUE (source_sha256, address)
    );
    CREATE UNIQUE INDEX bounces_send_time ON bounces (issue, subscriber_id) WHERE kind = 'send-time';
    CREATE INDEX bounces_by_subscriber ON bounces (subscriber_id, issue);
    CREATE INDEX bounces_by_issue ON bounces (issue, kind);
    CREATE INDEX deliveries_by_message_id ON deliveries (message_id);
    -- The relay's refusals, looked for at every send and ingest (store::bounces).
    CREATE INDEX deliveries_refused ON deliveries (id)
        WHERE kind = 'subscriber' AND state IN ('failed_permanent', 'failed_temporary');",
];

/// Why the database could not be used, worded for the editor: every error names the
/// database and says what to do ([`DbError::help`]); [`DbError::diagnostic`] shows it
/// in the compiler style.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the folder for the database `{path}`: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("`{path}` is a folder, not a database file")]
    IsFolder { path: String },
    #[error("cannot write to the database `{path}`: {source}")]
    ReadOnly { path: String, source: rusqlite::Error },
    #[error("the database `{path}` is locked: another newsdesk (or another program) is using it ({source})")]
    Busy { path: String, source: rusqlite::Error },
    #[error("cannot open the database `{path}`: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("`{path}` is not a newsdesk database (or it is damaged): {source}")]
    Corrupt { path: String, source: rusqlite::Error },
    #[error("the database `{path}` was written by a newer newsdesk (schema {found}, this one knows {known})")]
    TooNew { path: String, found: i64, known: i64 },
    #[error("the disk holding the database `{path}` is full ({source})")]
    DiskFull { path: String, source: rusqlite::Error },
    #[error("database error in `{path}`: {source}")]
    Other { path: String, source: rusqlite::Error },
    /// An SQL error without a path, for callers that build one themselves; newsdesk's
    /// own functions return the variants above, made with [`DbError::at`].
    #[error(transparent)]
    Sql(rusqlite::Error),
}

impl DbError {
    /// Sorts an SQLite error on the database at `path` into what the editor can do about it.
    pub fn at(path: &Path, source: rusqlite::Error) -> DbError {
        use rusqlite::ErrorCode as C;
        let shown = path.display().to_string();
        if path.is_dir() {
            return DbError::IsFolder { path: shown };
        }
        match source.sqlite_error_code() {
            Some(C::ReadOnly | C::PermissionDenied) => DbError::ReadOnly { path: shown, source },
            Some(C::DatabaseBusy | C::DatabaseLocked) => DbError::Busy { path: shown, source },
            Some(C::CannotOpen) => DbError::Open { path: shown, source },
            Some(C::NotADatabase | C::DatabaseCorrupt) => DbError::Corrupt { path: shown, source },
            Some(C::DiskFull) => DbError::DiskFull { path: shown, source },
            _ => DbError::Other { path: shown, source },
        }
    }

    /// The database file this error is about (`None` only for [`DbError::Sql`]).
    pub fn path(&self) -> Option<&str> {
        match self {
            DbError::Folder { path, .. }
            | DbError::IsFolder { path }
            | DbError::ReadOnly { path, .. }
            | DbError::Busy { path, .. }
            | DbError::Open { path, .. }
            | DbError::Corrupt { path, .. }
            | DbError::TooNew { path, .. }
            | DbError::DiskFull { path, .. }
            | DbError::Other { path, .. } => Some(path),
            DbError::Sql(_) => None,
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        let name = self
            .path()
            .and_then(|p| Path::new(p).file_name())
            .map_or_else(|| "newsdesk.db".to_string(), |n| n.to_string_lossy().into_owned());
        match self {
            DbError::Folder { .. } => "check that you can write to the folder above it, or set `[subscribers] database` in config.toml to a path you can write".into(),
            DbError::IsFolder { .. } => "set `[subscribers] database` in config.toml to a file path, e.g. `database = \".newsdesk/newsdesk.db\"` (the default)".into(),
            DbError::ReadOnly { .. } | DbError::Open { .. } => format!(
                "check the permissions of the file and of its folder (`ls -l`): newsdesk must be able to read and write both, because SQLite keeps `{name}-wal` and `{name}-shm` beside the database; run newsdesk as the user who owns it, or fix the owner or mode"
            ),
            DbError::Busy { .. } => "wait for the other command to finish (a subscriber send can run for a while: `newsdesk status` shows it), then run this one again".into(),
            DbError::Corrupt { .. } => "set `[subscribers] database` to newsdesk's database; if this is it, restore it from a backup (newsdesk left the file as it was)".into(),
            DbError::TooNew { .. } => "run the newer newsdesk, or upgrade this one".into(),
            DbError::DiskFull { .. } => "free some space and run the command again: the change that failed was not committed".into(),
            DbError::Other { .. } | DbError::Sql(_) => "run the command again; if this persists, back up the database file and report this message".into(),
        }
    }

    /// The error as a diagnostic on the database file (`path: error: the database is
    /// locked: ...`), with its `help:`.
    pub fn diagnostic(&self) -> Diagnostic {
        let message = match self {
            DbError::Folder { source, .. } => format!("cannot create the database's folder: {source}"),
            DbError::IsFolder { .. } => "this is a folder, not a database file".into(),
            DbError::ReadOnly { source, .. } => format!("cannot write to the database: {source}"),
            DbError::Busy { source, .. } => {
                format!("the database is locked: another newsdesk (or another program) is using it ({source})")
            }
            DbError::Open { source, .. } => format!("cannot open the database: {source}"),
            DbError::Corrupt { source, .. } => format!("this is not a newsdesk database (or it is damaged): {source}"),
            DbError::TooNew { found, known, .. } => {
                format!("the database was written by a newer newsdesk (schema {found}, this one knows {known})")
            }
            DbError::DiskFull { source, .. } => format!("the disk holding the database is full ({source})"),
            DbError::Other { source, .. } => format!("database error: {source}"),
            DbError::Sql(e) => format!("database error: {e}"),
        };
        let d = Diagnostic::error("database", message).help(self.help());
        match self.path() {
            Some(p) => d.in_file(p),
            None => d,
        }
    }
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(DbError::IsFolder { path: shown });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|source| DbError::Folder { path: shown.clone(), source })?;
    }
    // The file holds every subscriber's unsubscribe token: created 0600 before SQLite
    // opens it, so the `-wal` and `-shm` files SQLite adds (with the file's mode) are too.
    match private_file_options().write(true).create_new(true).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(DbError::Folder { path: shown, source }),
    }
    let at = |e| DbError::at(path, e);
    let conn = Connection::open(path).map_err(at)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(at)?;
    // The first statement that reads the file tells a damaged or foreign file apart.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(at)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(at)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Makes `conn` wait for a lock held by another process (a send's commits) by trying
/// again every 0.2 ms, for up to 5 s, instead of SQLite's default waits, which grow to
/// 100 ms: for a web answer that should take milliseconds while a send commits many
/// times a second.
pub fn retry_locks_quickly(conn: &mut Connection) -> rusqlite::Result<()> {
    fn retry(attempts: i32) -> bool {
        std::thread::sleep(Duration::from_micros(200));
        attempts < 25_000
    }
    conn.busy_handler(Some(retry))
}

/// A database in memory with the current schema, for tests and fuzzing.
pub fn open_in_memory() -> Result<Connection, DbError> {
    let path = Path::new(":memory:");
    let conn = Connection::open_in_memory().map_err(|e| DbError::at(path, e))?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| DbError::at(path, e))?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Options that create a file readable and writable by its owner only (0600 on Unix),
/// for the database and the files beside it (the sent journal, the send lock).
pub fn private_file_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `dir` and any missing parents as private folders (0700 on Unix); folders
/// that exist keep their mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The files newsdesk keeps beside the database that hold subscribers' data: the
/// database, SQLite's write-ahead log and shared memory, and the sent journal.
pub fn private_files(database: &Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm", ".sent-journal"]
        .iter()
        .map(|suffix| {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        })
        .collect()
}

/// Brings the schema up to date. Two processes opening a new database at once must not
/// both run a step (`table subscribers already exists`): the version is read again
/// inside an immediate transaction, which only one process at a time holds, and all the
/// missing steps commit together.
fn migrate(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let at = |e| DbError::at(path, e);
    let read_version = |c: &Connection| -> Result<i64, DbError> {
        c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| DbError::at(path, e))
    };
    let known = MIGRATIONS.len() as i64;
    let version = read_version(conn)?;
    if version > known {
        return Err(DbError::TooNew { path: path.display().to_string(), found: version, known });
    }
    if version == known {
        return Ok(());
    }
    // A step that rebuilds a table drops the old one, which with foreign keys on would
    // cascade into every row that refers to it. The pragma only works outside a
    // transaction; the check after the commit proves the rebuild kept every reference.
    conn.pragma_update(None, "foreign_keys", "OFF").map_err(at)?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(at)?;
    let result = (|| {
        let version = read_version(conn)?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.clamp(0, known) as usize) {
            conn.execute_batch(step).map_err(at)?;
            conn.pragma_update(None, "user_version", (i + 1) as i64).map_err(at)?;
        }
        Ok(())
    })();
    let result = match result {
        Ok(()) => (|| {
            let broken: Option<String> =
                conn.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).optional().map_err(at)?;
            if let Some(table) = broken {
                return Err(DbError::at(
                    path,
                    rusqlite::Error::InvalidParameterName(format!(
                        "the schema upgrade would leave rows of `{table}` pointing nowhere; nothing was changed"
                    )),
                ));
            }
            conn.execute_batch("COMMIT").map_err(at)
        })(),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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

    #[cfg(unix)]
    #[test]
    fn the_database_and_the_files_sqlite_adds_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".newsdesk/newsdesk.db");
        let conn = open(&path).unwrap();
        conn.execute_batch("INSERT INTO subscribers (email, token, subscribed_at) VALUES ('a@b.org', 't', 'now')")
            .unwrap();
        assert_eq!(mode(&dir.path().join(".newsdesk")), 0o700);
        assert_eq!(mode(&path), 0o600);
        // While a connection is open SQLite keeps its write-ahead log and shared memory
        // beside the file, with the file's mode.
        for suffix in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        // An existing folder keeps its mode.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(open(&shared.join("n.db")).unwrap());
        assert_eq!(mode(&shared), 0o755);
        assert_eq!(mode(&shared.join("n.db")), 0o600);
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
