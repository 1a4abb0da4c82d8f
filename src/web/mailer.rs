//! The thread that sends confirmation mails. A subscribe request is answered once its
//! mail is queued in the database; this thread, woken by the handler, sends what is
//! queued with its own connection, so a slow relay never holds up a page and every
//! request gets the same answer in the same time, whatever the address's state. Mails
//! still queued when `serve` stops (or crashes) go out when it starts again.

use crate::ops::subscribe::{ConfirmationSender, Mailed};
use crate::store::subscribers;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the queue is looked at without a wake-up (a mail that failed on a
/// database error is retried then).
const POLL: Duration = Duration::from_secs(30);

enum Signal {
    Wake,
    Stop,
}

/// The handle the handlers share: wake it after queueing a mail.
pub struct MailerThread {
    signals: Mutex<mpsc::Sender<Signal>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MailerThread {
    /// Starts the thread; it first sends whatever an earlier run left queued.
    pub fn start(database: PathBuf, sender: ConfirmationSender) -> MailerThread {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("newsdesk-web-mailer".into())
            .spawn(move || run(database, sender, rx))
            .expect("cannot start the mailer thread");
        MailerThread { signals: Mutex::new(tx), thread: Mutex::new(Some(thread)) }
    }

    /// Tells the thread a mail is queued.
    pub fn wake(&self) {
        if let Ok(tx) = self.signals.lock() {
            let _ = tx.send(Signal::Wake);
        }
    }

    /// Lets the mail being sent finish, then stops the thread (the rest stay queued).
    pub fn stop(&self) {
        if let Ok(tx) = self.signals.lock() {
            let _ = tx.send(Signal::Stop);
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn run(database: PathBuf, sender: ConfirmationSender, rx: mpsc::Receiver<Signal>) {
    let mut conn = None;
    loop {
        if conn.is_none() {
            conn = subscribers::open_existing(&database).ok();
        }
        if let Some(c) = conn.as_mut() {
            let mut log = |m: Mailed| match m {
                Mailed::Sent { email, reply } => tracing::info!("confirmation mail to {email}: {reply}"),
                Mailed::Failed { email, reason } => {
                    tracing::warn!("confirmation mail to {email} failed: {reason} (they can ask again)")
                }
                Mailed::Dropped { email } => {
                    tracing::info!("confirmation mail to {email} not sent: the request was gone")
                }
            };
            if let Err(e) = sender.send_queued(c, &mut log) {
                tracing::error!("confirmation mails wait: the database failed: {e}");
                conn = None;
            }
        }
        match rx.recv_timeout(POLL) {
            Ok(Signal::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
