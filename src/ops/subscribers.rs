//! `newsdesk subscribers ...` and `newsdesk unsubscribe`: the list commands over
//! [`crate::store::subscribers`], each opening the config's database.
//!
//! Commands that read an existing list refuse a missing database (naming it) rather
//! than create an empty one.

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::store::db;
use crate::store::subscribers::{
    self, AddOutcome, ImportOutcome, Subscriber, SubscriberCounts, SubscriberError, Which,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `subscribers import FILE`: adds the CSV's rows (see [`subscribers::import_csv`]).
pub fn import(config: &Config, file: &Path) -> Result<ImportOutcome, SubscriberError> {
    let mut conn = db::open(&config.database_path())?;
    subscribers::import_csv(&mut conn, file)
}

/// Where `subscribers export` writes.
pub enum ExportTo<'a> {
    /// Replaced atomically: a reader never sees half a list.
    File(PathBuf),
    Writer(&'a mut dyn Write),
}

/// `subscribers export`: the list as re-importable CSV; returns how many rows.
pub fn export(config: &Config, which: Which, to: ExportTo) -> Result<usize, SubscriberError> {
    let conn = subscribers::open_existing(&config.database_path())?;
    match to {
        ExportTo::File(path) => {
            let mut buf = Vec::new();
            let n = subscribers::export_csv(&conn, which, &mut buf)?;
            crate::output::write_atomic(&path, &buf)?;
            Ok(n)
        }
        ExportTo::Writer(w) => subscribers::export_csv(&conn, which, w),
    }
}

/// What `subscribers add` adds.
#[derive(Debug, Clone)]
pub struct AddOptions {
    pub email: String,
    pub name: Option<String>,
    /// Add back someone who unsubscribed (only with their consent).
    pub resubscribe: bool,
}

/// `subscribers add`: the normalised address and what happened.
pub fn add(config: &Config, options: &AddOptions) -> Result<(String, AddOutcome), SubscriberError> {
    let conn = db::open(&config.database_path())?;
    subscribers::add(&conn, &options.email, options.name.as_deref(), options.resubscribe)
}

/// `subscribers remove`: erases the subscriber and their delivery history; returns the
/// address removed.
pub fn remove(config: &Config, email: &str) -> Result<String, SubscriberError> {
    let conn = subscribers::open_existing(&config.database_path())?;
    subscribers::remove(&conn, email)
}

/// `subscribers list`: calls `each` for every subscriber `which` covers, in list
/// order, without holding the list in memory; returns the counts.
pub fn list(
    config: &Config,
    which: Which,
    each: impl FnMut(&Subscriber) -> Result<(), SubscriberError>,
) -> Result<SubscriberCounts, SubscriberError> {
    let conn = subscribers::open_existing(&config.database_path())?;
    subscribers::for_each(&conn, which, each)?;
    subscribers::counts(&conn)
}

/// Whom `newsdesk unsubscribe` unsubscribes.
#[derive(Debug, Clone)]
pub enum Unsubscribe {
    /// The token of a subscriber's unsubscribe link (what a web page passes on).
    Token(String),
    /// An address: for the editor only, never a visitor's input.
    Email(String),
}

/// Why an unsubscribe did nothing.
#[derive(Debug)]
pub enum UnsubscribeError {
    /// A "token" that is an address: refused, or whoever can pass an argument (a web
    /// page handing on a URL's path) could unsubscribe anyone.
    NotAToken(Diagnostic),
    Store(SubscriberError),
}

/// `newsdesk unsubscribe`: returns the subscriber as they were before (so the caller
/// can say whether they had already left).
pub fn unsubscribe(config: &Config, who: &Unsubscribe) -> Result<Subscriber, UnsubscribeError> {
    if let Unsubscribe::Token(token) = who
        && (token.contains('@') || token.contains("%40"))
    {
        return Err(UnsubscribeError::NotAToken(
            Diagnostic::error(
                "not-a-token",
                "this looks like an email address, not an unsubscribe token: `newsdesk unsubscribe` takes the token of a subscriber's unsubscribe link",
            )
            .help("to unsubscribe someone by address, run `newsdesk unsubscribe --email ADDRESS` yourself (never from a web page)"),
        ));
    }
    let conn = subscribers::open_existing(&config.database_path()).map_err(UnsubscribeError::Store)?;
    match who {
        Unsubscribe::Email(email) => subscribers::unsubscribe(&conn, email),
        Unsubscribe::Token(token) => subscribers::unsubscribe_token(&conn, token),
    }
    .map_err(UnsubscribeError::Store)
}
