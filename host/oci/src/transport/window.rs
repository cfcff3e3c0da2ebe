//! Adaptive per-origin concurrency (AIMD): the number of requests in flight
//! to one registry grows while its latency stays flat and it answers no
//! `429`/`503`, and halves on the first such answer — fast on a private
//! registry, gentle on a public one.
//!
//! Growth is TCP-like: "slow start" adds one request per success (the window
//! doubles per round) until the first sign of load (latency grows, or a
//! congestion answer), then one request per full window of successes. Only
//! one halving happens per round: answers to requests sent before the last
//! halving do not halve again (they were sent into the old, larger window).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// Latency counts as flat while it stays under `FLAT_FACTOR` × the lowest
/// seen plus `FLAT_SLACK` (loopback latencies jitter by about a millisecond).
const FLAT_FACTOR: u32 = 2;
/// See [`FLAT_FACTOR`].
const FLAT_SLACK: Duration = Duration::from_millis(5);

/// Where a window starts and how far it may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    /// Requests in flight at first.
    pub start: usize,
    /// Requests in flight at most.
    pub ceiling: usize,
    /// Whether the window may double per round before the first sign of load
    /// (off for public registries, which grow by one per round only).
    pub slow_start: bool,
}

impl WindowLimits {
    /// Limits with `start` clamped into `1..=ceiling`.
    pub fn new(start: usize, ceiling: usize, slow_start: bool) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            start: start.clamp(1, ceiling),
            ceiling,
            slow_start,
        }
    }
}

/// What one answer says about the registry's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A timely answer that took this long.
    Answered(Duration),
    /// `429`, `503` or a `Retry-After`: too much.
    Congested,
    /// Says nothing about load (no answer, a client error).
    Neutral,
}

/// The pure AIMD arithmetic, apart from the semaphore that enforces it.
#[derive(Debug, Clone)]
pub(crate) struct WindowState {
    limit: usize,
    ceiling: usize,
    slow_start: bool,
    /// Successes since the last growth (congestion avoidance).
    successes: usize,
    lowest_latency: Option<Duration>,
    last_halving: Option<Instant>,
}

impl WindowState {
    pub fn new(limits: WindowLimits) -> Self {
        Self {
            limit: limits.start,
            ceiling: limits.ceiling,
            slow_start: limits.slow_start,
            successes: 0,
            lowest_latency: None,
            last_halving: None,
        }
    }

    /// The current window.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Applies the signal of a request sent at `sent_at`; returns the new limit.
    pub fn observe(&mut self, signal: Signal, sent_at: Instant) -> usize {
        match signal {
            Signal::Neutral => {}
            Signal::Congested => {
                let sent_into_old_window = self
                    .last_halving
                    .is_some_and(|halved_at| sent_at < halved_at);
                if !sent_into_old_window {
                    self.limit = (self.limit / 2).max(1);
                    self.slow_start = false;
                    self.successes = 0;
                    self.last_halving = Some(Instant::now());
                }
            }
            Signal::Answered(latency) => {
                let lowest = *self.lowest_latency.get_or_insert(latency);
                let lowest = lowest.min(latency);
                self.lowest_latency = Some(lowest);
                let flat = latency <= lowest.saturating_mul(FLAT_FACTOR) + FLAT_SLACK;
                if !flat {
                    // Queueing at the registry: stop doubling, hold the window.
                    self.slow_start = false;
                    self.successes = 0;
                } else if self.slow_start {
                    self.limit = (self.limit + 1).min(self.ceiling);
                } else {
                    self.successes += 1;
                    if self.successes >= self.limit {
                        self.successes = 0;
                        self.limit = (self.limit + 1).min(self.ceiling);
                    }
                }
            }
        }
        self.limit
    }
}

/// One origin's window: a semaphore whose permits follow [`WindowState`].
#[derive(Debug)]
pub(crate) struct Window {
    semaphore: Arc<Semaphore>,
    state: Mutex<WindowState>,
    /// Permits to retire as they come back (the window shrank below the
    /// requests already in flight).
    debt: Mutex<usize>,
}

impl Window {
    /// A window with `limits.start` permits.
    pub fn new(limits: WindowLimits) -> Arc<Self> {
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(limits.start)),
            state: Mutex::new(WindowState::new(limits)),
            debt: Mutex::new(0),
        })
    }

    /// The current window.
    pub fn limit(&self) -> usize {
        self.state.lock().map(|state| state.limit()).unwrap_or(1)
    }

    /// Waits for room in the window.
    pub async fn acquire(self: &Arc<Self>) -> Result<WindowPermit, AcquireError> {
        let permit = Arc::clone(&self.semaphore).acquire_owned().await?;
        Ok(WindowPermit {
            permit: Some(permit),
            window: Arc::clone(self),
            sent_at: Instant::now(),
        })
    }

    fn observe(&self, signal: Signal, sent_at: Instant) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let before = state.limit();
        let after = state.observe(signal, sent_at);
        drop(state);
        if after > before {
            let mut grown = after - before;
            if let Ok(mut debt) = self.debt.lock() {
                let repaid = grown.min(*debt);
                *debt -= repaid;
                grown -= repaid;
            }
            self.semaphore.add_permits(grown);
        } else if after < before {
            let shrink = before - after;
            let retired = self.semaphore.forget_permits(shrink);
            if let Ok(mut debt) = self.debt.lock() {
                *debt += shrink - retired;
            }
            tracing::debug!(from = before, to = after, "registry window halved");
        }
    }

    /// Whether a returning permit should be retired instead of released.
    fn take_debt(&self) -> bool {
        self.debt.lock().is_ok_and(|mut debt| {
            let owed = *debt > 0;
            if owed {
                *debt -= 1;
            }
            owed
        })
    }
}

