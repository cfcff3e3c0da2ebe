//! Waiting for something that happens in the background, bounded in time.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Some` and returns that; panics naming
/// `what` when `timeout` passes first.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    settled(timeout, check, Option::is_some)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `read` until `done` holds for its value or `timeout` passes, and
/// returns the last value either way: the caller's assertions then say what
/// is missing.
pub async fn settled<T, F, Fut>(timeout: Duration, mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let value = read().await;
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Blocks until `ready` holds; panics naming `what` when `timeout` passes first.
pub fn blocking_until(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(INTERVAL);
    }
}
