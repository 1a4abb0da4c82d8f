//! The send rate limit, shared by every worker so it holds for the whole send rather
//! than per connection.
//!
//! `max_per_second` spaces messages evenly (one slot every 1/rate seconds), so any
//! window of T seconds holds at most T·rate + 1 messages. `max_per_hour` is a sliding
//! window over the last hour's send times, seeded from the ledger, so a resumed send
//! counts what the interrupted one already sent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Hands out send slots; `acquire` blocks until one is free.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    per_hour: Option<usize>,
    /// A lower rate set by [`super::pace`] while the relay asks newsdesk to slow down
    /// (checked without the lock on the unlimited fast path).
    slowed: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next_slot: Instant,
    /// Send times inside the last hour, oldest first (at most `per_hour` of them).
    window: VecDeque<Instant>,
    /// The interval of the slowed-down rate, when one is set.
    slowed_interval: Option<Duration>,
}

impl RateLimiter {
    /// `per_second` and `per_hour` of 0 mean no limit. `recent` are the times of
    /// messages already sent within the last hour (by earlier runs).
    pub fn new(per_second: f64, per_hour: u64, recent: impl IntoIterator<Item = Instant>) -> RateLimiter {
        let interval = (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second));
        let per_hour = (per_hour > 0).then_some(per_hour as usize);
        let mut window: VecDeque<Instant> = VecDeque::new();
        if let Some(cap) = per_hour {
            for t in recent {
                window.push_back(t);
                if window.len() > cap {
                    window.pop_front();
                }
            }
        }
        RateLimiter {
            interval,
            per_hour,
            slowed: AtomicBool::new(false),
            state: Mutex::new(State { next_slot: Instant::now(), window, slowed_interval: None }),
        }
    }

    /// True when no limit is set (callers can skip the bookkeeping).
    pub fn is_unlimited(&self) -> bool {
        self.interval.is_none() && self.per_hour.is_none() && !self.slowed.load(Ordering::Relaxed)
    }

    /// Sets (or, with `None`, lifts) the slowed-down rate in messages per second; the
    /// configured limits keep holding too.
    pub fn slow_to(&self, per_second: Option<f64>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.slowed_interval = per_second.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        self.slowed.store(st.slowed_interval.is_some(), Ordering::Relaxed);
    }

    /// Waits for a slot and takes it. Returns false (without taking one) if `stop` is
    /// set meanwhile; waits are cut into short naps so a stop is noticed promptly.
    pub fn acquire(&self, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.take() {
                Ok(()) => return true,
                Err(wait) => std::thread::sleep(wait.min(Duration::from_millis(200))),
            }
        }
    }

    /// Takes a slot if one is free now, without waiting.
    pub fn try_acquire(&self) -> bool {
        self.take().is_ok()
    }

    /// Takes a free slot, or says how long until the next one.
    fn take(&self) -> Result<(), Duration> {
        if self.is_unlimited() {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let interval = match (self.interval, st.slowed_interval) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut ready = now;
        if interval.is_some() {
            ready = ready.max(st.next_slot);
        }
        if let Some(cap) = self.per_hour {
            while st.window.front().is_some_and(|t| now.duration_since(*t) >= HOUR) {
                st.window.pop_front();
            }
            if st.window.len() >= cap {
                ready = ready.max(st.window[0] + HOUR);
            }
        }
        if ready > now {
            return Err(ready - now);
        }
        if let Some(iv) = interval {
            // From the later of the planned slot and now: no catching up after a
            // pause, which would burst.
            st.next_slot = st.next_slot.max(now) + iv;
        }
        if self.per_hour.is_some() {
            st.window.push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn unlimited_never_waits_and_stop_is_honoured() {
        let r = RateLimiter::new(0.0, 0, []);
        let stop = AtomicBool::new(false);
        for _ in 0..1000 {
            assert!(r.acquire(&stop));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(!r.acquire(&stop));
    }

    #[test]
    fn a_slowed_rate_spaces_slots_until_lifted() {
        let r = RateLimiter::new(0.0, 0, []);
        r.slow_to(Some(2.0));
        assert!(r.try_acquire());
        assert!(!r.try_acquire(), "the next slot is 0.5 s away");
        r.slow_to(None);
        assert!(r.try_acquire() && r.try_acquire(), "lifted: unlimited again");
        // The configured limit keeps holding under a faster slowed rate.
        let r = RateLimiter::new(1.0, 0, []);
        r.slow_to(Some(1000.0));
        assert!(r.try_acquire());
        assert!(!r.try_acquire());
    }

    #[test]
    fn the_per_second_limit_holds_across_threads() {
        // 40 slots at 100/s shared by 4 threads: the slots handed out must be at
        // least 10 ms apart (only the lower bound is checked: a slow machine only
        // spaces them further).
        let t0 = Instant::now();
        let r = Arc::new(RateLimiter::new(100.0, 0, []));
        let times = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (r, times, stop) = (r.clone(), times.clone(), stop.clone());
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        assert!(r.acquire(&stop));
                        times.lock().unwrap().push(Instant::now());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let times = times.lock().unwrap().clone();
        assert_eq!(times.len(), 40);
        // The 40th slot comes 39 intervals after the first, which is no earlier than t0.
        let span = *times.iter().max().unwrap() - t0;
        assert!(span >= Duration::from_millis(390), "{span:?}");
    }

    #[test]
    fn the_hourly_window_counts_earlier_sends() {
        let now = Instant::now();
        let r = RateLimiter::new(0.0, 3, [now - Duration::from_secs(10), now - Duration::from_secs(5)]);
        let stop = AtomicBool::new(false);
        assert!(r.acquire(&stop), "one slot is left this hour");
        // The next would wait ~59 minutes: check it is refused when asked to stop.
        let stop_soon = Arc::new(AtomicBool::new(false));
        let s2 = stop_soon.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.store(true, Ordering::Relaxed);
        });
        assert!(!r.acquire(&stop_soon));
        t.join().unwrap();
    }
}
