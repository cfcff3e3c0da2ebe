//! Wall-clock bounds of a scan's registry work: each repository lookup (a tag
//! listing with all its pages, timeouts and `429` retries, or one digest
//! lookup) and the scan as a whole. A lookup past either bound fails its
//! containers with an error naming the deadline; the scan still completes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crowsnest_config::ScanConfig;

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

    /// Runs one lookup, cut off at whichever deadline comes first.
    pub async fn lookup<T>(
        &self,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
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
        tokio::time::timeout(limit, work).await.unwrap_or(Err(why))
    }
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

    async fn stuck() -> Result<(), String> {
        std::future::pending().await
    }

    #[tokio::test]
    async fn a_stuck_lookup_fails_naming_the_deadline_that_cut_it() {
        let now = std::time::Instant::now();
        let err = bounds(1, 60, now).lookup(stuck()).await.unwrap_err();
        assert_eq!(err, "timed out after 1 s ([scan] lookup_timeout_secs)");
        // A lookup that answers in time keeps its own answer, errors included.
        assert_eq!(bounds(1, 60, now).lookup(async { Ok(7) }).await, Ok(7));
        assert_eq!(
            bounds(1, 60, now)
                .lookup(async { Err::<(), _>("x".into()) })
                .await,
            Err("x".to_string())
        );
    }

    #[tokio::test]
    async fn lookups_past_the_scan_deadline_fail_naming_it() {
        // A scan that started 2 s ago with a 1 s deadline: the next lookup fails at once.
        let started = std::time::Instant::now() - Duration::from_secs(2);
        let err = bounds(60, 1, started).lookup(stuck()).await.unwrap_err();
        assert!(
            err.contains("scan's deadline passed (1 s, [scan] scan_timeout_secs)"),
            "{err}"
        );
        // One that started now is cut by the scan's deadline, the nearer one.
        let err = bounds(60, 1, std::time::Instant::now())
            .lookup(stuck())
            .await
            .unwrap_err();
        assert!(err.contains("[scan] scan_timeout_secs"), "{err}");
    }
}
