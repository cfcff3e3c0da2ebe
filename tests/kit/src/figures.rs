//! What every benchmark shares: percentiles, the p50/p99 report line, RSS
//! figures from /proc, and numbers from the environment.

use std::time::Duration;

/// The `p` quantile (0..=1) of `samples`, which are sorted in place; zero when empty.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

/// Print `name`, p50 and p99 in microseconds, and the sample count.
pub fn report(name: &str, samples: &mut [Duration]) {
    let p50 = percentile(samples, 0.50);
    let p99 = percentile(samples, 0.99);
    println!(
        "{name:<52} p50 {:>9.2} µs   p99 {:>9.2} µs   (n={})",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        samples.len()
    );
}

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 where unavailable.
pub fn status_kib(field: &str) -> u64 {
    process_status_kib("self", field)
}

/// A `/proc/PROCESS/status` field in KiB (`PROCESS` a pid or `self`); 0 where unavailable.
pub fn process_status_kib(process: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// A number from the environment variable `name`, else `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
