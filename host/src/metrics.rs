//! Prometheus metrics of the daemon (`GET /metrics`, text exposition format).
//!
//! Scans, events and trigger deliveries are counted by the [`Metrics`] of one
//! running server. Plugin calls happen deep inside the plugin pool, which has
//! no handle on a server, so they are counted in process-wide families
//! ([`record_plugin_call`], [`record_plugin_trap`]) that every server exposes.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::ContainerObject;
use crate::registry::RequestCounters;

/// Label pairs of one time series.
type Labels = Vec<(String, String)>;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Process-wide plugin call counters (see the module documentation).
struct PluginFamilies {
    calls: Family<Labels, Counter>,
    traps: Family<Labels, Counter>,
}

fn plugin_families() -> &'static PluginFamilies {
    static FAMILIES: OnceLock<PluginFamilies> = OnceLock::new();
    FAMILIES.get_or_init(|| PluginFamilies {
        calls: Family::default(),
        traps: Family::default(),
    })
}

/// Counts one call into a plugin instance: `plugin` is the instance label
/// (e.g. `webhook (trigger ops)`), `ok` whether the call returned without trap.
pub fn record_plugin_call(plugin: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    plugin_families()
        .calls
        .get_or_create(&vec![
            ("plugin".to_owned(), plugin.to_owned()),
            ("outcome".to_owned(), outcome.to_owned()),
        ])
        .inc();
}

/// Counts one trap (panic, fuel/epoch deadline, memory limit) of a plugin instance.
pub fn record_plugin_trap(plugin: &str) {
    plugin_families()
        .traps
        .get_or_create(&vec![("plugin".to_owned(), plugin.to_owned())])
        .inc();
}

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
}

impl ScanOrigin {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Schedule => "schedule",
            Self::Http => "http",
            Self::Grpc => "grpc",
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
    containers: Family<Labels, Gauge>,
    registry_requests: Family<Labels, Counter>,
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
            "Stored containers by watcher and update status",
            containers.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests sent to registries and token realms, by origin and status",
            registry_requests.clone(),
        );
        let plugins = plugin_families();
        registry.register(
            "plugin_calls",
            "Calls into plugin instances, by plugin and outcome",
            plugins.calls.clone(),
        );
        registry.register(
            "plugin_traps",
            "Plugin traps (panics, limits), by plugin",
            plugins.traps.clone(),
        );
        Self {
            registry,
            scans,
            scan_duration,
            scan_errors,
            events,
            deliveries,
            containers,
            registry_requests,
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

    /// The text exposition, with the container gauges computed from `containers`.
    pub fn render(&self, containers: &[ContainerObject]) -> String {
        let _scrape = self.scrape.lock();
        self.containers.clear();
        for container in containers {
            let status = if container.error.is_some() {
                "error"
            } else if container.update_available {
                "update_available"
            } else {
                "up_to_date"
            };
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
        record_plugin_call("unit-test-plugin", true);
        record_plugin_trap("unit-test-plugin");
        let text = metrics.render(&[]);
        for expected in [
            "crowsnest_scans_total{origin=\"http\"} 1",
            "crowsnest_scan_errors_total{kind=\"container\"} 2",
            "crowsnest_trigger_deliveries_total{trigger=\"ops\",outcome=\"success\"} 1",
            "crowsnest_docker_events_total{action=\"start\"} 1",
            "crowsnest_registry_requests_total{origin=\"http://127.0.0.1:5001\",status=\"200\"} 2",
            "crowsnest_plugin_calls_total{plugin=\"unit-test-plugin\",outcome=\"ok\"}",
            "crowsnest_plugin_traps_total{plugin=\"unit-test-plugin\"}",
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
}
