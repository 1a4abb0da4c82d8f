//! The send engine: a feeder thread streams this run's ledger rows page by page into
//! a small queue; N workers, each owning one SMTP connection, take a few rows at a
//! time, mark them `sending` in one commit (a batch claim, see [`super::writer`]), and
//! for each: wait for a slot from the shared rate limiter, note the attempt in the
//! journal, send, and mark it `sent` on the server's 250 or failed otherwise. Claimed
//! rows a worker does not get to (Ctrl-C, no connection) go back to their earlier state.
//!
//! Temporary failures go back into the queue with an exponential, jittered delay until
//! `max_attempts` tries in this run, then stay `failed_temporary` for a later run. A
//! worker that cannot connect puts its row back untouched and backs off; when no
//! connection can be made for `max_attempts` tries in a row the run stops, leaving the
//! rest `pending` for `--resume`.
//!
//! Memory is bounded by the queue (two pages) plus rows waiting for a retry, whatever
//! the list size.

use super::pace::{Pace, SlowDowns};
use super::rate::RateLimiter;
use super::writer::{self, Op, Writer};
use crate::store::clock;
use crate::store::journal::Journal;
use crate::store::ledger::{self, IssueKey, Mode, Row, State};
use crate::transport::Failure;
use crate::transport::smtp::{self, Server};
use lettre::address::Envelope;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use std::collections::{BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A message ready for the wire.
pub struct Outgoing {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    /// Stable for the (issue, subscriber) pair: a resend after a crash carries the same one.
    pub message_id: String,
}

/// Turns a ledger row into its personalised message. Called from several threads.
pub type Render<'a> = dyn Fn(&Row) -> Result<Outgoing, String> + Sync + 'a;

/// How the engine paces and retries.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub connections: usize,
    pub max_per_second: f64,
    pub max_per_hour: u64,
    /// Tries per row within one run (and connection attempts in a row before giving
    /// up), and the waits between them.
    pub retry: crate::transport::RetryPolicy,
    /// Rows read from the ledger at a time.
    pub page_size: usize,
}

/// What the run asks for.
pub struct Request<'a> {
    pub database: PathBuf,
    pub issue: IssueKey,
    pub mode: Mode,
    pub include_new: bool,
    pub server: Server,
    pub settings: EngineSettings,
    pub render: &'a Render<'a>,
    /// Set by Ctrl-C: finish the messages in flight, then stop.
    pub stop: Arc<AtomicBool>,
    /// Called once the run has started (ledger frozen), with what it found.
    pub on_start: &'a (dyn Fn(&ledger::Started) + Sync),
    /// Called after each row is settled (for the progress bar).
    pub on_progress: &'a (dyn Fn(&Progress) + Sync),
}

/// Counters of the running send (this run only).
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub failed_temporary: AtomicU64,
    pub failed_permanent: AtomicU64,
    pub cancelled: AtomicU64,
    /// Messages handed over whole whose reply never came: left unknown, not retried.
    pub unknown: AtomicU64,
    pub retries: AtomicU64,
    /// Rows found `sending` (interrupted run) and sent again.
    pub unknown_resent: AtomicU64,
}

impl Progress {
    /// Rows settled so far.
    pub fn done(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
            + self.failed_temporary.load(Ordering::Relaxed)
            + self.failed_permanent.load(Ordering::Relaxed)
            + self.cancelled.load(Ordering::Relaxed)
            + self.unknown.load(Ordering::Relaxed)
    }
}

