//! The daemon's front ends: HTTP API (axum), gRPC API (tonic), Prometheus
//! metrics, and the background work (start-up scan, schedules, Docker events)
//! wired together by [`start`].

pub mod agents;
pub mod auth;
pub mod dashboard;
pub mod events;
pub mod grpc;
pub mod http;
pub mod jobs;
pub mod openapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crowsnest_config::ServerConfig;
use crowsnest_docker::WatcherConfig;
use crowsnest_engine::metrics::ScanOrigin;
use crowsnest_engine::scheduler::{
    follow_events, follow_pods, run_schedule, Coordinator, ScanPlan,
};
use crowsnest_model::{ContainerObject, ScanReport, ScanRequest};
use crowsnest_plugin_host::Catalog;
use crowsnest_store::{Store, StoreError};

/// Default HTTP address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default gRPC address.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:3001";

/// A loaded plugin, as `GET /api/plugins` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginSummary {
    /// Plugin name.
    pub name: String,
    /// `registry-provider`, `version-strategy` or `trigger`.
    pub kind: String,
    /// Plugin version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// `builtin` or the drop-in file.
    pub source: String,
    /// Its configuration keys (name, description, required, secret).
    #[schema(value_type = Vec<Object>)]
    pub config_keys: serde_json::Value,
}

