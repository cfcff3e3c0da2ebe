//! When scans run: at start-up, on each watcher's cron schedule (plus random
//! jitter), on API request, and per container on Docker events (debounced).
//!
//! Every scan goes through the [`Coordinator`], which makes them single-flight:
//! a request equal to one in flight joins it and gets the same answer. Scans run
//! in their own task, so a caller that goes away (an HTTP client hanging up)
//! never cancels a scan half-way.

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::discovery::{ContainerAction, DockerWatcher, WatcherConfig};
use crate::metrics::{Metrics, ScanOrigin};
use crate::model::{ContainerObject, ScanReport, ScanRequest};
use crate::triggers::{close_and_wait, DispatchScope, TriggerDispatcher};

/// Schedule of a watcher without `schedule`: hourly, on the hour.
pub const DEFAULT_SCHEDULE: &str = "0 * * * *";

/// Jitter of a watcher without `jitter`, seconds.
pub const DEFAULT_JITTER_SECS: u64 = 60;

/// Container refreshes run at once per watcher on Docker events.
const EVENT_REFRESH_CONCURRENCY: usize = 4;

/// The scanning operations the daemon needs; implemented by the scan engine.
pub trait ScanEngine: Send + Sync + 'static {
    /// Scan what `request` names (everything when empty) and store the results.
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, ScanReport>;
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
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, ScanReport> {
        Box::pin(async move { crate::scan::Scanner::scan(self, &request).await })
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

/// A scan that ended without a report (its task panicked or was aborted).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the scan was interrupted: {0}")]
pub struct ScanInterrupted(String);

type ScanOutcome = Result<Arc<ScanReport>, ScanInterrupted>;
type SharedScan = Shared<BoxFuture<'static, ScanOutcome>>;

/// Single-flight scans, container refreshes, and what follows them (metrics,
/// automatic triggers, cache invalidation).
pub struct Coordinator {
    engine: Arc<dyn ScanEngine>,
    triggers: Arc<TriggerDispatcher>,
    metrics: Arc<Metrics>,
    in_flight: Mutex<HashMap<ScanKey, SharedScan>>,
    started_scans: AtomicU64,
    generation: AtomicU64,
    tasks: TaskTracker,
}

/// A normalised scan request: requests with equal keys share one scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScanKey {
    images: Vec<String>,
    container_ids: Vec<String>,
    watchers: Vec<String>,
}

impl ScanKey {
    fn of(request: &ScanRequest) -> Self {
        let normalise = |items: &[String]| {
            let mut items: Vec<String> = items.iter().map(|item| item.trim().to_owned()).collect();
            items.sort();
            items.dedup();
            items
        };
        Self {
            images: normalise(&request.images),
            container_ids: normalise(&request.container_ids),
            watchers: normalise(&request.watchers),
        }
    }
}

