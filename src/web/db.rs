//! The web service's one database thread: it keeps one connection and commits every
//! unsubscribe waiting at that moment in one transaction (group commit), then answers
//! each, so concurrent one-clicks share an fsync instead of queueing on SQLite's lock.
//! A request is answered only after the commit that holds it.

use crate::store::subscribers;
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

type Job = (String, oneshot::Sender<Unsubscribed>);

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
        std::thread::Builder::new()
            .name("newsdesk-web-db".into())
            .spawn(move || run(path, rx))
            .expect("cannot start the database thread");
        Database { jobs }
    }

    /// Unsubscribes the holder of `token`; resolves once that is committed.
    pub async fn unsubscribe(&self, token: String) -> Unsubscribed {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send((token, tx)).is_err() {
            return Unsubscribed::Failed;
        }
        rx.await.unwrap_or(Unsubscribed::Failed)
    }
}

fn run(path: PathBuf, rx: mpsc::Receiver<Job>) {
    let mut conn = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            // An existing list only: serve never creates an empty database.
            conn = subscribers::open_existing(&path).ok();
        }
        let outcome = match conn.as_mut() {
            Some(c) => apply(c, &batch),
            None => Err(()),
        };
        if outcome.is_err() {
            // Reopen next time: the file may have been replaced or repaired.
            conn = None;
        }
        let answer = if outcome.is_ok() { Unsubscribed::Done } else { Unsubscribed::Failed };
        for (_, reply) in batch {
            let _ = reply.send(answer);
        }
    }
}

/// Every token of `batch` in one immediate transaction; an unknown or malformed token
/// changes nothing and fails nothing.
fn apply(conn: &mut rusqlite::Connection, batch: &[Job]) -> Result<(), ()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(drop)?;
    for (token, _) in batch {
        match subscribers::unsubscribe_token(&tx, token) {
            Ok(_) | Err(subscribers::SubscriberError::UnknownToken | subscribers::SubscriberError::NotAToken) => {}
            Err(_) => return Err(()),
        }
    }
    tx.commit().map_err(drop)
}