/// Room for one request in a [`Window`]; reports the answer with
/// [`WindowPermit::observe`] and gives the room back when dropped.
#[derive(Debug)]
pub(crate) struct WindowPermit {
    permit: Option<OwnedSemaphorePermit>,
    window: Arc<Window>,
    sent_at: Instant,
}

impl WindowPermit {
    /// Feeds the answer's status (`None`: no answer) and whether it carried
    /// `Retry-After` into the window.
    pub fn observe(&self, status: Option<u16>, retry_after: bool) {
        let signal = match status {
            Some(429 | 503) => Signal::Congested,
            Some(_) if retry_after => Signal::Congested,
            Some(status) if status < 500 => Signal::Answered(self.sent_at.elapsed()),
            Some(_) | None => Signal::Neutral,
        };
        self.window.observe(signal, self.sent_at);
    }
}

impl Drop for WindowPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            if self.window.take_debt() {
                permit.forget();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(ms: u64) -> Signal {
        Signal::Answered(Duration::from_millis(ms))
    }

    #[test]
    fn slow_start_doubles_per_round_up_to_the_ceiling() {
        let mut state = WindowState::new(WindowLimits::new(4, 32, true));
        let now = Instant::now();
        for _ in 0..4 {
            state.observe(answered(1), now);
        }
        assert_eq!(state.limit(), 8, "one round of 4 successes doubles 4");
        for _ in 0..100 {
            state.observe(answered(1), now);
        }
        assert_eq!(state.limit(), 32, "never above the ceiling");
    }

    #[test]
    fn congestion_halves_once_per_round() {
        let mut state = WindowState::new(WindowLimits::new(16, 32, true));
        let sent_before = Instant::now();
        assert_eq!(state.observe(Signal::Congested, sent_before), 8);
        // The rest of the old window's 429s were sent before the halving.
        assert_eq!(state.observe(Signal::Congested, sent_before), 8);
        assert_eq!(state.observe(Signal::Congested, sent_before), 8);
        // A request sent into the new window halves again.
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(state.observe(Signal::Congested, Instant::now()), 4);
        for _ in 0..20 {
            state.observe(Signal::Congested, Instant::now() + Duration::from_secs(1));
        }
        assert_eq!(state.limit(), 1, "never below one");
    }

    #[test]
    fn after_congestion_growth_is_additive() {
        let mut state = WindowState::new(WindowLimits::new(8, 32, true));
        let now = Instant::now();
        state.observe(Signal::Congested, now);
        assert_eq!(state.limit(), 4);
        for _ in 0..3 {
            state.observe(answered(1), now);
        }
        assert_eq!(state.limit(), 4, "less than a window of successes");
        state.observe(answered(1), now);
        assert_eq!(state.limit(), 5, "one more per full window");
    }

    #[test]
    fn growing_latency_stops_growth() {
        let mut state = WindowState::new(WindowLimits::new(4, 32, true));
        let now = Instant::now();
        state.observe(answered(10), now);
        assert_eq!(state.limit(), 5);
        state.observe(answered(100), now);
        assert_eq!(state.limit(), 5, "queueing: hold");
        for _ in 0..4 {
            state.observe(answered(10), now);
        }
        assert_eq!(state.limit(), 5, "slow start is over: additive only");
        state.observe(answered(10), now);
        assert_eq!(state.limit(), 6);
    }

    #[test]
    fn public_limits_start_low_and_grow_by_one() {
        let mut state = WindowState::new(WindowLimits::new(2, 8, false));
        let now = Instant::now();
        for _ in 0..2 {
            state.observe(answered(1), now);
        }
        assert_eq!(state.limit(), 3);
        assert_eq!(WindowLimits::new(50, 8, false).start, 8);
        assert_eq!(WindowLimits::new(0, 0, true).start, 1);
    }

    #[tokio::test]
    async fn permits_follow_the_window() {
        let window = Window::new(WindowLimits::new(4, 8, true));
        let held: Vec<WindowPermit> = futures::future::join_all((0..4).map(|_| window.acquire()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(window.semaphore.available_permits(), 0);
        // A 429 on a request in flight: the window halves to 2, and two of
        // the four permits in use are retired as they come back.
        held[0].observe(Some(429), true);
        assert_eq!(window.limit(), 2);
        drop(held);
        assert_eq!(window.semaphore.available_permits(), 2);
        let permit = window.acquire().await.unwrap();
        permit.observe(Some(200), false);
        drop(permit);
        assert_eq!(
            window.limit(),
            2,
            "additive: one success of a window of two"
        );
        let permit = window.acquire().await.unwrap();
        permit.observe(Some(200), false);
        drop(permit);
        assert_eq!(window.limit(), 3);
        assert_eq!(window.semaphore.available_permits(), 3);
    }
}
