//! Table-driven tests: every case is checked, and every failing case is
//! reported at once, by name, with what its check said.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `check` on every case; then panics listing each case whose check
/// panicked (named by `name`) with its message, if any did.
pub fn check_all<T>(cases: &[T], name: impl Fn(&T) -> String, check: impl Fn(&T)) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let outcome = catch_unwind(AssertUnwindSafe(|| check(case)));
            outcome
                .err()
                .map(|panic| format!("  [{}] {}", name(case), message(panic.as_ref())))
        })
        .collect();
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