/// The outcome of a run, as the final summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub issue: String,
    pub label: String,
    pub run_id: i64,
    pub first_run: bool,
    /// Rows this run set out to send.
    pub to_send: i64,
    pub sent: u64,
    /// Already sent by earlier runs: skipped.
    pub already_sent: i64,
    pub failed_temporary: u64,
    pub failed_permanent: u64,
    /// Unsubscribed after the send started: not mailed.
    pub cancelled: u64,
    /// Sent whole, but the server's reply never came (it may have the message): left
    /// unknown for the next run, never retried in this one.
    pub unknown: u64,
    /// Rows left `sending` by an interrupted run and sent again (same Message-ID).
    pub unknown_resent: u64,
    /// Rows an interrupted run left `sending` whose 250 was in the sent journal: settled
    /// as sent, not mailed again.
    pub journal_replayed: usize,
    /// Rows left `sending` that `--skip-unknown` left alone.
    pub unknown_skipped: i64,
    pub retries: u64,
    /// How often and why the relay asked newsdesk to slow down (see [`super::pace`]).
    pub slow_downs: SlowDowns,
    /// Subscribers who joined after the send started and were left out.
    pub joined_since: i64,
    /// Temporary failures whose retry time has not come (left for a later resume).
    pub waiting: i64,
    pub elapsed_secs: f64,
    pub per_second: f64,
    /// The ledger after the run.
    pub ledger: ledger::StateCounts,
    /// Why the run stopped early (Ctrl-C, the server unreachable, a database error).
    pub stopped: Option<String>,
    /// Problems that did not affect the send (e.g. the journal could not be emptied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] crate::store::db::DbError),
    #[error("cannot start the send in the ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Journal(String),
}

/// A row in the queue, with what this run has tried.
#[derive(Debug)]
struct Job {
    row: Row,
    tries: u32,
    /// Slow-down replies this run met for the row (not counted as tries, up to
    /// [`MAX_SLOWED`]).
    slowed: u32,
    /// The row's state in the ledger while it waits (what an unclaim restores).
    prev: State,
}

impl Job {
    fn new(row: Row) -> Job {
        let prev = row.state;
        Job { row, tries: 0, slowed: 0, prev }
    }
}

