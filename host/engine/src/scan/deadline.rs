//! Wall-clock bounds of a scan's registry work: each repository lookup (a tag
//! listing with all its pages, timeouts and `429` retries, or one digest
//! lookup) and the scan as a whole. A lookup past either bound fails its
//! containers with an error naming the deadline; the scan still completes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crowsnest_config::ScanConfig;
use crowsnest_oci::RequestCounters;

/// The bounds one scan's lookups run under.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    lookup: Duration,
    scan: Duration,
    scan_ends: Instant,
}

impl Deadlines {
    /// Bounds of a scan that started at `started`, as `[scan]` sets them.
    pub fn of_scan(config: &ScanConfig, started: std::time::Instant) -> Self {
        let scan = Duration::from_secs(config.scan_timeout_secs.max(1));
        Self {
            lookup: Duration::from_secs(config.lookup_timeout_secs.max(1)),
            scan,
            scan_ends: Instant::from_std(started) + scan,
        }
    }

    /// Runs one lookup, cut off at whichever deadline comes first. When the
    /// registry at `registry_url` answered `429` meanwhile (per `counters`),
    /// the error says the lookup was rate limited, not merely slow.
    pub async fn lookup<T>(
        &self,
        counters: &RequestCounters,
        registry_url: &str,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let started = std::time::Instant::now();
        let left = self.scan_ends.saturating_duration_since(Instant::now());
        let (limit, why) = if left < self.lookup {
            (
                left,
                format!(
                    "the scan's deadline passed ({} s, [scan] scan_timeout_secs) before this lookup finished",
                    self.scan.as_secs()
                ),
            )
        } else {
            (
                self.lookup,
                format!(
                    "timed out after {} s ([scan] lookup_timeout_secs)",
                    self.lookup.as_secs()
                ),
            )
        };
        match tokio::time::timeout(limit, work).await {
            Ok(answer) => answer,
            Err(_) => Err(match rate_limited(counters, registry_url, started) {
                Some(limited) => format!("{limited} until the deadline: {why}"),
                None => why,
            }),
        }
    }
}

/// `rate limited by HOST (429, Retry-After 30 s)` when the registry at
/// `registry_url` answered `429` since `since`.
fn rate_limited(
    counters: &RequestCounters,
    registry_url: &str,
    since: std::time::Instant,
) -> Option<String> {
    let url = url::Url::parse(registry_url).ok()?;
    let limit = counters.rate_limited_since(&url.origin().ascii_serialization(), since)?;
    let host = url.host_str().unwrap_or(registry_url);
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let asked = match limit.retry_after {
        Some(wait) => format!("429, Retry-After {} s", wait.as_secs()),
        None => "429".to_string(),
    };
    Some(format!("rate limited by {host} ({asked})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(lookup_secs: u64, scan_secs: u64, started: std::time::Instant) -> Deadlines {
        let config = ScanConfig {
            lookup_timeout_secs: lookup_secs,
            scan_timeout_secs: scan_secs,
            ..ScanConfig::default()
        };
        Deadlines::of_scan(&config, started)
    }

    const REGISTRY: &str = "http://127.0.0.1:5000";

    async fn stuck() -> Result<(), String> {
        std::future::pending().await
    }

    #[tokio::test]
    async fn a_lookup_cut_while_rate_limited_says_so() {
        let counters = RequestCounters::new();
        // A 429 from another registry does not count for this one.
        counters.record_rate_limit("http://127.0.0.1:6000", Some(Duration::from_secs(9)));
        let limited = async {
            counters.record_rate_limit("http://127.0.0.1:5000", Some(Duration::from_secs(30)));
            std::future::pending::<Result<(), String>>().await
        };
        let err = bounds(1, 60, std::time::Instant::now())
            .lookup(&counters, REGISTRY, limited)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "rate limited by 127.0.0.1:5000 (429, Retry-After 30 s) until the deadline: \
             timed out after 1 s ([scan] lookup_timeout_secs)"
        );
        // A 429 from before the lookup started is not this lookup's cause.
        let err = bounds(1, 60, std::time::Instant::now())
            .lookup(&counters, REGISTRY, stuck())
            .await
            .unwrap_err();
        assert_eq!(err, "timed out after 1 s ([scan] lookup_timeout_secs)");
    }

    #[tokio::test]
    async fn a_stuck_lookup_fails_naming_the_deadline_that_cut_it() {
        let now = std::time::Instant::now();
        let counters = RequestCounters::new();
        let err = bounds(1, 60, now)
            .lookup(&counters, REGISTRY, stuck())
            .await
            .unwrap_err();
        assert_eq!(err, "timed out after 1 s ([scan] lookup_timeout_secs)");
        // A lookup that answers in time keeps its own answer, errors included.
        assert_eq!(
            bounds(1, 60, now)
                .lookup(&counters, REGISTRY, async { Ok(7) })
                .await,
            Ok(7)
        );
        assert_eq!(
            bounds(1, 60, now)
                .lookup(&counters, REGISTRY, async { Err::<(), _>("x".into()) })
                .await,
            Err("x".to_string())
        );
    }

    #[tokio::test]
    async fn lookups_past_the_scan_deadline_fail_naming_it() {
        // A scan that started 2 s ago with a 1 s deadline: the next lookup fails at once.
        let started = std::time::Instant::now() - Duration::from_secs(2);
        let counters = RequestCounters::new();
        let err = bounds(60, 1, started)
            .lookup(&counters, REGISTRY, stuck())
            .await
            .unwrap_err();
        assert!(
            err.contains("scan's deadline passed (1 s, [scan] scan_timeout_secs)"),
            "{err}"
        );
        // One that started now is cut by the scan's deadline, the nearer one.
        let err = bounds(60, 1, std::time::Instant::now())
            .lookup(&counters, REGISTRY, stuck())
            .await
            .unwrap_err();
        assert!(err.contains("[scan] scan_timeout_secs"), "{err}");
    }
}
