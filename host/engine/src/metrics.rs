//! Prometheus metrics of the daemon (`GET /metrics`, text exposition format).
//!
//! Scans, events, trigger deliveries, registry requests and plugin calls are
//! counted by the [`Metrics`] of one running server; plugin calls reach it as
//! the [`PluginObserver`] the plugin host is given.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crowsnest_model::ContainerObject;
use crowsnest_oci::RequestCounters;
use crowsnest_plugin_host::{CallOutcome, PluginObserver};

/// Label pairs of one time series.
type Labels = Vec<(String, String)>;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What started a scan, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanOrigin {
    /// The scan at start-up.
    Startup,
    /// A watcher's cron schedule.
    Schedule,
    /// The HTTP API.
    Http,
    /// The gRPC API.
    Grpc,
    /// A change seen by a Kubernetes watcher's Pod watch.
    PodWatch,
}

impl ScanOrigin {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Schedule => "schedule",
            Self::Http => "http",
            Self::Grpc => "grpc",
            Self::PodWatch => "pod-watch",
        }
    }
}

/// The metrics of one running server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    scans: Family<Labels, Counter>,
    scan_duration: Histogram,
    scan_errors: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    updates: Family<Labels, Counter>,
    containers: Family<Labels, Gauge>,
    stale: Family<Labels, Gauge>,
    registry_requests: Family<Labels, Counter>,
    plugin_calls: Family<Labels, Counter>,
    plugin_traps: Family<Labels, Counter>,
    request_counters: Mutex<Option<Arc<RequestCounters>>>,
    /// Serialises scrapes: the container gauges are rebuilt on each one.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crowsnest");
        let scans = Family::<Labels, Counter>::default();
        let scan_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let scan_errors = Family::<Labels, Counter>::default();
        let events = Family::<Labels, Counter>::default();
        let deliveries = Family::<Labels, Counter>::default();
        let containers = Family::<Labels, Gauge>::default();
        let updates = Family::<Labels, Counter>::default();
        registry.register(
            "container_updates",
            "Update actions on containers and services, by action and outcome (updated, handed-over, dry-run, rolled-back, failed)",
            updates.clone(),
        );
        let registry_requests = Family::<Labels, Counter>::default();
        registry.register("scans", "Scans run, by origin", scans.clone());
        registry.register(
            "scan_duration_seconds",
            "Wall time of scans",
            scan_duration.clone(),
        );
        registry.register(
            "scan_errors",
            "Failed container checks (kind=container) and unreadable watchers (kind=watcher)",
            scan_errors.clone(),
        );
        registry.register(
            "docker_events",
            "Docker container events handled, by action",
            events.clone(),
        );
        registry.register(
            "trigger_deliveries",
            "Trigger delivery attempts, by trigger and outcome",
            deliveries.clone(),
        );
        registry.register(
            "containers",
            "Stored containers by watcher and check status (up-to-date, update, not-checked, error)",
            containers.clone(),
        );
        let stale = Family::<Labels, Gauge>::default();
        registry.register(
            "containers_stale",
            "Stored containers whose result is the last one known (their watcher was unreachable), by watcher",
            stale.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests sent to registries and token realms, by origin and status",
            registry_requests.clone(),
        );
        let plugin_calls = Family::<Labels, Counter>::default();
        let plugin_traps = Family::<Labels, Counter>::default();
        registry.register(
            "plugin_calls",
            "Calls into plugin instances, by plugin and outcome",
            plugin_calls.clone(),
        );
        registry.register(
            "plugin_traps",
            "Plugin traps (panics, limits), by plugin",
            plugin_traps.clone(),
        );
        Self {
            registry,
            scans,
            scan_duration,
            scan_errors,
            events,
            deliveries,
            updates,
            containers,
            stale,
            registry_requests,
            plugin_calls,
            plugin_traps,
            request_counters: Mutex::new(None),
            scrape: Mutex::new(()),
        }
    }

    /// Reads registry request counts from `counters` at each scrape.
    pub fn set_request_counters(&self, counters: Arc<RequestCounters>) {
        if let Ok(mut slot) = self.request_counters.lock() {
            *slot = Some(counters);
        }
    }

    /// Counts a finished scan.
    pub fn record_scan(
        &self,
        origin: ScanOrigin,
        duration: Duration,
        container_errors: usize,
        watcher_errors: usize,
    ) {
        self.scans
            .get_or_create(&vec![("origin".to_owned(), origin.as_str().to_owned())])
            .inc();
        self.scan_duration.observe(duration.as_secs_f64());
        for (kind, count) in [("container", container_errors), ("watcher", watcher_errors)] {
            let counter = self
                .scan_errors
                .get_or_create(&vec![("kind".to_owned(), kind.to_owned())]);
            counter.inc_by(count as u64);
        }
    }

    /// Counts a handled Docker event.
    pub fn record_event(&self, action: &str) {
        self.events
            .get_or_create(&vec![("action".to_owned(), action.to_owned())])
            .inc();
    }

    /// Counts one trigger delivery attempt; `outcome` is `success`, `failure` or `retry`.
    pub fn record_delivery(&self, trigger: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&vec![
                ("trigger".to_owned(), trigger.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    /// Delivery attempts of `trigger` that ended with `outcome` so far.
    pub fn deliveries(&self, trigger: &str, outcome: &str) -> u64 {
        self.deliveries
            .get_or_create(&vec![
                ("trigger".to_owned(), trigger.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .get()
    }

    /// Counts one update action outcome on a container or service.
    pub fn record_update(&self, action: &str, outcome: &str) {
        self.updates
            .get_or_create(&vec![
                ("action".to_owned(), action.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    /// The text exposition, with the container gauges computed from `containers`.
    pub fn render(&self, containers: &[ContainerObject]) -> String {
        let _scrape = self.scrape.lock();
        self.containers.clear();
        self.stale.clear();
        for container in containers {
            // Every watcher shows, at 0 when none of its results is stale.
            let stale = self
                .stale
                .get_or_create(&vec![("watcher".to_owned(), container.watcher.clone())]);
            if container.check.stale {
                stale.inc();
            }
            let status = container.check.status.as_str();
            self.containers
                .get_or_create(&vec![
                    ("watcher".to_owned(), container.watcher.clone()),
                    ("status".to_owned(), status.to_owned()),
                ])
                .inc();
        }
        let counters = self
            .request_counters
            .lock()
            .ok()
            .and_then(|slot| slot.clone());
        if let Some(counters) = counters {
            for count in counters.snapshot() {
                let status = count
                    .status
                    .map_or_else(|| "none".to_owned(), |status| status.to_string());
                let counter = self.registry_requests.get_or_create(&vec![
                    ("origin".to_owned(), count.origin),
                    ("status".to_owned(), status),
                ]);
                // The source counts are absolute: advance ours to them.
                let seen = counter.get();
                if count.count > seen {
                    counter.inc_by(count.count - seen);
                }
            }
        }
        let mut text = String::with_capacity(4096);
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        text
    }
}

impl PluginObserver for Metrics {
    /// Counts one call into a plugin instance: `plugin` is the instance label
    /// (e.g. `webhook (trigger ops)`); traps (panic, CPU or memory limit) are
    /// also counted on their own.
    fn call_finished(&self, plugin: &str, outcome: CallOutcome) {
        let label = if outcome == CallOutcome::Ok {
            "ok"
        } else {
            "error"
        };
        self.plugin_calls
            .get_or_create(&vec![
                ("plugin".to_owned(), plugin.to_owned()),
                ("outcome".to_owned(), label.to_owned()),
            ])
            .inc();
        if outcome == CallOutcome::Trapped {
            self.plugin_traps
                .get_or_create(&vec![("plugin".to_owned(), plugin.to_owned())])
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let metrics = Metrics::new();
        let counters = Arc::new(RequestCounters::new());
        counters.record("http://127.0.0.1:5001", Some(200));
        counters.record("http://127.0.0.1:5001", Some(200));
        metrics.set_request_counters(Arc::clone(&counters));
        metrics.record_scan(ScanOrigin::Http, Duration::from_millis(30), 2, 0);
        metrics.record_delivery("ops", "success");
        metrics.record_event("start");
        metrics.record_update("nightly", "rolled-back");
        metrics.call_finished("unit-test-plugin", CallOutcome::Ok);
        metrics.call_finished("unit-test-plugin", CallOutcome::Trapped);
        let text = metrics.render(&[]);
        for expected in [
            "crowsnest_scans_total{origin=\"http\"} 1",
            "crowsnest_scan_errors_total{kind=\"container\"} 2",
            "crowsnest_trigger_deliveries_total{trigger=\"ops\",outcome=\"success\"} 1",
            "crowsnest_docker_events_total{action=\"start\"} 1",
            "crowsnest_container_updates_total{action=\"nightly\",outcome=\"rolled-back\"} 1",
            "crowsnest_registry_requests_total{origin=\"http://127.0.0.1:5001\",status=\"200\"} 2",
            "crowsnest_plugin_calls_total{plugin=\"unit-test-plugin\",outcome=\"ok\"} 1",
            "crowsnest_plugin_calls_total{plugin=\"unit-test-plugin\",outcome=\"error\"} 1",
            "crowsnest_plugin_traps_total{plugin=\"unit-test-plugin\"} 1",
            "crowsnest_scan_duration_seconds_count 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        counters.record("http://127.0.0.1:5001", Some(200));
        let text = metrics.render(&[]);
        assert!(
            text.contains(
                "crowsnest_registry_requests_total{origin=\"http://127.0.0.1:5001\",status=\"200\"} 3"
            ),
            "{text}"
        );
    }

    #[test]
    fn stale_containers_are_counted_per_watcher() {
        let metrics = Metrics::new();
        let object = |watcher: &str, stale: bool| {
            let mut object = crate::triggers::templates::sample_container();
            object.watcher = watcher.to_owned();
            object.check.stale = stale;
            object
        };
        let text = metrics.render(&[
            object("remote", true),
            object("remote", true),
            object("remote", false),
            object("local", false),
        ]);
        for expected in [
            "crowsnest_containers_stale{watcher=\"remote\"} 2",
            "crowsnest_containers_stale{watcher=\"local\"} 0",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        // Gone once the results are fresh again.
        let text = metrics.render(&[object("remote", false)]);
        assert!(
            text.contains("crowsnest_containers_stale{watcher=\"remote\"} 0"),
            "{text}"
        );
    }
}