impl Coordinator {
    /// A coordinator over `engine`.
    pub fn new(
        engine: Arc<dyn ScanEngine>,
        triggers: Arc<TriggerDispatcher>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            engine,
            triggers,
            metrics,
            in_flight: Mutex::new(HashMap::new()),
            started_scans: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            tasks: TaskTracker::new(),
        }
    }

    /// The trigger dispatcher.
    pub fn triggers(&self) -> &Arc<TriggerDispatcher> {
        &self.triggers
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Scans actually started (joined requests are not counted).
    pub fn started_scans(&self) -> u64 {
        self.started_scans.load(Ordering::Relaxed)
    }

    /// Changes whenever stored containers may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks the stored containers as changed by someone else.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `request`, or joins the equal scan in flight. After the scan,
    /// automatic triggers are dispatched in the background.
    pub async fn scan(self: &Arc<Self>, request: ScanRequest, origin: ScanOrigin) -> ScanOutcome {
        let key = ScanKey::of(&request);
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .map_err(|_| ScanInterrupted("scan table poisoned".into()))?;
            if let Some(scan) = in_flight.get(&key) {
                tracing::debug!(?key, "joining the scan in flight");
                scan.clone()
            } else {
                let scan = self.start_scan(key.clone(), request, origin);
                in_flight.insert(key, scan.clone());
                scan
            }
        };
        shared.await
    }

    fn start_scan(
        self: &Arc<Self>,
        key: ScanKey,
        request: ScanRequest,
        origin: ScanOrigin,
    ) -> SharedScan {
        self.started_scans.fetch_add(1, Ordering::Relaxed);
        let this = Arc::clone(self);
        let task = self.tasks.spawn(async move {
            let started = Instant::now();
            let report = Arc::new(this.engine.scan(request).await);
            this.generation.fetch_add(1, Ordering::AcqRel);
            let container_errors = report
                .containers
                .iter()
                .filter(|c| c.error.is_some())
                .count();
            this.metrics.record_scan(
                origin,
                started.elapsed(),
                container_errors,
                report.watcher_errors.len(),
            );
            tracing::info!(
                origin = origin.as_str(),
                containers = report.containers.len(),
                container_errors,
                watcher_errors = report.watcher_errors.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "scan finished"
            );
            if let Ok(mut in_flight) = this.in_flight.lock() {
                in_flight.remove(&key);
            }
            let dispatch_report = Arc::clone(&report);
            let dispatcher = Arc::clone(&this);
            this.tasks.spawn(async move {
                dispatcher
                    .triggers
                    .dispatch(&dispatch_report.containers, DispatchScope::Automatic)
                    .await;
            });
            report
        });
        let this = Arc::clone(self);
        async move {
            let outcome = task
                .await
                .map_err(|error| ScanInterrupted(error.to_string()));
            if outcome.is_err() {
                // The task died before removing itself; later requests must start afresh.
                if let Ok(mut in_flight) = this.in_flight.lock() {
                    in_flight.retain(|_, scan| scan.peek().is_none());
                }
            }
            outcome
        }
        .boxed()
        .shared()
    }

    /// Re-checks one container and fires automatic triggers for it.
    pub async fn refresh(
        &self,
        watcher: &str,
        container_id: &str,
    ) -> Result<Option<ContainerObject>, String> {
        let refreshed = self.engine.refresh_container(watcher, container_id).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(Some(container)) = &refreshed {
            self.triggers
                .dispatch(std::slice::from_ref(container), DispatchScope::Automatic)
                .await;
        }
        refreshed
    }

    /// Drops a destroyed container.
    pub async fn forget(&self, container_id: &str) -> Result<(), String> {
        let result = self.engine.forget_container(container_id).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Waits up to `grace` for scans and their follow-ups to finish.
    pub async fn shutdown(&self, grace: Duration) {
        if !close_and_wait(&self.tasks, grace).await {
            tracing::warn!(
                "scans still running at shutdown; abandoning them (stored results stay consistent)"
            );
        }
    }
}

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

    /// The first time strictly after `after` (local time zone).
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Local>,
    ) -> Option<chrono::DateTime<chrono::Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
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
    /// Plans the timers of `watchers`; the error names the watcher and key.
    pub fn new(watchers: &BTreeMap<String, WatcherConfig>) -> Result<Self, String> {
        let mut by_schedule: BTreeMap<String, (Schedule, u64, Vec<String>)> = BTreeMap::new();
        for (name, watcher) in watchers {
            let text = watcher.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE);
            let schedule = Schedule::parse(text)
                .map_err(|error| format!("watchers.{name}.schedule: {error}"))?;
            let jitter = watcher.jitter.unwrap_or(DEFAULT_JITTER_SECS);
            let entry = by_schedule
                .entry(text.trim().to_owned())
                .or_insert_with(|| (schedule, 0, Vec::new()));
            entry.1 = entry.1.max(jitter);
            entry.2.push(name.clone());
        }
        Ok(Self {
            timers: by_schedule
                .into_values()
                .map(|(schedule, jitter, names)| (schedule, Duration::from_secs(jitter), names))
                .collect(),
            watcher_count: watchers.len(),
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

/// Follows one watcher's Docker events until `cancel`: each container's events
/// are debounced, then the container is refreshed (or forgotten when destroyed).
/// A broken stream is reconnected with backoff, replaying events since the break.
pub async fn follow_events(
    coordinator: Arc<Coordinator>,
    watcher_name: String,
    watcher_config: WatcherConfig,
    debounce: Duration,
    cancel: CancellationToken,
) {
    let limiter = Arc::new(Semaphore::new(EVENT_REFRESH_CONCURRENCY));
    let tasks = TaskTracker::new();
    let mut since: Option<SystemTime> = None;
    let mut backoff = Duration::from_millis(500);
    'connect: loop {
        let watcher = match DockerWatcher::connect(watcher_name.clone(), watcher_config.clone())
            .await
        {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(watcher = %watcher_name, %error, retry_in_ms = backoff.as_millis() as u64, "cannot follow Docker events");
                tokio::select! {
                    () = cancel.cancelled() => break 'connect,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let mut events = pin!(watcher.container_events(since));
        let mut due: HashMap<String, (ContainerAction, tokio::time::Instant)> = HashMap::new();
        tracing::info!(watcher = %watcher_name, "following Docker events");
        loop {
            let next_deadline = due.values().map(|(_, deadline)| *deadline).min();
            tokio::select! {
                () = cancel.cancelled() => break 'connect,
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        backoff = Duration::from_millis(500);
                        since = Some(SystemTime::now());
                        coordinator.metrics().record_event(event.action.as_str());
                        tracing::debug!(watcher = %watcher_name, container = %event.container_id, action = event.action.as_str(), "Docker event");
                        due.insert(event.container_id, (event.action, tokio::time::Instant::now() + debounce));
                    }
                    Some(Err(error)) => {
                        tracing::warn!(watcher = %watcher_name, %error, "Docker event stream broke; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!(watcher = %watcher_name, "Docker event stream ended; reconnecting");
                        break;
                    }
                },
                () = sleep_until_option(next_deadline) => {
                    let now = tokio::time::Instant::now();
                    let ready: Vec<String> = due
                        .iter()
                        .filter(|(_, (_, deadline))| *deadline <= now)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for container_id in ready {
                        let Some((action, _)) = due.remove(&container_id) else { continue };
                        let coordinator = Arc::clone(&coordinator);
                        let limiter = Arc::clone(&limiter);
                        let watcher = watcher_name.clone();
                        tasks.spawn(async move {
                            let Ok(_permit) = limiter.acquire_owned().await else { return };
                            apply_event(&coordinator, &watcher, &container_id, action).await;
                        });
                    }
                }
            }
        }
        // Process what was pending before the break rather than losing it.
        for (container_id, (action, _)) in due.drain() {
            apply_event(&coordinator, &watcher_name, &container_id, action).await;
        }
        since = since.or_else(|| Some(SystemTime::now()));
        tokio::select! {
            () = cancel.cancelled() => break 'connect,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    tasks.close();
    tasks.wait().await;
}

async fn sleep_until_option(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn apply_event(
    coordinator: &Coordinator,
    watcher: &str,
    container_id: &str,
    action: ContainerAction,
) {
    let outcome = if action == ContainerAction::Destroy {
        coordinator.forget(container_id).await.map(|()| "forgotten")
    } else {
        coordinator
            .refresh(watcher, container_id)
            .await
            .map(|found| {
                if found.is_some() {
                    "refreshed"
                } else {
                    "not watched"
                }
            })
    };
    match outcome {
        Ok(what) => {
            tracing::debug!(%watcher, container = %container_id, action = action.as_str(), what, "event applied")
        }
        Err(error) => {
            tracing::warn!(%watcher, container = %container_id, action = action.as_str(), %error, "event could not be applied")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::TimeZone;
    use std::sync::atomic::AtomicUsize;

    /// Counts scans and holds each one open until released, to observe joining.
    struct GatedEngine {
        scans: AtomicUsize,
        gate: tokio::sync::Notify,
    }

    impl ScanEngine for GatedEngine {
        fn scan(&self, request: ScanRequest) -> BoxFuture<'_, ScanReport> {
            Box::pin(async move {
                let number = self.scans.fetch_add(1, Ordering::SeqCst) + 1;
                self.gate.notified().await;
                ScanReport {
                    stats: crate::model::ScanStats {
                        containers: number * 100 + request.images.len(),
                        ..Default::default()
                    },
                    ..Default::default()
                }
            })
        }

        fn refresh_container<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<ContainerObject>, String>> {
            Box::pin(async { Ok(None) })
        }

        fn forget_container<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
    }

    async fn coordinator(engine: Arc<GatedEngine>) -> Arc<Coordinator> {
        let store = Store::open_in_memory().await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let triggers = Arc::new(TriggerDispatcher::new(
            Vec::new(),
            store,
            Arc::clone(&metrics),
        ));
        Arc::new(Coordinator::new(engine, triggers, metrics))
    }

    #[tokio::test]
    async fn equal_requests_join_one_scan_and_different_ones_do_not() {
        let engine = Arc::new(GatedEngine {
            scans: AtomicUsize::new(0),
            gate: tokio::sync::Notify::new(),
        });
        let coordinator = coordinator(Arc::clone(&engine)).await;
        let mut callers = Vec::new();
        for _ in 0..10 {
            let coordinator = Arc::clone(&coordinator);
            callers.push(tokio::spawn(async move {
                coordinator
                    .scan(ScanRequest::default(), ScanOrigin::Http)
                    .await
            }));
        }
        let images = ScanRequest {
            images: vec!["b".into(), "a".into()],
            ..ScanRequest::default()
        };
        let coordinator_for_images = Arc::clone(&coordinator);
        let image_scan =
            tokio::spawn(
                async move { coordinator_for_images.scan(images, ScanOrigin::Http).await },
            );
        while engine.scans.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            engine.scans.load(Ordering::SeqCst),
            2,
            "10 equal requests share one scan"
        );
        engine.gate.notify_waiters();
        let answers: Vec<usize> = futures::future::join_all(callers)
            .await
            .into_iter()
            .map(|answer| answer.unwrap().unwrap().stats.containers)
            .collect();
        assert!(
            answers.iter().all(|answer| *answer == answers[0]),
            "{answers:?}"
        );
        assert_eq!(image_scan.await.unwrap().unwrap().stats.containers % 100, 2);
        assert_eq!(coordinator.started_scans(), 2);
        // Once finished, a new request starts a new scan.
        let coordinator_again = Arc::clone(&coordinator);
        let again = tokio::spawn(async move {
            coordinator_again
                .scan(ScanRequest::default(), ScanOrigin::Http)
                .await
        });
        while engine.scans.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        engine.gate.notify_waiters();
        again.await.unwrap().unwrap();
        assert_eq!(coordinator.started_scans(), 3);
    }

    #[test]
    fn schedules_accept_optional_seconds_and_name_bad_keys() {
        let hourly = Schedule::parse(DEFAULT_SCHEDULE).unwrap();
        let base = chrono::Local
            .with_ymd_and_hms(2025, 6, 3, 10, 15, 0)
            .unwrap();
        assert_eq!(
            hourly.next_after(base).unwrap(),
            chrono::Local
                .with_ymd_and_hms(2025, 6, 3, 11, 0, 0)
                .unwrap()
        );
        let every_ten_seconds = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(
            every_ten_seconds.next_after(base).unwrap(),
            chrono::Local
                .with_ymd_and_hms(2025, 6, 3, 10, 15, 10)
                .unwrap()
        );
        let watchers = BTreeMap::from([
            (
                "a".to_owned(),
                WatcherConfig {
                    jitter: Some(5),
                    ..Default::default()
                },
            ),
            (
                "b".to_owned(),
                WatcherConfig {
                    jitter: Some(9),
                    ..Default::default()
                },
            ),
            (
                "c".to_owned(),
                WatcherConfig {
                    schedule: Some("*/5 * * * *".into()),
                    ..Default::default()
                },
            ),
        ]);
        let plan = ScanPlan::new(&watchers).unwrap();
        assert_eq!(plan.timers.len(), 2);
        let shared = plan
            .timers
            .iter()
            .find(|(_, _, names)| names.len() == 2)
            .unwrap();
        assert_eq!(shared.1, Duration::from_secs(9));
        // A timer scans only its own watchers…
        assert_eq!(plan.request_for(&shared.2).watchers, shared.2);
        // …and one that has every watcher is a plain full scan.
        let single = ScanPlan::new(&BTreeMap::from([(
            "only".to_owned(),
            WatcherConfig::default(),
        )]))
        .unwrap();
        assert!(single.request_for(&single.timers[0].2).watchers.is_empty());
        let bad = BTreeMap::from([(
            "x".to_owned(),
            WatcherConfig {
                schedule: Some("every hour".into()),
                ..Default::default()
            },
        )]);
        assert!(ScanPlan::new(&bad)
            .unwrap_err()
            .starts_with("watchers.x.schedule"));
    }
}
