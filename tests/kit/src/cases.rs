//! Table-driven tests: every case is checked, and every failing case is
//! reported at once, by name, with what its check said.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

/// Runs `check` on every case, one after the other; then panics listing each
/// case whose check panicked (named by `name`) with its message, if any did.
pub async fn check_each<'a, T, Fut>(
    cases: &'a [T],
    name: impl Fn(&T) -> String,
    check: impl Fn(&'a T) -> Fut,
) where
    Fut: Future<Output = ()> + 'a,
{
    let mut failures = Vec::new();
    for case in cases {
        if let Err(panic) = AssertUnwindSafe(check(case)).catch_unwind().await {
            failures.push(format!("  [{}] {}", name(case), message(panic.as_ref())));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The text of a panic payload.
fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}
