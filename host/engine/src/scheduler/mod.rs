//! When scans run: at start-up, on each watcher's cron schedule (plus random
//! jitter), on API request, and per container on Docker events (debounced).
//!
//! Every scan goes through the [`Coordinator`] (`coordinator`), which makes
//! them single-flight: a request equal to one in flight joins it and gets the
//! same answer. Scans run in their own task, so a caller that goes away (an
//! HTTP client hanging up) never cancels a scan half-way. `timers` runs the
//! cron schedules; `events` follows each engine's Docker events.

mod coordinator;
mod events;
mod pods;
mod timers;

use futures::future::BoxFuture;

use crowsnest_model::{ContainerObject, ScanReport, ScanRequest};

use crate::scan::Progress;

pub use coordinator::{ContainerUpdateError, Coordinator, ScanInterrupted};
pub use events::follow_events;
pub use pods::follow_pods;
pub use timers::{
    run_schedule, ScanPlan, Schedule, ScheduleError, DEFAULT_JITTER_SECS, DEFAULT_SCHEDULE,
};

/// The scanning operations the daemon needs; implemented by the scan engine.
pub trait ScanEngine: Send + Sync + 'static {
    /// Scan what `request` names (everything when empty) and store the
    /// results, reporting each repository done to `progress`.
    fn scan(&self, request: ScanRequest, progress: Option<Progress>) -> BoxFuture<'_, ScanReport>;
    /// Re-inspect and check one container; `Ok(None)` when it is gone or not watched.
    fn refresh_container<'a>(
        &'a self,
        watcher: &'a str,
        container_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerObject>, String>>;
    /// Drop a destroyed container from the store.
    fn forget_container<'a>(&'a self, container_id: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

impl ScanEngine for crate::scan::Scanner {
    fn scan(&self, request: ScanRequest, progress: Option<Progress>) -> BoxFuture<'_, ScanReport> {
        Box::pin(
            async move { crate::scan::Scanner::scan_with_progress(self, &request, progress).await },
        )
    }

    fn refresh_container<'a>(
        &'a self,
        watcher: &'a str,
        container_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerObject>, String>> {
        Box::pin(async move {
            crate::scan::Scanner::refresh_container(self, watcher, container_id)
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn forget_container<'a>(&'a self, container_id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            crate::scan::Scanner::forget_container(self, container_id)
                .await
                .map_err(|error| error.to_string())
        })
    }
}

#[cfg(test)]
mod tests;