impl PluginSummary {
    /// Every plugin of `catalog`.
    pub fn from_catalog(catalog: &Catalog) -> Vec<Self> {
        catalog
            .entries()
            .map(|entry| {
                let info = &entry.component.info;
                Self {
                    name: info.name.clone(),
                    kind: info.kind.to_string(),
                    version: info.version.clone(),
                    description: info.description.clone(),
                    source: entry.component.source.to_string(),
                    config_keys: serde_json::to_value(&info.config_keys).unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// Configuration shown by the read-only routes, secrets already masked.
#[derive(Debug, Clone, Default)]
pub struct ConfigInfo {
    /// `GET /api/watchers`.
    pub watchers: BTreeMap<String, WatcherConfig>,
    /// `GET /api/registries` (the scan engine's masked summaries).
    pub registries: serde_json::Value,
    /// `GET /api/plugins`.
    pub plugins: Vec<PluginSummary>,
}

/// Stored containers as last read, with the JSON of the whole list, reused
/// until the coordinator says the store changed.
#[derive(Default)]
struct ContainerCache {
    entry: Mutex<Option<CachedContainers>>,
}

#[derive(Clone)]
struct CachedContainers {
    generation: u64,
    snapshot: ContainerSnapshot,
}

/// The stored containers at one moment, with their JSON (and, on demand, gzipped JSON).
#[derive(Clone)]
pub struct ContainerSnapshot {
    /// The containers, ordered by watcher then name.
    pub containers: Arc<Vec<ContainerObject>>,
    /// Their JSON array.
    pub json: Bytes,
    gzip: Arc<std::sync::OnceLock<Bytes>>,
}

impl ContainerSnapshot {
    /// The JSON array, gzip-compressed once per snapshot.
    pub fn gzip_json(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                use std::io::Write as _;
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.json.len() / 8),
                    flate2::Compression::default(),
                );
                // Writing into a Vec cannot fail.
                let _ = encoder.write_all(&self.json);
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// Everything a request handler needs.
pub struct AppState {
    /// Where containers live.
    pub store: Store,
    /// Scans, refreshes, triggers.
    pub coordinator: Arc<Coordinator>,
    /// The bearer token.
    pub token: auth::Token,
    /// Read-only configuration views.
    pub info: ConfigInfo,
    /// Batch scan jobs (`POST /api/scan?async=true`).
    pub jobs: jobs::ScanJobs,
    /// Cancelled at shutdown: ends event streams and the front ends.
    pub shutdown: CancellationToken,
    /// Connected `crowsnest agent`s (a container source of the scanner).
    pub agents: Arc<agents::AgentHub>,
    /// Dashboard logins.
    pub sessions: dashboard::session::Sessions,
    cache: ContainerCache,
}

impl AppState {
    /// State over `store` and `coordinator`.
    pub fn new(
        store: Store,
        coordinator: Arc<Coordinator>,
        token: auth::Token,
        info: ConfigInfo,
        agents: Arc<agents::AgentHub>,
    ) -> Self {
        Self {
            agents,
            store,
            coordinator,
            token,
            info,
            jobs: jobs::ScanJobs::default(),
            shutdown: CancellationToken::new(),
            sessions: dashboard::session::Sessions::default(),
            cache: ContainerCache::default(),
        }
    }

    /// The stored containers and their JSON array, from the cache when the store did not change.
    pub async fn containers(&self) -> Result<ContainerSnapshot, StoreError> {
        // Read the generation first: a change during the load leaves the entry stale, never wrong.
        let generation = self.coordinator.generation();
        if let Ok(entry) = self.cache.entry.lock() {
            if let Some(cached) = entry
                .as_ref()
                .filter(|cached| cached.generation == generation)
            {
                return Ok(cached.snapshot.clone());
            }
        }
        let containers: Vec<ContainerObject> = self.store.list_containers().await?;
        let snapshot = ContainerSnapshot {
            json: Bytes::from(serde_json::to_vec(&containers)?),
            containers: Arc::new(containers),
            gzip: Arc::default(),
        };
        if let Ok(mut entry) = self.cache.entry.lock() {
            *entry = Some(CachedContainers {
                generation,
                snapshot: snapshot.clone(),
            });
        }
        Ok(snapshot)
    }
}

/// The failure a full scan answers with when it read no container because
/// watchers failed: their messages joined by `; `. `None` when the scan has
/// containers to show or no watcher failed.
fn every_watcher_failed(report: &ScanReport) -> Option<String> {
    // Stale containers are the failed watchers' own last results.
    let fresh = report.containers.iter().any(|c| !c.check.stale);
    if fresh || report.watcher_errors.is_empty() {
        return None;
    }
    let messages: Vec<&str> = report
        .watcher_errors
        .iter()
        .map(|error| error.message.as_str())
        .collect();
    Some(messages.join("; "))
}

/// The response header that lists, as a JSON array of `{watcher, message}`,
/// the watchers a rescan could not read (the WUD answer must stay an array).
pub const WATCHER_ERRORS_HEADER: &str = "x-crowsnest-watcher-errors";

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An address could not be bound.
    #[error("cannot listen on {address} ({what}): {source}")]
    Bind {
        /// HTTP or gRPC.
        what: &'static str,
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A watcher's schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] crowsnest_engine::scheduler::ScheduleError),
}

/// What [`start`] runs besides the API.
#[derive(Debug, Clone)]
pub struct Background {
    /// Watchers to schedule and follow.
    pub watchers: BTreeMap<String, WatcherConfig>,
    /// Kubernetes watchers whose Pods are watched.
    pub kubernetes_watchers: BTreeMap<String, crowsnest_config::KubernetesWatcherConfig>,
    /// Run cron schedules.
    pub schedules: bool,
}

/// A running daemon.
pub struct RunningServer {
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound gRPC address.
    pub grpc_addr: Option<SocketAddr>,
    /// Shared state (store, coordinator).
    pub state: Arc<AppState>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    grace: Duration,
}

impl RunningServer {
    /// Stops accepting requests and background work, then waits (up to the
    /// configured grace) for scans and trigger deliveries in flight.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(self.grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("front ends did not stop within the grace period");
        }
        self.state.coordinator.shutdown(self.grace).await;
        self.state.coordinator.triggers().shutdown(self.grace).await;
        tracing::info!("stopped");
    }

    /// Completes when shutdown was requested.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}

/// Binds the HTTP (and gRPC) listeners, then starts serving, the start-up
/// scan, the schedules and the event followers.
pub async fn start(
    config: &ServerConfig,
    state: Arc<AppState>,
    background: Background,
) -> Result<RunningServer, ServeError> {
    let plan = ScanPlan::of_schedules(
        background
            .watchers
            .iter()
            .map(|(name, w)| (name.clone(), w.schedule.clone(), w.jitter))
            .chain(
                background
                    .kubernetes_watchers
                    .iter()
                    .map(|(name, w)| (name.clone(), w.schedule.clone(), w.jitter)),
            ),
    )?;
    let http_listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                what: "HTTP",
                address: config.listen,
                source,
            })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            what: "HTTP",
            address: config.listen,
            source,
        })?;
    let grpc_listener = match config.grpc_listen {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::Bind {
                    what: "gRPC",
                    address,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| ServeError::Bind {
                what: "gRPC",
                address,
                source,
            })?;
            Some((listener, bound))
        }
        None => None,
    };
    let cancel = state.shutdown.clone();
    let tasks = TaskTracker::new();

    let router = http::router(Arc::clone(&state)).layer(axum::middleware::from_fn_with_state(
        config.request_timeout,
        http::bound_request,
    ));
    let http_cancel = cancel.clone();
    tasks.spawn(async move {
        let served = axum::serve(http_listener, router)
            .with_graceful_shutdown(http_cancel.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    tracing::info!(address = %http_addr, "HTTP API listening");

    let grpc_addr = grpc_listener.as_ref().map(|(_, bound)| *bound);
    if let Some((listener, bound)) = grpc_listener {
        let grpc_state = Arc::clone(&state);
        let grpc_cancel = cancel.clone();
        let request_timeout = config.request_timeout;
        tasks.spawn(async move {
            if let Err(error) = grpc::serve(
                grpc_state,
                listener,
                request_timeout,
                grpc_cancel.cancelled_owned(),
            )
            .await
            {
                tracing::error!(%error, "gRPC server failed");
            }
        });
        tracing::info!(address = %bound, "gRPC API listening");
    }

    if config.scan_on_start {
        let coordinator = Arc::clone(&state.coordinator);
        tasks.spawn(async move {
            if let Err(error) = coordinator
                .scan(ScanRequest::default(), ScanOrigin::Startup)
                .await
            {
                tracing::warn!(%error, "start-up scan failed");
            }
        });
    }
    tasks.spawn(agents::stale_unless_back(
        Arc::clone(&state),
        config.agent_grace,
    ));
    if background.schedules {
        for (schedule, jitter, watchers) in &plan.timers {
            tasks.spawn(run_schedule(
                Arc::clone(&state.coordinator),
                schedule.clone(),
                *jitter,
                plan.request_for(watchers),
                cancel.clone(),
            ));
        }
    }
    if config.events {
        for (name, watcher) in &background.watchers {
            tasks.spawn(follow_events(
                Arc::clone(&state.coordinator),
                name.clone(),
                watcher.clone(),
                config.event_debounce,
                cancel.clone(),
            ));
        }
        for (name, watcher) in &background.kubernetes_watchers {
            tasks.spawn(follow_pods(
                Arc::clone(&state.coordinator),
                name.clone(),
                watcher.clone(),
                config.event_debounce,
                cancel.clone(),
            ));
        }
    }
    Ok(RunningServer {
        http_addr,
        grpc_addr,
        state,
        cancel,
        tasks,
        grace: config.shutdown_grace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_without_containers_fails_with_the_watcher_messages() {
        let failure = |watcher: &str, message: &str| crowsnest_model::WatcherError {
            watcher: watcher.to_owned(),
            message: message.to_owned(),
        };
        let mut report = ScanReport::default();
        assert_eq!(every_watcher_failed(&report), None);
        report.watcher_errors = vec![failure("a", "a is down"), failure("b", "b is down")];
        assert_eq!(
            every_watcher_failed(&report).as_deref(),
            Some("a is down; b is down")
        );
    }
}
