//! Slowing down when the relay asks: fewer connections and a lower rate after a
//! throttling reply, and back up step by step once the relay has been quiet.
//!
//! The rules (the README's "When the relay says slow down"):
//! - A slow-down reply ([`crate::transport::Failure::is_slow_down`]: 421, 454, any
//!   4.7.x, 452 4.3.2) halves the connections in use (at least one) and caps the rate
//!   at half of what was being sent over the last few seconds. Within [`SETTLE`] of a
//!   cut, further slow-downs are counted but cut nothing more: the workers that were
//!   already talking to the relay all hear the same complaint at once.
//! - The message that met it is tried again later without counting an attempt; the
//!   worker that heard it waits its backoff first.
//! - After [`QUIET`] without a slow-down, one connection comes back and the rate cap
//!   rises by a quarter; the cap goes once it is above the rate before the first cut.
//!
//! The configured `connections`, `max_per_second` and `max_per_hour` are never
//! exceeded: this only ever sends slower than they allow.

use super::rate::RateLimiter;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Slow-downs this soon after a cut cut nothing more.
pub const SETTLE: Duration = Duration::from_secs(1);
/// A quiet relay for this long earns one step back up.
pub const QUIET: Duration = Duration::from_secs(10);
/// Sends remembered for measuring the current rate.
const RECENT: usize = 64;
/// The slowest the rate cap goes, in messages per second.
const SLOWEST: f64 = 0.1;

/// Shared by every worker of one send.
#[derive(Debug)]
pub struct Pace {
    configured: usize,
    /// Connections allowed now: worker `i` sends only while `i` is below it.
    allowed: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    sends: VecDeque<Instant>,
    last_cut: Option<Instant>,
    last_change: Instant,
    /// The rate when the relay first complained (the cap goes once above it).
    rate_before: Option<f64>,
    /// The rate cap now, messages per second.
    cap: Option<f64>,
    summary: SlowDowns,
}

/// How often and why the sender slowed down, for the run's summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SlowDowns {
    /// Slow-down replies heard.
    pub count: u64,
    /// Each distinct reply (code, enhanced status and text) and how often it came.
    pub replies: BTreeMap<String, u64>,
    /// The fewest connections the send went down to.
    pub fewest_connections: usize,
    /// The lowest rate cap it set, messages per second.
    pub lowest_per_second: Option<f64>,
}

impl Pace {
    pub fn new(connections: usize) -> Pace {
        let connections = connections.max(1);
        Pace {
            configured: connections,
            allowed: AtomicUsize::new(connections),
            state: Mutex::new(State {
                sends: VecDeque::with_capacity(RECENT),
                last_cut: None,
                last_change: Instant::now(),
                rate_before: None,
                cap: None,
                summary: SlowDowns { fewest_connections: connections, ..SlowDowns::default() },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether worker `index` (from 0) may send now. Worker 0 always may.
    pub fn allows(&self, index: usize) -> bool {
        index < self.allowed.load(Ordering::Relaxed)
    }

    /// A message was accepted: measures the rate, and after a quiet spell takes one
    /// step back up.
    pub fn sent(&self, rate: &RateLimiter) {
        let mut st = self.lock();
        let now = Instant::now();
        if st.sends.len() == RECENT {
            st.sends.pop_front();
        }
        st.sends.push_back(now);
        if st.last_cut.is_none() || now.duration_since(st.last_change) < QUIET {
            return;
        }
        st.last_change = now;
        let allowed = self.allowed.load(Ordering::Relaxed);
        if allowed < self.configured {
            self.allowed.store(allowed + 1, Ordering::Relaxed);
        }
        if let Some(cap) = st.cap {
            let raised = cap * 1.25;
            st.cap = (raised < st.rate_before.unwrap_or(f64::INFINITY)).then_some(raised);
            rate.slow_to(st.cap);
        }
        if allowed >= self.configured && st.cap.is_none() {
            // All the way back: the next complaint starts afresh.
            st.last_cut = None;
        }
    }

    /// The relay said slow down (`reply` as the ledger records it): counts it, and
    /// cuts connections and rate unless a cut was made within [`SETTLE`].
    pub fn slow_down(&self, reply: &str, rate: &RateLimiter) {
        let mut st = self.lock();
        let now = Instant::now();
        st.summary.count += 1;
        *st.summary.replies.entry(reply.to_string()).or_insert(0) += 1;
        if st.last_cut.is_some_and(|t| now.duration_since(t) < SETTLE) {
            return;
        }
        st.last_cut = Some(now);
        st.last_change = now;
        let allowed = (self.allowed.load(Ordering::Relaxed) / 2).max(1);
        self.allowed.store(allowed, Ordering::Relaxed);
        st.summary.fewest_connections = st.summary.fewest_connections.min(allowed);
        if let Some(measured) = measured_rate(&st.sends, now) {
            st.rate_before.get_or_insert(measured);
            let cap = (measured / 2.0).max(SLOWEST);
            let cap = st.cap.map_or(cap, |c| c.min(cap));
            st.cap = Some(cap);
            st.summary.lowest_per_second = Some(st.summary.lowest_per_second.map_or(cap, |l| l.min(cap)));
            rate.slow_to(Some(cap));
        }
    }

    pub fn summary(&self) -> SlowDowns {
        self.lock().summary.clone()
    }
}

/// Messages per second over the remembered sends, counting the time since the last
/// one (a relay that stopped answering is sending at less than its past rate).
fn measured_rate(sends: &VecDeque<Instant>, now: Instant) -> Option<f64> {
    let first = *sends.front()?;
    let span = now.duration_since(first).as_secs_f64();
    (sends.len() >= 2 && span > 0.0).then(|| sends.len() as f64 / span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_down_halves_connections_once_per_settle_and_caps_the_rate() {
        let rate = RateLimiter::new(0.0, 0, []);
        let pace = Pace::new(8);
        for _ in 0..10 {
            pace.sent(&rate);
        }
        assert!(pace.allows(7));
        pace.slow_down("421 4.7.0 Too many connections", &rate);
        pace.slow_down("421 4.7.0 Too many connections", &rate);
        pace.slow_down("454 4.7.0 Throttling failure", &rate);
        assert!(pace.allows(3) && !pace.allows(4), "8 -> 4, once within the settle time");
        assert!(!rate.is_unlimited(), "a rate cap is set");
        let s = pace.summary();
        assert_eq!(s.count, 3);
        assert_eq!(s.replies["421 4.7.0 Too many connections"], 2);
        assert_eq!(s.fewest_connections, 4);
        assert!(s.lowest_per_second.is_some_and(|r| r > 0.0));
    }

    #[test]
    fn one_connection_is_always_left() {
        let rate = RateLimiter::new(0.0, 0, []);
        let pace = Pace::new(1);
        pace.slow_down("421 busy", &rate);
        assert!(pace.allows(0));
        assert_eq!(pace.summary().fewest_connections, 1);
        // No sends measured: no rate to halve, so no cap.
        assert!(rate.is_unlimited());
    }
}
