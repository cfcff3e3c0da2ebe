//! Cron schedules: watchers that share an expression share one timer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crowsnest_docker::WatcherConfig;
use crowsnest_model::ScanRequest;

use super::Coordinator;
use crate::metrics::ScanOrigin;

/// Schedule of a watcher without `schedule`: hourly, on the hour.
pub const DEFAULT_SCHEDULE: &str = "0 * * * *";

/// Jitter of a watcher without `jitter`, seconds.
pub const DEFAULT_JITTER_SECS: u64 = 60;

/// A parsed cron schedule (5 fields, or 6 with seconds first).
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|error| format!("`{text}` is not a cron expression: {error}"))?;
        Ok(Self {
            text: text.to_owned(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the minute of `at` is one the expression names (for a time
    /// window: `* 2-4 * * SAT,SUN` is every minute from 02:00 to 04:59 at
    /// weekends).
    pub fn contains_minute(&self, at: chrono::DateTime<chrono::Local>) -> bool {
        use chrono::Timelike;
        let minute = at
            .with_second(0)
            .and_then(|time| time.with_nanosecond(0))
            .unwrap_or(at);
        self.cron.is_time_matching(&minute).unwrap_or(false)
    }

    /// The first time strictly after `after` (local time zone).
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Local>,
    ) -> Option<chrono::DateTime<chrono::Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

/// A watcher whose `schedule` is not a cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watchers.{watcher}.schedule: {message}")]
pub struct ScheduleError {
    /// The watcher.
    pub watcher: String,
    /// Why.
    pub message: String,
}

/// The scheduled scans: watchers that share a cron expression share one timer,
/// with the largest jitter among them.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// (schedule, jitter, watchers). A timer whose watchers are all the
    /// watchers there are scans everything (its scan joins any full scan).
    pub timers: Vec<(Schedule, Duration, Vec<String>)>,
    /// How many watchers are configured.
    pub watcher_count: usize,
}

impl ScanPlan {
    /// Plans the timers of `watchers`; the error names the watcher.
    pub fn new(watchers: &BTreeMap<String, WatcherConfig>) -> Result<Self, ScheduleError> {
        Self::of_schedules(
            watchers
                .iter()
                .map(|(name, watcher)| (name.clone(), watcher.schedule.clone(), watcher.jitter)),
        )
    }

    /// The timers of watchers of any kind, each given as (name, `schedule`, `jitter`).
    pub fn of_schedules(
        watchers: impl IntoIterator<Item = (String, Option<String>, Option<u64>)>,
    ) -> Result<Self, ScheduleError> {
        let mut by_schedule: BTreeMap<String, (Schedule, u64, Vec<String>)> = BTreeMap::new();
        let mut watcher_count = 0;
        for (name, schedule, jitter) in watchers {
            watcher_count += 1;
            let text = schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE);
            let schedule = Schedule::parse(text).map_err(|message| ScheduleError {
                watcher: name.clone(),
                message,
            })?;
            let jitter = jitter.unwrap_or(DEFAULT_JITTER_SECS);
            let entry = by_schedule
                .entry(text.trim().to_owned())
                .or_insert_with(|| (schedule, 0, Vec::new()));
            entry.1 = entry.1.max(jitter);
            entry.2.push(name);
        }
        Ok(Self {
            timers: by_schedule
                .into_values()
                .map(|(schedule, jitter, names)| (schedule, Duration::from_secs(jitter), names))
                .collect(),
            watcher_count,
        })
    }

    /// The scan a timer runs: its own watchers, or everything when it has them all.
    pub fn request_for(&self, watchers: &[String]) -> ScanRequest {
        ScanRequest {
            watchers: if watchers.len() >= self.watcher_count {
                Vec::new()
            } else {
                watchers.to_vec()
            },
            ..ScanRequest::default()
        }
    }
}

/// Runs one schedule until `cancel`: sleep to the next occurrence plus a random
/// jitter, then a full scan (joined with any scan in flight).
pub async fn run_schedule(
    coordinator: Arc<Coordinator>,
    schedule: Schedule,
    jitter: Duration,
    request: ScanRequest,
    cancel: CancellationToken,
) {
    let watchers = &request.watchers;
    loop {
        let now = chrono::Local::now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(
                schedule = schedule.as_str(),
                "schedule has no future occurrence; scheduled scans stop"
            );
            return;
        };
        let until_next = (next - now).to_std().unwrap_or_default();
        let extra = if jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::random_range(0..=jitter.as_millis() as u64))
        };
        tracing::debug!(schedule = schedule.as_str(), ?watchers, %next, jitter_ms = extra.as_millis() as u64, "next scheduled scan");
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(until_next + extra) => {}
        }
        // Only this timer's watchers (all of them when `watchers` is empty).
        if let Err(error) = coordinator
            .scan(request.clone(), ScanOrigin::Schedule)
            .await
        {
            tracing::warn!(%error, "scheduled scan failed");
        }
    }
}
