//! Request counters by origin and HTTP status, for metrics and benchmarks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

/// What a request was for, told from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `GET /v2/`: the auth challenge.
    Ping,
    /// A token request to the realm a challenge named.
    Token,
    /// `GET /v2/NAME/tags/list`.
    TagList,
    /// `HEAD` of a manifest.
    Head,
    /// Any other `GET` under `/v2/` (manifests, blobs).
    Get,
}

impl RequestKind {
    /// All kinds, in display order.
    pub const ALL: [RequestKind; 5] = [
        RequestKind::Ping,
        RequestKind::Token,
        RequestKind::TagList,
        RequestKind::Head,
        RequestKind::Get,
    ];

    /// The kind of a request; anything outside `/v2/` is a token request
    /// (the registry client sends nothing else).
    pub fn of(method: &Method, url: &Url) -> Self {
        let path = url.path();
        if path == "/v2/" || path == "/v2" {
            RequestKind::Ping
        } else if !path.starts_with("/v2/") {
            RequestKind::Token
        } else if path.ends_with("/tags/list") {
            RequestKind::TagList
        } else if method == Method::HEAD {
            RequestKind::Head
        } else {
            RequestKind::Get
        }
    }

    /// Short name, e.g. `tag list`.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Ping => "ping",
            RequestKind::Token => "token",
            RequestKind::TagList => "tag list",
            RequestKind::Head => "HEAD",
            RequestKind::Get => "GET",
        }
    }
}

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
    kinds: [AtomicU64; RequestKind::ALL.len()],
    rate_limits: Mutex<BTreeMap<String, RateLimit>>,
}

/// The latest `429` an origin answered: when, and the wait it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// When the `429` arrived.
    pub at: Instant,
    /// Its `Retry-After`, when it had a usable one.
    pub retry_after: Option<Duration>,
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

    /// Records a `429` from `origin` asking to wait `retry_after`.
    pub fn record_rate_limit(&self, origin: &str, retry_after: Option<Duration>) {
        if let Ok(mut limits) = self.rate_limits.lock() {
            let limit = RateLimit {
                at: Instant::now(),
                retry_after,
            };
            limits.insert(origin.to_string(), limit);
        }
    }

    /// The latest `429` from `origin` if it came at or after `since`: a
    /// lookup that timed out can then say it was rate limited, not slow.
    pub fn rate_limited_since(&self, origin: &str, since: Instant) -> Option<RateLimit> {
        self.rate_limits
            .lock()
            .ok()?
            .get(origin)
            .copied()
            .filter(|limit| limit.at >= since)
    }

    /// Records one request of `kind`.
    pub fn record_kind(&self, kind: RequestKind) {
        self.kinds[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent so far, by kind.
    pub fn by_kind(&self) -> Vec<(RequestKind, u64)> {
        RequestKind::ALL
            .iter()
            .map(|kind| (*kind, self.kinds[*kind as usize].load(Ordering::Relaxed)))
            .collect()
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
        let url = |path: &str| Url::parse(&format!("http://r{path}")).unwrap();
        assert_eq!(
            RequestKind::of(&Method::GET, &url("/v2/")),
            RequestKind::Ping
        );
        assert_eq!(
            RequestKind::of(&Method::GET, &url("/token")),
            RequestKind::Token
        );
        assert_eq!(
            RequestKind::of(&Method::GET, &url("/v2/a/b/tags/list")),
            RequestKind::TagList
        );
        assert_eq!(
            RequestKind::of(&Method::HEAD, &url("/v2/a/manifests/1")),
            RequestKind::Head
        );
        assert_eq!(
            RequestKind::of(&Method::GET, &url("/v2/a/manifests/1")),
            RequestKind::Get
        );
        counters.record_kind(RequestKind::Head);
        assert_eq!(counters.by_kind()[3], (RequestKind::Head, 1));
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
