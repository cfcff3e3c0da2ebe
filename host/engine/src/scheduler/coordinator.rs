//! Single-flight scans and container refreshes, and what follows them:
//! metrics, automatic triggers, cache invalidation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio_util::task::TaskTracker;

use crowsnest_model::{ContainerObject, ScanReport, ScanRequest, UpdateOutcome, UpdateReport};

use super::ScanEngine;
use crate::actions::{RunOrigin, UpdateActions};
use crate::events::{EventBus, EventKind};
use crate::metrics::{Metrics, ScanOrigin};
use crate::triggers::{close_and_wait, DispatchScope, TriggerDispatcher};

/// Why one container could not be updated through the API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContainerUpdateError {
    /// The container is gone, or no longer watched.
    #[error("container `{0}` is gone or no longer watched")]
    Gone(String),
    /// The engine could not be asked, or the update task died.
    #[error("{0}")]
    Unavailable(String),
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
    actions: Option<Arc<UpdateActions>>,
    metrics: Arc<Metrics>,
    in_flight: Mutex<HashMap<ScanKey, SharedScan>>,
    started_scans: AtomicU64,
    finished_scans: AtomicU64,
    generation: AtomicU64,
    tasks: TaskTracker,
    join_timeout: Duration,
}

/// How long a caller waits for a scan (its own or the one in flight it
/// joined) unless [`Coordinator::with_join_timeout`] says otherwise: the
/// default `[scan] scan_timeout_secs` plus a minute.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(960);

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
            actions: None,
            metrics,
            in_flight: Mutex::new(HashMap::new()),
            started_scans: AtomicU64::new(0),
            finished_scans: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            tasks: TaskTracker::new(),
            join_timeout: DEFAULT_JOIN_TIMEOUT,
        }
    }

    /// The same coordinator, whose callers wait at most `limit` for a scan
    /// (theirs or the one in flight they joined): a scan that hangs past its
    /// own deadline then answers them with an error instead of holding them
    /// (and every later joiner) forever. The scan itself goes on.
    pub fn with_join_timeout(mut self, limit: Duration) -> Self {
        self.join_timeout = limit;
        self
    }

    /// The same coordinator, with update actions: the automatic ones run
    /// after each scan, the others through [`Coordinator::update`].
    pub fn with_actions(mut self, actions: Arc<UpdateActions>) -> Self {
        self.actions = (!actions.is_empty()).then_some(actions);
        self
    }

    /// The live event bus (the trigger dispatcher's, so deliveries share it).
    pub fn events(&self) -> &Arc<EventBus> {
        self.triggers.events()
    }

    /// Publishes one `action-done` event per outcome of `report`.
    fn publish_outcomes<'a>(&self, outcomes: impl Iterator<Item = &'a UpdateOutcome>) {
        for outcome in outcomes {
            self.events().publish_value(EventKind::ActionDone, outcome);
        }
    }

    /// Publishes `update-found` for each container of `containers` with an update.
    fn publish_updates(&self, containers: &[ContainerObject]) {
        for container in containers.iter().filter(|c| c.update_available) {
            self.events().publish(
                EventKind::UpdateFound,
                serde_json::json!({
                    "containerId": container.id,
                    "name": container.name,
                    "watcher": container.watcher,
                    "image": container.image.reference,
                    "updateKind": container.update_kind,
                }),
            );
        }
    }

    /// The trigger dispatcher.
    pub fn triggers(&self) -> &Arc<TriggerDispatcher> {
        &self.triggers
    }

    /// The update actions, when some are configured.
    pub fn actions(&self) -> Option<&Arc<UpdateActions>> {
        self.actions.as_ref()
    }

    /// Scans what `request` names, then runs every update action on the
    /// result and answers after the work (`None` when no action is
    /// configured: the scan alone ran, with its triggers).
    pub async fn update(
        self: &Arc<Self>,
        request: ScanRequest,
        origin: ScanOrigin,
        dry_run: bool,
    ) -> Result<(Arc<ScanReport>, Option<UpdateReport>), ScanInterrupted> {
        let report = self.scan(request, origin).await?;
        let Some(actions) = self.actions.clone() else {
            return Ok((report, None));
        };
        let this = Arc::clone(self);
        let scanned = Arc::clone(&report);
        // In its own task: a client hanging up never stops an update half-way.
        let updated = self
            .tasks
            .spawn(async move {
                let mut updates = actions
                    .run(&scanned.containers, RunOrigin::Api, dry_run)
                    .await;
                updates.watcher_errors = scanned.watcher_errors.clone();
                this.invalidate();
                this.publish_outcomes(updates.outcomes());
                updates
            })
            .await
            .map_err(|error| ScanInterrupted(error.to_string()))?;
        Ok((report, Some(updated)))
    }

    /// Re-checks one container, then updates it by the first action that
    /// admits it (labels apply; threshold and window do not). `Ok(None)`
    /// when no action is configured; `Err` when the container is gone or
    /// the engine cannot be asked.
    pub async fn update_container(
        self: &Arc<Self>,
        watcher: &str,
        container_id: &str,
        dry_run: bool,
    ) -> Result<Option<UpdateOutcome>, ContainerUpdateError> {
        let Some(actions) = self.actions.clone() else {
            return Ok(None);
        };
        let container = self
            .refresh(watcher, container_id)
            .await
            .map_err(ContainerUpdateError::Unavailable)?
            .ok_or_else(|| ContainerUpdateError::Gone(container_id.to_owned()))?;
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move {
                let outcome = actions.update_one(&container, dry_run).await;
                this.invalidate();
                this.publish_outcomes(outcome.iter());
                outcome
            })
            .await
            .map_err(|error| {
                ContainerUpdateError::Unavailable(format!("the update was interrupted: {error}"))
            })
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Scans actually started (joined requests are not counted).
    pub fn started_scans(&self) -> u64 {
        self.started_scans.load(Ordering::Relaxed)
    }

    /// Scans that ran to their end (for readiness).
    pub fn finished_scans(&self) -> u64 {
        self.finished_scans.load(Ordering::Acquire)
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
        tokio::time::timeout(self.join_timeout, shared)
            .await
            .unwrap_or_else(|_| {
                Err(ScanInterrupted(format!(
                    "no answer within {} s (the wait for a scan in flight is bounded; it goes on in the background)",
                    self.join_timeout.as_secs()
                )))
            })
    }

    fn start_scan(
        self: &Arc<Self>,
        key: ScanKey,
        request: ScanRequest,
        origin: ScanOrigin,
    ) -> SharedScan {
        let scan_number = self.started_scans.fetch_add(1, Ordering::Relaxed) + 1;
        self.events().publish(
            EventKind::ScanStarted,
            serde_json::json!({
                "scan": scan_number,
                "origin": origin.as_str(),
                "images": request.images,
                "containerIds": request.container_ids,
                "watchers": request.watchers,
            }),
        );
        let this = Arc::clone(self);
        let task = self.tasks.spawn(async move {
            let started = Instant::now();
            let bus = Arc::clone(this.events());
            let progress: crate::scan::Progress = Arc::new(move |done, total| {
                bus.publish(
                    EventKind::ScanProgress,
                    serde_json::json!({ "scan": scan_number, "done": done, "total": total }),
                );
            });
            let report = Arc::new(this.engine.scan(request, Some(progress)).await);
            this.generation.fetch_add(1, Ordering::AcqRel);
            this.finished_scans.fetch_add(1, Ordering::AcqRel);
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
            this.publish_updates(&report.containers);
            this.events().publish(
                EventKind::ScanFinished,
                serde_json::json!({
                    "scan": scan_number,
                    "origin": origin.as_str(),
                    "containers": report.containers.len(),
                    "updates": report.containers.iter().filter(|c| c.update_available).count(),
                    "containerErrors": container_errors,
                    "watcherErrors": report.watcher_errors,
                    "durationMs": started.elapsed().as_millis() as u64,
                }),
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
                if let Some(actions) = dispatcher.actions.as_ref().filter(|a| a.any_automatic()) {
                    let updates = actions
                        .run(&dispatch_report.containers, RunOrigin::Automatic, false)
                        .await;
                    if updates.outcomes().next().is_some() {
                        dispatcher.invalidate();
                    }
                    dispatcher.publish_outcomes(updates.outcomes());
                }
                // The scan's garbage (and, once its callers are answered,
                // its report) goes back to the system, not to the peak RSS.
                drop(dispatch_report);
                crate::memory::release_free_memory();
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
            self.events()
                .publish_value(EventKind::ContainerUpdated, container);
            self.publish_updates(std::slice::from_ref(container));
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
