//! The web service's one database thread: it keeps one connection and commits every
//! unsubscribe waiting at that moment in one transaction (group commit), then answers
//! each, so concurrent one-clicks share an fsync instead of queueing on SQLite's lock.
//! A request is answered only after the commit that holds it. The rarer requests
//! (subscribe, confirm, resubscribe) run on the same thread one at a time, as
//! closures over the connection ([`Database::call`]). While a send commits on the same
//! database, the thread retries SQLite's lock every 0.2 ms, and it leaves WAL
//! checkpoints to a thread of their own, so no answer waits for one.

use crate::store::subscribers::{self, SubscriberError};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// How an unsubscribe by token ended, as the handler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// Committed (or already unsubscribed), or no such token: the same page either way.
    Done,
    /// The database could not be used: the caller should try again.
    Failed,
}

/// A closure run on the thread; it gets `None` when the database cannot be opened.
type Call = Box<dyn FnOnce(Option<&mut Connection>) + Send>;

/// Work for the thread.
enum Job {
    Unsubscribe(String, oneshot::Sender<Unsubscribed>),
    Call(Call),
}

/// Most unsubscribes in one transaction.
const MAX_BATCH: usize = 256;

/// The handle the handlers share.
#[derive(Clone)]
pub struct Database {
    jobs: mpsc::Sender<Job>,
}

impl Database {
    /// Starts the thread for the database at `path` (opened on first use).
    pub fn start(path: PathBuf) -> Database {
        let (jobs, rx) = mpsc::channel::<Job>();
        let checkpoint_path = path.clone();
        std::thread::Builder::new()
            .name("newsdesk-web-db".into())
            .spawn(move || run(path, rx))
            .expect("cannot start the database thread");
        std::thread::Builder::new()
            .name("newsdesk-web-checkpoint".into())
            .spawn(move || checkpoints(checkpoint_path))
            .expect("cannot start the checkpoint thread");
        Database { jobs }
    }

    /// Unsubscribes the holder of `token`; resolves once that is committed.
    pub async fn unsubscribe(&self, token: String) -> Unsubscribed {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Unsubscribe(token, tx)).is_err() {
            return Unsubscribed::Failed;
        }
        rx.await.unwrap_or(Unsubscribed::Failed)
    }

    /// Runs `f` on the database thread. `Err(())` when the database cannot be used (the
    /// caller answers "try again"); `f` manages its own transaction.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, SubscriberError> + Send + 'static,
    ) -> Result<T, ()> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Call(Box::new(move |conn| {
            let result = match conn {
                Some(c) => f(c).map_err(drop),
                None => Err(()),
            };
            let _ = tx.send(result);
        }));
        if self.jobs.send(job).is_err() {
            return Err(());
        }
        rx.await.unwrap_or(Err(()))
    }
}

fn run(path: PathBuf, rx: mpsc::Receiver<Job>) {
    let mut conn = None;
    while let Ok(first) = rx.recv() {
        let mut unsubscribes = Vec::new();
        let mut calls = Vec::new();
        let mut take = |job| match job {
            Job::Unsubscribe(token, reply) => unsubscribes.push((token, reply)),
            Job::Call(f) => calls.push(f),
        };
        take(first);
        for _ in 1..MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => take(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            // An existing list only: serve never creates an empty database.
            conn = subscribers::open_existing(&path).ok().and_then(|mut c| {
                let quick = crate::store::db::retry_locks_quickly(&mut c).is_ok();
                // Its commits never checkpoint the WAL (that would put the checkpoint's
                // fsyncs in some request's answer): the checkpoint thread does.
                let no_checkpoints = c.pragma_update(None, "wal_autocheckpoint", 0).is_ok();
                (quick && no_checkpoints).then_some(c)
            });
        }
        if !unsubscribes.is_empty() {
            let outcome = match conn.as_mut() {
                Some(c) => apply(c, &unsubscribes),
                None => Err(()),
            };
            if outcome.is_err() {
                // Reopen next time: the file may have been replaced or repaired.
                conn = None;
            }
            let answer = if outcome.is_ok() { Unsubscribed::Done } else { Unsubscribed::Failed };
            for (_, reply) in unsubscribes {
                let _ = reply.send(answer);
            }
        }
        for f in calls {
            f(conn.as_mut());
        }
    }
}

/// Copies the WAL back into the database once a second (a passive checkpoint: it
/// never blocks a writer), off the threads that answer requests.
fn checkpoints(path: PathBuf) {
    let mut conn = None;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if conn.is_none() {
            conn = subscribers::open_existing(&path).ok();
        }
        if let Some(c) = &conn
            && c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).is_err()
        {
            conn = None;
        }
    }
}

/// Every token of `batch` in one immediate transaction; an unknown or malformed token
/// changes nothing and fails nothing.
fn apply(conn: &mut Connection, batch: &[(String, oneshot::Sender<Unsubscribed>)]) -> Result<(), ()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(drop)?;
    for (token, _) in batch {
        match subscribers::unsubscribe_token(&tx, token) {
            Ok(_) | Err(subscribers::SubscriberError::UnknownToken | subscribers::SubscriberError::NotAToken) => {}
            Err(_) => return Err(()),
        }
    }
    tx.commit().map_err(drop)
}
