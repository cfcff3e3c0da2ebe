//! Request counters by origin and HTTP status, for metrics and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Requests sent to one origin that ended with one status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestCount {
    /// Origin the request went to, e.g. `https://registry-1.docker.io`.
    pub origin: String,
    /// HTTP status, `None` when no response came (connection error, timeout).
    pub status: Option<u16>,
    /// Number of such requests.
    pub count: u64,
}

/// Counts every HTTP request the registry client sends (registries and token
/// realms alike). Shared through an `Arc`; read with [`RequestCounters::snapshot`].
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: Mutex<BTreeMap<(String, Option<u16>), u64>>,
}

impl RequestCounters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request to `origin` that ended with `status`.
    pub fn record(&self, origin: &str, status: Option<u16>) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((origin.to_string(), status)).or_insert(0) += 1;
        }
    }

    /// All counts, sorted by origin then status.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        self.counts
            .lock()
            .map(|counts| {
                counts
                    .iter()
                    .map(|((origin, status), count)| RequestCount {
                        origin: origin.clone(),
                        status: *status,
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Requests sent to `origin`, whatever their outcome.
    pub fn total_for_origin(&self, origin: &str) -> u64 {
        self.counts
            .lock()
            .map(|counts| {
                counts
                    .iter()
                    .filter(|((counted_origin, _), _)| counted_origin == origin)
                    .map(|(_, count)| count)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Requests sent, to every origin.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .map(|counts| counts.values().sum())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_origin_and_status() {
        let counters = RequestCounters::new();
        counters.record("http://a", Some(200));
        counters.record("http://a", Some(200));
        counters.record("http://a", Some(401));
        counters.record("http://b", None);
        assert_eq!(counters.total(), 4);
        assert_eq!(counters.total_for_origin("http://a"), 3);
        assert_eq!(
            counters.snapshot(),
            [
                RequestCount {
                    origin: "http://a".into(),
                    status: Some(200),
                    count: 2
                },
                RequestCount {
                    origin: "http://a".into(),
                    status: Some(401),
                    count: 1
                },
                RequestCount {
                    origin: "http://b".into(),
                    status: None,
                    count: 1
                },
            ]
        );
    }
}