/// A job waiting for its retry time (earliest first in the heap).
struct Delayed {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

#[derive(Default)]
struct QueueState {
    fresh: VecDeque<Job>,
    delayed: BinaryHeap<Delayed>,
    feeder_done: bool,
    in_flight: usize,
    seq: u64,
}

/// The work queue shared by the feeder and the workers.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
    capacity: usize,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeder: waits for room, then adds. False when the run is stopping.
    fn push(&self, job: Job, stop: &AtomicBool) -> bool {
        let mut st = self.lock();
        while st.fresh.len() >= self.capacity {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            st = self.changed.wait_timeout(st, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
        st.fresh.push_back(job);
        self.changed.notify_all();
        true
    }

    fn feeder_finished(&self) {
        self.lock().feeder_done = true;
        self.changed.notify_all();
    }

    /// Worker: the next job (due retries first), or `None` when the run is over.
    fn take(&self, stop: &AtomicBool) -> Option<Job> {
        let mut st = self.lock();
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let now = Instant::now();
            if st.delayed.peek().is_some_and(|d| d.due <= now) {
                let d = st.delayed.pop().expect("peeked");
                st.in_flight += 1;
                return Some(d.job);
            }
            if let Some(job) = st.fresh.pop_front() {
                st.in_flight += 1;
                self.changed.notify_all();
                return Some(job);
            }
            if st.feeder_done && st.delayed.is_empty() && st.in_flight == 0 {
                return None;
            }
            let nap = st.delayed.peek().map_or(Duration::from_millis(200), |d| d.due.saturating_duration_since(now));
            st = self
                .changed
                .wait_timeout(st, nap.clamp(Duration::from_millis(1), Duration::from_millis(200)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Worker: the next job if one is ready now (due retries first), without waiting.
    fn try_take(&self) -> Option<Job> {
        let mut st = self.lock();
        if st.delayed.peek().is_some_and(|d| d.due <= Instant::now()) {
            let d = st.delayed.pop().expect("peeked");
            st.in_flight += 1;
            return Some(d.job);
        }
        let job = st.fresh.pop_front()?;
        st.in_flight += 1;
        self.changed.notify_all();
        Some(job)
    }

    /// Whether the run's work is over: every row read, settled, none waiting.
    fn finished(&self) -> bool {
        let st = self.lock();
        st.feeder_done && st.fresh.is_empty() && st.delayed.is_empty() && st.in_flight == 0
    }

    /// Worker: up to `n` more jobs that are ready now (due retries first), without
    /// waiting, and no more than an even share of the fresh ones among `workers`, so
    /// the last rows of a send are not all claimed by one worker.
    fn take_more(&self, n: usize, workers: usize, into: &mut Vec<Job>) {
        let mut st = self.lock();
        let now = Instant::now();
        let mut took = 0;
        while took < n && st.delayed.peek().is_some_and(|d| d.due <= now) {
            let d = st.delayed.pop().expect("peeked");
            st.in_flight += 1;
            into.push(d.job);
            took += 1;
        }
        let share = if st.feeder_done { st.fresh.len().div_ceil(workers.max(1)) } else { st.fresh.len() };
        let fresh = (n - took).min(share);
        for _ in 0..fresh {
            let job = st.fresh.pop_front().expect("counted");
            st.in_flight += 1;
            into.push(job);
        }
        if fresh > 0 {
            self.changed.notify_all();
        }
    }

    /// Worker: the job is settled.
    fn done(&self) {
        let mut st = self.lock();
        st.in_flight -= 1;
        self.changed.notify_all();
    }

    /// Worker: try this job again at `due` (or right away when `due` is now).
    fn retry(&self, job: Job, due: Instant) {
        let mut st = self.lock();
        st.in_flight -= 1;
        st.seq += 1;
        let seq = st.seq;
        st.delayed.push(Delayed { due, seq, job });
        self.changed.notify_all();
    }
}

/// Everything the workers share.
struct Shared<'a> {
    req: &'a Request<'a>,
    queue: Queue,
    rate: RateLimiter,
    /// Fewer connections and a lower rate while the relay asks for it.
    pace: Pace,
    /// SMTP connections the workers hold now.
    connected: AtomicUsize,
    /// Ledger transitions, group-committed by the writer thread.
    writer: Writer,
    /// Where 250s are noted the instant they arrive (see [`super::writer`]).
    journal: Journal,
    progress: Progress,
    /// The first reason the run had to stop early.
    fatal: Mutex<Option<String>>,
    /// Set on a fatal error or Ctrl-C.
    halt: AtomicBool,
}

impl Shared<'_> {
    fn stopping(&self) -> bool {
        self.halt.load(Ordering::Relaxed) || self.req.stop.load(Ordering::Relaxed)
    }

    fn fail(&self, why: String) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(why);
        }
        self.halt.store(true, Ordering::Relaxed);
        self.queue.changed.notify_all();
    }

    /// Queues a ledger transition; a failure stops the run (the ledger must stay truthful).
    fn post(&self, op: Op) -> bool {
        match self.writer.post(op) {
            Ok(()) => true,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }
}

/// Runs one send. The caller holds the send lock for the whole call.
pub fn run(req: &Request) -> Result<RunSummary, StartError> {
    let started_at = Instant::now();
    let mut conn = crate::store::db::open(&req.database)?;
    // 250s a killed run noted but could not commit: settle them before anything else.
    let replayed = crate::store::journal::replay_journal(&mut conn, &req.database).map_err(StartError::Journal)?;
    let started = ledger::start_run(&mut conn, &req.issue, req.mode, req.include_new)?;
    (req.on_start)(&started);
    let recent = recent_sends(&conn, req.settings.max_per_hour)?;
    let journal =
        Journal::open(&req.database).map_err(|e| StartError::Journal(format!("cannot open the sent journal: {e}")))?;
    let (writer, writer_thread) = writer::spawn(conn);
    let settings = &req.settings;
    let shared = Shared {
        req,
        queue: Queue {
            state: Mutex::new(QueueState::default()),
            changed: Condvar::new(),
            capacity: settings.page_size * 2,
        },
        rate: RateLimiter::new(settings.max_per_second, settings.max_per_hour, recent),
        pace: Pace::new(settings.connections),
        connected: AtomicUsize::new(0),
        writer,
        journal,
        progress: Progress::default(),
        fatal: Mutex::new(None),
        halt: AtomicBool::new(false),
    };
    let reader = crate::store::db::open(&req.database)?;
    let workers_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Ctrl-C sets `req.stop`; the watcher turns it into a halt of every thread.
        s.spawn(|| {
            while !workers_done.load(Ordering::Relaxed) {
                if req.stop.load(Ordering::Relaxed) {
                    shared.halt.store(true, Ordering::Relaxed);
                    shared.queue.changed.notify_all();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let feeder = s.spawn(|| feed(&shared, reader));
        let workers: Vec<_> = (0..settings.connections)
            .map(|i| {
                let shared = &shared;
                s.spawn(move || work(shared, i))
            })
            .collect();
        for w in workers {
            if w.join().is_err() {
                shared.fail("a send worker crashed".into());
            }
        }
        workers_done.store(true, Ordering::Relaxed);
        // Workers are gone: release a feeder waiting for queue room.
        shared.halt.store(true, Ordering::Relaxed);
        let _ = feeder.join();
    });
    let Shared { writer, journal, progress, fatal, pace, .. } = shared;
    drop(writer);
    let (conn, writer_failed) =
        writer_thread.join().map_err(|_| StartError::Journal("the ledger writer crashed".into()))?;
    let mut fatal = fatal.into_inner().unwrap_or_else(|p| p.into_inner());
    if writer_failed.is_some() && fatal.is_none() {
        fatal = writer_failed.clone();
    }
    let mut warnings = Vec::new();
    if writer_failed.is_none() {
        // Every 250 in the journal is committed now.
        if let Err(e) = journal.clear() {
            warnings
                .push(format!("cannot empty {}: {e} (harmless: the next run replays it)", journal.path().display()));
        }
    }
    let elapsed = started_at.elapsed().as_secs_f64();
    let p = &progress;
    let sent = p.sent.load(Ordering::Relaxed);
    let stopped = fatal.or_else(|| req.stop.load(Ordering::Relaxed).then(|| "interrupted (Ctrl-C)".to_string()));
    let mut summary = RunSummary {
        issue: req.issue.id.clone(),
        label: req.issue.label.clone(),
        run_id: started.run_id,
        first_run: started.first,
        to_send: started.to_send,
        sent,
        already_sent: started.before.sent,
        failed_temporary: p.failed_temporary.load(Ordering::Relaxed),
        failed_permanent: p.failed_permanent.load(Ordering::Relaxed),
        cancelled: p.cancelled.load(Ordering::Relaxed),
        unknown: p.unknown.load(Ordering::Relaxed),
        unknown_resent: p.unknown_resent.load(Ordering::Relaxed),
        journal_replayed: replayed,
        unknown_skipped: if matches!(req.mode, Mode::Resume { skip_unknown: true }) { started.unknown } else { 0 },
        retries: p.retries.load(Ordering::Relaxed),
        slow_downs: pace.summary(),
        joined_since: started.joined_since,
        waiting: started.waiting,
        elapsed_secs: elapsed,
        per_second: if elapsed > 0.0 { sent as f64 / elapsed } else { 0.0 },
        ledger: ledger::StateCounts::default(),
        stopped,
        warnings,
    };
    summary.ledger = ledger::counts(&conn, &req.issue.id)?;
    let json = serde_json::to_value(&summary).unwrap_or_default();
    ledger::finish_run(&conn, started.run_id, &json)?;
    Ok(summary)
}

/// Send times of the last hour, as `Instant`s, when an hourly limit is set.
fn recent_sends(conn: &Connection, per_hour: u64) -> rusqlite::Result<Vec<Instant>> {
    if per_hour == 0 {
        return Ok(Vec::new());
    }
    let now_wall = chrono::Utc::now();
    let since = clock::format(now_wall - chrono::Duration::hours(1));
    let now = Instant::now();
    Ok(ledger::sent_since(conn, &since)?
        .iter()
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .filter_map(|t| (now_wall - t.with_timezone(&chrono::Utc)).to_std().ok())
        .filter_map(|ago| now.checked_sub(ago))
        .collect())
}

/// The feeder: pages through this run's rows in ledger order.
fn feed(shared: &Shared, reader: Connection) {
    let req = shared.req;
    let mut after = 0;
    let now = clock::now();
    'pages: loop {
        if shared.stopping() {
            break;
        }
        let page = match ledger::next_page(&reader, &req.issue.id, req.mode, after, req.settings.page_size, &now) {
            Ok(p) => p,
            Err(e) => {
                shared.fail(format!("cannot read the ledger: {e}"));
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in page {
            if !shared.queue.push(Job::new(row), &shared.halt) {
                break 'pages;
            }
        }
    }
    shared.queue.feeder_finished();
}

/// Slow-down replies one row may meet in a run without their counting as tries:
/// bounded, so a relay that always says "slow down" still ends the run.
const MAX_SLOWED: u32 = 10;

/// The most rows a worker claims in one commit.
const MAX_CLAIM: usize = 16;

/// How far ahead (in time) a worker may claim under a rate limit.
const CLAIM_HORIZON_SECS: f64 = 0.1;

/// How many rows a worker claims at a time: [`MAX_CLAIM`] without a rate limit; under
/// one, no more than the worker's share of the rate sends within
/// [`CLAIM_HORIZON_SECS`] (at least one), so claimed rows do not sit in `sending`
/// while the limiter holds them back. The limiter still gates each send.
fn claim_size(settings: &EngineSettings) -> usize {
    let mut rate = f64::INFINITY;
    if settings.max_per_second > 0.0 {
        rate = settings.max_per_second;
    }
    if settings.max_per_hour > 0 {
        rate = rate.min(settings.max_per_hour as f64 / 3600.0);
    }
    if rate.is_infinite() {
        return MAX_CLAIM;
    }
    ((rate * CLAIM_HORIZON_SECS / settings.connections.max(1) as f64).floor() as usize).clamp(1, MAX_CLAIM)
}

/// A row claimed (`sending`, committed) with its message, not attempted yet.
struct Claimed {
    job: Job,
    msg: Outgoing,
    /// Left `sending` by an interrupted run (counted as resent when it goes out).
    was_unknown: bool,
}

/// Takes up to `k` rows, settles those that need no message (cancelled, cannot be
/// built), and claims the rest as `sending` in one commit, after noting the claims in
/// the journal (see [`Journal`]). `None` when the run is over or stops, or, unless
/// `wait`, when no row is ready now.
fn claim(shared: &Shared, k: usize, wait: bool) -> Option<VecDeque<Claimed>> {
    let first = if wait { shared.queue.take(&shared.halt)? } else { shared.queue.try_take()? };
    let mut jobs = vec![first];
    shared.queue.take_more(k.saturating_sub(1), shared.req.settings.connections, &mut jobs);
    let mut ready = Vec::with_capacity(jobs.len());
    for job in jobs {
        if shared.stopping() {
            shared.queue.done();
            continue;
        }
        if !job.row.active {
            if shared.post(Op::Cancelled { id: job.row.id }) {
                shared.progress.cancelled.fetch_add(1, Ordering::Relaxed);
                (shared.req.on_progress)(&shared.progress);
            }
            shared.queue.done();
            continue;
        }
        match (shared.req.render)(&job.row) {
            Ok(m) => ready.push((job, m)),
            Err(e) => {
                // This one message cannot be built (say, an address edited by hand into
                // something invalid): record why, and go on with the others.
                match shared.writer.commit(Op::Sending { id: job.row.id, message_id: String::new() }) {
                    Ok(true) => {
                        if shared.post(Op::FailedPermanent { id: job.row.id, reply: format!("not sent: {e}") }) {
                            shared.progress.failed_permanent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => shared.fail(e),
                }
                shared.queue.done();
                (shared.req.on_progress)(&shared.progress);
            }
        }
    }
    if shared.stopping() {
        for _ in &ready {
            shared.queue.done();
        }
        return None;
    }
    // Rows that were unknown already get no claim line: they stay unknown after a crash.
    let lines: Vec<(i64, State)> =
        ready.iter().filter(|(j, _)| j.prev != State::Sending).map(|(j, _)| (j.row.id, j.prev)).collect();
    if let Err(e) = shared.journal.claims(&lines) {
        shared.fail(format!("cannot write the sent journal {}: {e}", shared.journal.path().display()));
    }
    let answers = if shared.stopping() {
        Err(String::new())
    } else {
        let ops = ready.iter().map(|(j, m)| Op::Sending { id: j.row.id, message_id: m.message_id.clone() }).collect();
        shared.writer.commit_all(ops)
    };
    let answers = match answers {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                shared.fail(e);
            }
            for _ in &ready {
                shared.queue.done();
            }
            return None;
        }
    };
    let mut batch = VecDeque::with_capacity(ready.len());
    for ((job, msg), may_send) in ready.into_iter().zip(answers) {
        if may_send {
            let was_unknown = job.row.state == State::Sending && job.tries == 0;
            batch.push_back(Claimed { job, msg, was_unknown });
        } else {
            // Sent, cancelled or removed meanwhile: never mail it.
            shared.queue.done();
        }
    }
    Some(batch)
}

/// Hands back claimed rows that were never attempted: each goes back to its earlier
/// state in the ledger, and into the queue (`requeue`) or out of this run.
fn release(shared: &Shared, rows: impl IntoIterator<Item = Job>, requeue: bool) {
    for job in rows {
        shared.post(Op::Unclaim { id: job.row.id, prev: job.prev });
        if requeue {
            shared.queue.retry(job, Instant::now());
        } else {
            shared.queue.done();
        }
    }
}

/// One worker's connection and the rows it holds.
struct Worker<'a> {
    /// Worker number, from 0: while the relay asks for fewer connections, the higher
    /// ones wait (see [`Pace::allows`]).
    index: usize,
    conn: Option<Held<'a>>,
    /// For the last-moment "still subscribed?" check.
    reader: Option<Connection>,
    connect_failures: u32,
    /// Connections refused in a row with a slow-down reply (not failures, see below).
    turned_away: u32,
    /// Claimed rows not started yet.
    batch: VecDeque<Claimed>,
    /// The message whose DATA got its 354: its body goes out in the next exchange.
    open: Option<Claimed>,
    /// Wait this long before starting another message (after a slow-down).
    backoff: Option<Duration>,
}

/// A worker's open connection, counted in [`Shared::connected`] while it lives.
struct Held<'a> {
    conn: crate::transport::smtp::Connection,
    count: &'a AtomicUsize,
}

impl<'a> Held<'a> {
    fn new(conn: crate::transport::smtp::Connection, count: &'a AtomicUsize) -> Held<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Held { conn, count }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = crate::transport::smtp::Connection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// One worker: one SMTP connection, rows until the queue is empty.
///
/// Each exchange writes the open message's body and the next message's envelope
/// together ([`smtp::exchange`]): one round trip per message when the server
/// pipelines. Everything that must happen before a message's `MAIL FROM` (a rate
/// slot, the still-subscribed check, the journal's attempt line) is done for the next
/// message before that write; the journal's attempt line is written just before the
/// body, so after a crash at most the one message per connection whose body was on its
/// way is unknown.
fn work<'a>(shared: &'a Shared<'a>, index: usize) {
    let mut w = Worker {
        index,
        conn: None,
        reader: None,
        connect_failures: 0,
        turned_away: 0,
        batch: VecDeque::new(),
        open: None,
        backoff: None,
    };
    loop {
        let next = w.next_message(shared);
        let open = w.open.take();
        if open.is_none() && next.is_none() {
            break;
        }
        w.exchange(shared, open, next);
    }
    let rest: Vec<Job> = w.batch.drain(..).map(|c| c.job).collect();
    release(shared, rest, false);
    if let Some(mut c) = w.conn {
        let _ = c.quit();
    }
}

impl<'a> Worker<'a> {
    /// The next message to start, made ready for its `MAIL FROM`. With a message open
    /// (its server waiting for the body) this never waits: no row ready, no rate slot
    /// free, or a pause due, and the body goes out alone. `None` with nothing open
    /// means the worker is done.
    fn next_message(&mut self, shared: &'a Shared) -> Option<Claimed> {
        let settings = &shared.req.settings;
        loop {
            let wait = self.open.is_none();
            if shared.stopping() {
                self.give_back(shared, None, false);
                return None;
            }
            if !shared.pace.allows(self.index) {
                if !wait {
                    return None;
                }
                // Fewer connections for now: hand the rows to the others, close, and
                // wait to be let back in (or for the end of the run).
                self.give_back(shared, None, true);
                if let Some(mut c) = self.conn.take() {
                    let _ = c.quit();
                }
                while !shared.pace.allows(self.index) {
                    if shared.stopping() || shared.queue.finished() {
                        return None;
                    }
                    nap(Duration::from_millis(100), &shared.halt);
                }
                continue;
            }
            if let Some(d) = self.backoff {
                if !wait {
                    return None;
                }
                self.backoff = None;
                nap(d, &shared.halt);
                continue;
            }
            let Some(mut next) = self.batch.pop_front() else {
                match claim(shared, claim_size(settings), wait) {
                    Some(batch) => {
                        self.batch = batch;
                        continue;
                    }
                    None => return None,
                }
            };
            let slot = if wait { shared.rate.acquire(&shared.halt) } else { shared.rate.try_acquire() };
            if !slot {
                if wait {
                    self.give_back(shared, Some(next.job), false);
                    return None;
                }
                self.batch.push_front(next);
                return None;
            }
            if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
                match shared.req.server.connect() {
                    Ok(c) => {
                        self.conn = Some(Held::new(c, &shared.connected));
                        self.connect_failures = 0;
                        self.turned_away = 0;
                    }
                    Err(f) => {
                        self.conn = None;
                        if f.is_slow_down() {
                            shared.pace.slow_down(&f.reply(), &shared.rate);
                        }
                        // Turned away for having too many connections while other
                        // workers hold one: wait and try again, without counting a
                        // failure. With no connection at all every failure counts, and
                        // the run stops after `max_attempts`.
                        let turned_away = f.is_slow_down() && shared.connected.load(Ordering::Relaxed) > 0;
                        if turned_away {
                            self.turned_away += 1;
                        } else {
                            self.connect_failures += 1;
                        }
                        if f.is_permanent() || self.connect_failures >= settings.retry.max_attempts {
                            shared.fail(format!(
                                "cannot connect to the SMTP server {} ({} tries): {}",
                                shared.req.server.endpoint(),
                                self.connect_failures,
                                f.reply()
                            ));
                            self.give_back(shared, Some(next.job), false);
                            return None;
                        }
                        // Nothing was attempted: put the rows back, wait, try again.
                        self.give_back(shared, Some(next.job), true);
                        let waits = if turned_away { self.turned_away } else { self.connect_failures };
                        nap(settings.retry.jittered(waits), &shared.halt);
                        continue;
                    }
                }
            }
            // The last moment before MAIL FROM: someone who unsubscribed after the row
            // was claimed (the claim may be a while ago under a rate limit) is not mailed.
            match still_subscribed(&mut self.reader, shared, next.job.row.subscriber_id) {
                Ok(true) => {}
                Ok(false) => {
                    if shared.post(Op::Cancelled { id: next.job.row.id }) {
                        shared.progress.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                    shared.queue.done();
                    (shared.req.on_progress)(&shared.progress);
                    continue;
                }
                Err(e) => {
                    shared.fail(e);
                    self.give_back(shared, Some(next.job), false);
                    return None;
                }
            }
            next.job.tries += 1;
            return Some(next);
        }
    }

    /// One exchange on the connection: `open`'s body, `next`'s envelope.
    fn exchange(&mut self, shared: &Shared, open: Option<Claimed>, next: Option<Claimed>) {
        // Noted before the body goes out: after a crash this row is unknown (the server
        // may have it), not unstarted. A message whose envelope only was written cannot
        // have been delivered, so after a crash it is simply sent again.
        if let Some(o) = &open
            && let Err(e) = shared.journal.attempt(o.job.row.id)
        {
            shared.fail(format!("cannot write the sent journal {}: {e}", shared.journal.path().display()));
            // Not a byte of the body written: drop the connection mid-DATA.
            self.conn = None;
            let rows = open.into_iter().chain(next).map(|c| c.job);
            release(shared, rows, false);
            return;
        }
        let c = self.conn.as_mut().expect("a message is only started on a live connection");
        let ex = smtp::exchange(
            &shared.req.server,
            c,
            open.as_ref().map(|o| o.msg.bytes.as_slice()),
            next.as_ref().map(|n| (&n.msg.envelope, n.msg.bytes.as_slice())),
        );
        let body_failed = matches!(ex.body, Some(Err(_)));
        if let Some(o) = open {
            match ex.body.expect("a body was written") {
                Ok(reply) => settle_sent(shared, o, reply),
                Err(f) => self.settle(shared, o.job, &f),
            }
            (shared.req.on_progress)(&shared.progress);
        }
        if let Some(mut n) = next {
            match ex.envelope.expect("an envelope was written") {
                Ok(()) => self.open = Some(n),
                Err(f) if f.is_sender_refused() => {
                    // Every message would meet the same refusal: stop, and leave this
                    // and the other rows untried rather than failed.
                    shared.fail(format!(
                        "the SMTP server refused the sender: {} (check `[email] from` and what the server lets this account send as)",
                        f.reply()
                    ));
                    n.job.tries -= 1;
                    self.give_back(shared, Some(n.job), false);
                }
                Err(f) if body_failed && f.code.is_none() => {
                    // The connection went with the message before this one, before the
                    // server answered this envelope: not delivered, and no verdict on
                    // this message either. Back into the queue, not counted as a try.
                    n.job.tries -= 1;
                    release(shared, [n.job], true);
                }
                Err(f) => {
                    self.settle(shared, n.job, &f);
                    (shared.req.on_progress)(&shared.progress);
                }
            }
        }
        if self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.conn = None;
        }
    }

    /// A failed message: into the ledger; a slow-down also paces the send and this
    /// worker waits its backoff before the next message.
    fn settle(&mut self, shared: &Shared, job: Job, f: &Failure) {
        if f.is_slow_down() {
            shared.pace.slow_down(&f.reply(), &shared.rate);
            self.backoff = Some(shared.req.settings.retry.jittered(job.slowed + 1));
        }
        settle_failure(shared, job, f);
    }

    /// Hands back `job` (if any) and the rest of the batch, never attempted.
    fn give_back(&mut self, shared: &Shared, job: Option<Job>, requeue: bool) {
        let rows: Vec<Job> = job.into_iter().chain(self.batch.drain(..).map(|c| c.job)).collect();
        release(shared, rows, requeue);
    }
}

/// The server's 250: first the journal (one write, survives a kill), then the ledger.
fn settle_sent(shared: &Shared, c: Claimed, reply: String) {
    let at = clock::now();
    if let Err(e) = shared.journal.record(c.job.row.id, &at, &reply) {
        shared.fail(format!("cannot write the sent journal {}: {e}", shared.journal.path().display()));
    }
    if shared.post(Op::Sent { id: c.job.row.id, reply, at }) {
        shared.progress.sent.fetch_add(1, Ordering::Relaxed);
        if c.was_unknown {
            shared.progress.unknown_resent.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.pace.sent(&shared.rate);
    shared.queue.done();
}

/// Whether the row's subscriber is still active, read on this worker's own connection
/// (opened on first use): one primary-key lookup per message.
fn still_subscribed(reader: &mut Option<Connection>, shared: &Shared, subscriber_id: i64) -> Result<bool, String> {
    if reader.is_none() {
        let c = crate::store::db::open(&shared.req.database).map_err(|e| e.to_string())?;
        *reader = Some(c);
    }
    let c = reader.as_ref().expect("opened above");
    let status: Option<String> = c
        .prepare_cached("SELECT status FROM subscribers WHERE id = ?1")
        .and_then(|mut st| st.query_row([subscriber_id], |r| r.get(0)).optional())
        .map_err(|e| format!("cannot read the subscriber list: {e}"))?;
    Ok(status.as_deref() == Some("active"))
}

/// Records a failed attempt: permanent, retry later in this run, or left for a resume.
fn settle_failure(shared: &Shared, mut job: Job, f: &Failure) {
    let settings = &shared.req.settings;
    if f.is_unknown() {
        // The server may have the message: never again in this run. The row stays
        // `sending` (unknown), as after a crash, with what happened as its reply.
        if shared.post(Op::Unknown { id: job.row.id, reply: f.reply() }) {
            shared.progress.unknown.fetch_add(1, Ordering::Relaxed);
        }
        shared.queue.done();
        return;
    }
    if f.is_permanent() {
        if shared.post(Op::FailedPermanent { id: job.row.id, reply: f.reply() }) {
            shared.progress.failed_permanent.fetch_add(1, Ordering::Relaxed);
        }
        shared.queue.done();
        return;
    }
    if f.is_slow_down() && job.slowed < MAX_SLOWED {
        // The relay's load, not this message: not counted as a try.
        job.slowed += 1;
        job.tries -= 1;
    }
    let delay = settings.retry.jittered(job.tries.max(job.slowed).max(1));
    let next = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
    let next_text = clock::format(next);
    if !shared.post(Op::FailedTemporary { id: job.row.id, reply: f.reply(), next_retry_at: next_text }) {
        shared.queue.done();
        return;
    }
    job.prev = State::FailedTemporary;
    if job.tries < settings.retry.max_attempts && !shared.stopping() {
        shared.progress.retries.fetch_add(1, Ordering::Relaxed);
        shared.queue.retry(job, Instant::now() + delay);
    } else {
        shared.progress.failed_temporary.fetch_add(1, Ordering::Relaxed);
        shared.queue.done();
    }
}

/// Sleeps up to `d`, waking early when the run stops.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}
