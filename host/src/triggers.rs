//! Host-side trigger dispatch: which configured trigger fires for which update,
//! when, how often, and delivery with retries that never block a scan.
//!
//! `[triggers.NAME] plugin = "webhook"` plus the host options below; every other
//! key goes to the plugin's `configure`:
//! - `threshold` = `all` (default) | `major` | `minor` | `patch` | `major-only` | `minor-only`
//!   (WUD's meaning: `minor` fires for minor and patch updates, `minor-only` for minor only;
//!   digest and non-semver updates pass every threshold);
//! - `mode` = `simple` (one delivery per container, default) | `batch` (one per scan);
//! - `once` = true (default): a given result (container + kind + remote value) is
//!   delivered once, remembered in the store across restarts;
//! - `auto` = true (default); false = only when asked through the API (`/v1/update`,
//!   `POST /api/containers/{id}/triggers/{name}`);
//! - `retries` (default 3) and `retry_backoff_ms` (default 1000, doubled per attempt);
//! - `allowed_hosts`: hosts the plugin may reach besides the host of its `url`.
//!
//! Per container, `crowsnest.trigger.include` / `.exclude` (comma-separated trigger
//! names, `NAME` or `PLUGIN.NAME`, include entries optionally `NAME:THRESHOLD`) narrow
//! which triggers fire for it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, PluginInstanceConfig};
use crate::discovery::ContainerOptions;
use crate::metrics::Metrics;
use crate::model::ContainerObject;
use crate::plugin::trigger::{DeliveryError, UpdateEvent};
use crate::plugin::{Catalog, PluginKind, TriggerPlugin};
use crate::registry::HostAllowList;
use crate::store::Store;

/// Keys of a `[triggers.NAME]` table the host reads (never passed to the plugin).
pub const HOST_KEYS: &[&str] = &[
    "threshold",
    "mode",
    "once",
    "auto",
    "retries",
    "retry_backoff_ms",
    "allowed_hosts",
];

/// Longest wait between two delivery attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Which updates a trigger fires for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Threshold {
    /// Every update.
    All,
    /// Major, minor and patch (every update, like WUD's `major`).
    Major,
    /// Minor and patch, not major.
    Minor,
    /// Patch (and prerelease) only.
    Patch,
    /// Major only.
    MajorOnly,
    /// Minor only.
    MinorOnly,
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Self::All),
            "major" => Ok(Self::Major),
            "minor" => Ok(Self::Minor),
            "patch" => Ok(Self::Patch),
            "major-only" => Ok(Self::MajorOnly),
            "minor-only" => Ok(Self::MinorOnly),
            other => Err(format!(
                "`{other}` is not a threshold (all, major, minor, patch, major-only, minor-only)"
            )),
        }
    }
}

impl Threshold {
    /// Whether an update of `kind` (`tag`/`digest`/`unknown`) with `semver_diff` reaches it.
    pub fn reached(self, kind: &str, semver_diff: Option<&str>) -> bool {
        // Like WUD: only semver tag updates are graded; anything else always passes.
        let Some(diff) = semver_diff.filter(|_| kind == "tag") else {
            return true;
        };
        match self {
            Self::All | Self::Major => true,
            Self::Minor => diff != "major",
            Self::Patch => diff != "major" && diff != "minor",
            Self::MajorOnly => diff == "major",
            Self::MinorOnly => diff == "minor",
        }
    }
}

/// How deliveries are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One delivery per container.
    Simple,
    /// One delivery per scan with every qualifying container.
    Batch,
}

/// The host options of one trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerOptions {
    /// Which updates fire it.
    pub threshold: Threshold,
    /// Grouping.
    pub mode: Mode,
    /// Deliver a given result only once.
    pub once: bool,
    /// Fire after scans (false: only through the API).
    pub auto: bool,
    /// Extra attempts after a failed delivery.
    pub retries: u32,
    /// Wait before the first retry, doubled for each later one.
    #[serde(rename = "retryBackoffMs", serialize_with = "serialize_millis")]
    pub retry_backoff: Duration,
    /// Hosts the plugin may reach besides its `url`'s.
    pub allowed_hosts: Vec<String>,
}

fn serialize_millis<S: serde::Serializer>(
    value: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_millis() as u64)
}

impl Default for TriggerOptions {
    fn default() -> Self {
        Self {
            threshold: Threshold::All,
            mode: Mode::Simple,
            once: true,
            auto: true,
            retries: 3,
            retry_backoff: Duration::from_millis(1000),
            allowed_hosts: Vec::new(),
        }
    }
}

/// A trigger that cannot be set up; names the trigger and the key.
#[derive(Debug, thiserror::Error)]
#[error("trigger `{trigger}`{}: {message}", key.as_ref().map(|k| format!(": key `triggers.{trigger}.{k}`")).unwrap_or_default())]
pub struct TriggerSetupError {
    /// `[triggers.NAME]`.
    pub trigger: String,
    /// The offending key, when one is to blame.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl TriggerOptions {
    /// Reads the host keys of `[triggers.NAME]`.
    pub fn parse(name: &str, instance: &PluginInstanceConfig) -> Result<Self, TriggerSetupError> {
        let error = |key: &str, message: String| TriggerSetupError {
            trigger: name.to_owned(),
            key: Some(key.to_owned()),
            message,
        };
        let mut options = Self::default();
        let settings = &instance.settings;
        if let Some(value) = settings.get("threshold") {
            let text = value
                .as_str()
                .ok_or_else(|| error("threshold", "must be a string".into()))?;
            options.threshold = text
                .parse()
                .map_err(|message| error("threshold", message))?;
        }
        if let Some(value) = settings.get("mode") {
            options.mode = match value.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("simple") => Mode::Simple,
                Some("batch") => Mode::Batch,
                _ => return Err(error("mode", "must be `simple` or `batch`".into())),
            };
        }
        for (key, slot) in [("once", &mut options.once), ("auto", &mut options.auto)] {
            if let Some(value) = settings.get(key) {
                *slot = value
                    .as_bool()
                    .ok_or_else(|| error(key, "must be true or false".into()))?;
            }
        }
        if let Some(value) = settings.get("retries") {
            options.retries = value
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= 20)
                .ok_or_else(|| error("retries", "must be an integer from 0 to 20".into()))?;
        }
        if let Some(value) = settings.get("retry_backoff_ms") {
            let millis = value
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| {
                    error("retry_backoff_ms", "must be a non-negative integer".into())
                })?;
            options.retry_backoff = Duration::from_millis(millis);
        }
        if let Some(value) = settings.get("allowed_hosts") {
            let hosts = value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .and_then(|hosts| hosts)
                .ok_or_else(|| {
                    error("allowed_hosts", "must be an array of host patterns".into())
                })?;
            HostAllowList::new(&hosts).map_err(|message| error("allowed_hosts", message))?;
            options.allowed_hosts = hosts;
        }
        Ok(options)
    }
}

/// The update event a container's result describes (None when it has no update).
pub fn update_event(container: &ContainerObject) -> Option<UpdateEvent> {
    if !container.update_available || container.error.is_some() {
        return None;
    }
    let kind = container.update_kind.as_ref()?;
    Some(UpdateEvent {
        container_id: container.id.clone(),
        container_name: container.name.clone(),
        watcher: container.watcher.clone(),
        image: container.image.reference.clone(),
        kind: kind.kind.clone(),
        semver_diff: kind.semver_diff.clone(),
        local_value: kind.local_value.clone().unwrap_or_default(),
        remote_value: kind.remote_value.clone().unwrap_or_default(),
        link: container
            .result
            .as_ref()
            .and_then(|result| result.link.clone()),
    })
}

/// The key `once` remembers a delivered result by.
pub fn result_key(event: &UpdateEvent) -> String {
    format!("{}:{}", event.kind, event.remote_value)
}

/// What a container's `crowsnest.trigger.include/exclude` labels say about one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelVerdict {
    /// Not allowed for this container.
    Excluded,
    /// Allowed, with the trigger's own threshold or the label's override.
    Allowed(Option<Threshold>),
}

/// Applies the container's trigger labels to trigger `name` (plugin `plugin`).
pub fn label_verdict(options: &ContainerOptions, name: &str, plugin: &str) -> LabelVerdict {
    let qualified = format!("{plugin}.{name}");
    let entries = |list: &Option<String>| -> Vec<(String, Option<String>)> {
        list.as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry.split_once(':') {
                Some((trigger, threshold)) => (
                    trigger.trim().to_ascii_lowercase(),
                    Some(threshold.trim().to_owned()),
                ),
                None => (entry.to_ascii_lowercase(), None),
            })
            .collect()
    };
    let names_this = |trigger: &str| {
        trigger == name.to_ascii_lowercase() || trigger == qualified.to_ascii_lowercase()
    };
    if entries(&options.trigger_exclude)
        .iter()
        .any(|(trigger, _)| names_this(trigger))
    {
        return LabelVerdict::Excluded;
    }
    if options.trigger_include.is_none() {
        return LabelVerdict::Allowed(None);
    }
    match entries(&options.trigger_include)
        .into_iter()
        .find(|(trigger, _)| names_this(trigger))
    {
        Some((_, threshold)) => LabelVerdict::Allowed(threshold.and_then(|t| t.parse().ok())),
        None => LabelVerdict::Excluded,
    }
}

/// Something that delivers events: a trigger plugin instance, in production.
pub trait Notifier: Send + Sync + 'static {
    /// Deliver one event.
    fn notify<'a>(&'a self, event: &'a UpdateEvent) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Deliver several events at once.
    fn notify_batch<'a>(
        &'a self,
        events: &'a [UpdateEvent],
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

impl Notifier for TriggerPlugin {
    fn notify<'a>(&'a self, event: &'a UpdateEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(TriggerPlugin::notify(self, event))
    }

    fn notify_batch<'a>(
        &'a self,
        events: &'a [UpdateEvent],
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(TriggerPlugin::notify_batch(self, events))
    }
}

/// One configured trigger.
pub struct ConfiguredTrigger {
    /// `[triggers.NAME]`.
    pub name: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Host options.
    pub options: TriggerOptions,
    /// Plugin settings with secrets masked, for `GET /api/triggers`.
    pub masked_settings: BTreeMap<String, String>,
    notifier: Box<dyn Notifier>,
}

impl fmt::Debug for ConfiguredTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredTrigger")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ConfiguredTrigger {
    /// A trigger delivering through `notifier`.
    pub fn new(
        name: impl Into<String>,
        plugin: impl Into<String>,
        options: TriggerOptions,
        notifier: Box<dyn Notifier>,
    ) -> Self {
        Self {
            name: name.into(),
            plugin: plugin.into(),
            options,
            masked_settings: BTreeMap::new(),
            notifier,
        }
    }
}

/// `GET /api/triggers` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSummary {
    /// `[triggers.NAME]`.
    pub name: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Host options.
    #[serde(flatten)]
    pub options: TriggerOptions,
    /// Plugin settings, secrets masked.
    pub settings: BTreeMap<String, String>,
}

/// Which triggers a dispatch may fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchScope {
    /// After a scan or event: the `auto` triggers.
    Automatic,
    /// Asked through the API (`/v1/update`, whose scan already fired the
    /// automatic ones): the triggers with `auto = false`.
    ApiOnly,
}

/// Why a manual trigger run failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerRunError {
    /// No `[triggers.NAME]` of that name.
    #[error("no trigger named `{0}` is configured")]
    UnknownTrigger(String),
    /// The container has nothing to deliver.
    #[error("container `{0}` has no update available")]
    NoUpdate(String),
    /// Every attempt failed.
    #[error("trigger `{trigger}` failed: {message}")]
    Delivery {
        /// Trigger name.
        trigger: String,
        /// Last error.
        message: String,
    },
}

/// The configured triggers and their background deliveries.
pub struct TriggerDispatcher {
    triggers: Vec<Arc<ConfiguredTrigger>>,
    store: Store,
    metrics: Arc<Metrics>,
    /// (trigger, container, result key) deliveries under way, so a scan during
    /// a retry does not queue the same delivery twice.
    pending: Arc<Mutex<HashSet<(String, String, String)>>>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl fmt::Debug for TriggerDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggerDispatcher")
            .field("triggers", &self.triggers)
            .finish_non_exhaustive()
    }
}

impl TriggerDispatcher {
    /// A dispatcher over already built triggers.
    pub fn new(triggers: Vec<ConfiguredTrigger>, store: Store, metrics: Arc<Metrics>) -> Self {
        Self {
            triggers: triggers.into_iter().map(Arc::new).collect(),
            store,
            metrics,
            pending: Arc::default(),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Instantiates every `[triggers.NAME]` of `config` from `catalog`.
    pub async fn from_config(
        config: &Config,
        catalog: &Catalog,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Self, TriggerSetupError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|err| TriggerSetupError {
                trigger: String::new(),
                key: None,
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        let limits = config.plugins.sandbox_limits();
        let mut triggers = Vec::new();
        for (name, instance) in &config.triggers {
            let setup_error = |key: Option<&str>, message: String| TriggerSetupError {
                trigger: name.clone(),
                key: key.map(str::to_owned),
                message,
            };
            let options = TriggerOptions::parse(name, instance)?;
            let entry = catalog
                .find(&instance.plugin, PluginKind::Trigger)
                .map_err(|err| setup_error(Some("plugin"), err.to_string()))?;
            let mut hosts = options.allowed_hosts.clone();
            hosts.extend(entry.grants.allowed_hosts.iter().cloned());
            if let Some(url) = instance.get_str("url") {
                let parsed = url::Url::parse(url)
                    .map_err(|err| setup_error(Some("url"), format!("not a URL: {err}")))?;
                let host = parsed
                    .host_str()
                    .ok_or_else(|| setup_error(Some("url"), "has no host".into()))?;
                hosts.push(match parsed.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                });
            }
            let allow = HostAllowList::new(&hosts)
                .map_err(|message| setup_error(Some("allowed_hosts"), message))?;
            let settings = instance.plugin_settings(HOST_KEYS);
            let secret_keys: HashSet<&str> = entry
                .component
                .info
                .config_keys
                .iter()
                .filter(|key| key.secret)
                .map(|key| key.name.as_str())
                .collect();
            let masked_settings = settings
                .iter()
                .map(|(key, value)| {
                    let lowered = key.to_ascii_lowercase();
                    let secret = secret_keys.contains(key.as_str())
                        || ["password", "token", "secret", "key"]
                            .iter()
                            .any(|word| lowered.contains(word));
                    (
                        key.clone(),
                        if secret {
                            "********".to_owned()
                        } else {
                            value.clone()
                        },
                    )
                })
                .collect();
            let plugin = TriggerPlugin::new(
                &entry.component,
                name,
                settings,
                Arc::new(allow),
                http.clone(),
                limits,
            )
            .await
            .map_err(|err| setup_error(None, err.to_string()))?;
            let mut trigger = ConfiguredTrigger::new(
                name.clone(),
                instance.plugin.clone(),
                options,
                Box::new(plugin),
            );
            trigger.masked_settings = masked_settings;
            triggers.push(trigger);
        }
        Ok(Self::new(triggers, store, metrics))
    }

    /// The configured triggers, secrets masked.
    pub fn summaries(&self) -> Vec<TriggerSummary> {
        self.triggers
            .iter()
            .map(|trigger| TriggerSummary {
                name: trigger.name.clone(),
                plugin: trigger.plugin.clone(),
                options: trigger.options.clone(),
                settings: trigger.masked_settings.clone(),
            })
            .collect()
    }

    /// Queues the deliveries `containers` call for and returns at once; the
    /// deliveries (with their retries) run in the background.
    pub async fn dispatch(&self, containers: &[ContainerObject], scope: DispatchScope) {
        for trigger in &self.triggers {
            let in_scope = match scope {
                DispatchScope::Automatic => trigger.options.auto,
                DispatchScope::ApiOnly => !trigger.options.auto,
            };
            if !in_scope {
                continue;
            }
            let mut events = Vec::new();
            for container in containers {
                let Some(event) = update_event(container) else {
                    continue;
                };
                let (options, _) = ContainerOptions::from_labels(&container.labels);
                let threshold = match label_verdict(&options, &trigger.name, &trigger.plugin) {
                    LabelVerdict::Excluded => continue,
                    LabelVerdict::Allowed(threshold) => {
                        threshold.unwrap_or(trigger.options.threshold)
                    }
                };
                if !threshold.reached(&event.kind, event.semver_diff.as_deref()) {
                    continue;
                }
                let key = (
                    trigger.name.clone(),
                    event.container_id.clone(),
                    result_key(&event),
                );
                if trigger.options.once {
                    match self.store.was_notified(&key.0, &key.1, &key.2).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(trigger = %trigger.name, %error, "cannot read delivery history; delivering");
                        }
                    }
                }
                let newly_pending = self
                    .pending
                    .lock()
                    .map(|mut pending| pending.insert(key.clone()))
                    .unwrap_or(true);
                if newly_pending {
                    events.push((key, event));
                }
            }
            if events.is_empty() {
                continue;
            }
            let batches: Vec<Vec<(PendingKey, UpdateEvent)>> = match trigger.options.mode {
                Mode::Simple => events.into_iter().map(|event| vec![event]).collect(),
                Mode::Batch => vec![events],
            };
            for batch in batches {
                let delivery = self.delivery(trigger);
                self.tasks.spawn(async move {
                    let _ = delivery.run(batch).await;
                });
            }
        }
    }

    /// A delivery through `trigger` sharing this dispatcher's store, metrics,
    /// pending set and cancellation.
    fn delivery(&self, trigger: &Arc<ConfiguredTrigger>) -> Delivery {
        Delivery {
            trigger: Arc::clone(trigger),
            store: self.store.clone(),
            metrics: Arc::clone(&self.metrics),
            pending: Arc::clone(&self.pending),
            cancel: self.cancel.clone(),
        }
    }

    /// Delivers `container`'s update through trigger `name` now (threshold,
    /// labels and `once` do not apply), with retries; returns when done.
    pub async fn run_now(
        &self,
        name: &str,
        container: &ContainerObject,
    ) -> Result<(), TriggerRunError> {
        let trigger = self
            .triggers
            .iter()
            .find(|trigger| trigger.name == name)
            .ok_or_else(|| TriggerRunError::UnknownTrigger(name.to_owned()))?;
        let event = update_event(container)
            .ok_or_else(|| TriggerRunError::NoUpdate(container.id.clone()))?;
        let key = (
            trigger.name.clone(),
            event.container_id.clone(),
            result_key(&event),
        );
        let delivery = self.delivery(trigger);
        delivery
            .run(vec![(key, event)])
            .await
            .map_err(|message| TriggerRunError::Delivery {
                trigger: name.to_owned(),
                message,
            })
    }

    /// Waits up to `grace` for background deliveries, then abandons the rest.
    pub async fn shutdown(&self, grace: Duration) {
        if !close_and_wait(&self.tasks, grace).await {
            tracing::warn!(
                "trigger deliveries still running at shutdown; abandoning their retries"
            );
            self.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        }
    }

    /// Waits until no delivery is under way (for tests and benchmarks).
    pub async fn idle(&self) {
        loop {
            let busy = self
                .pending
                .lock()
                .map(|pending| !pending.is_empty())
                .unwrap_or(false);
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

type PendingKey = (String, String, String);

/// Closes `tasks` to new work and waits up to `grace` for what runs to finish;
/// `false` when some task was still running at the deadline.
pub(crate) async fn close_and_wait(tasks: &TaskTracker, grace: Duration) -> bool {
    tasks.close();
    tokio::time::timeout(grace, tasks.wait()).await.is_ok()
}

/// One delivery (a single event or a batch) with its retries.
struct Delivery {
    trigger: Arc<ConfiguredTrigger>,
    store: Store,
    metrics: Arc<Metrics>,
    pending: Arc<Mutex<HashSet<PendingKey>>>,
    cancel: CancellationToken,
}

impl Delivery {
    async fn run(self, batch: Vec<(PendingKey, UpdateEvent)>) -> Result<(), String> {
        let result = self.attempt_all(&batch).await;
        if result.is_ok() {
            for (key, _) in &batch {
                if let Err(error) = self.store.mark_notified(&key.0, &key.1, &key.2).await {
                    tracing::warn!(trigger = %key.0, container = %key.1, %error, "cannot remember a delivery");
                }
            }
        }
        if let Ok(mut pending) = self.pending.lock() {
            for (key, _) in &batch {
                pending.remove(key);
            }
        }
        result
    }

    async fn attempt_all(&self, batch: &[(PendingKey, UpdateEvent)]) -> Result<(), String> {
        let trigger = &self.trigger;
        let events: Vec<UpdateEvent> = batch.iter().map(|(_, event)| event.clone()).collect();
        let mut backoff = trigger.options.retry_backoff;
        let mut attempt = 0;
        loop {
            let outcome = match trigger.options.mode {
                Mode::Batch => trigger.notifier.notify_batch(&events).await,
                Mode::Simple => {
                    let mut outcome = Ok(());
                    for event in &events {
                        outcome = trigger.notifier.notify(event).await;
                        if outcome.is_err() {
                            break;
                        }
                    }
                    outcome
                }
            };
            let error = match outcome {
                Ok(()) => {
                    self.metrics.record_delivery(&trigger.name, "success");
                    tracing::info!(trigger = %trigger.name, events = events.len(), "trigger delivered");
                    return Ok(());
                }
                Err(error) => error.to_string(),
            };
            if attempt >= trigger.options.retries {
                self.metrics.record_delivery(&trigger.name, "failure");
                tracing::warn!(trigger = %trigger.name, attempts = attempt + 1, %error, "trigger delivery failed; giving up");
                return Err(error);
            }
            self.metrics.record_delivery(&trigger.name, "retry");
            tracing::warn!(trigger = %trigger.name, attempt = attempt + 1, retry_in_ms = backoff.as_millis() as u64, %error, "trigger delivery failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.cancel.cancelled() => {
                    self.metrics.record_delivery(&trigger.name, "failure");
                    return Err(format!("abandoned at shutdown after: {error}"));
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_wud() {
        let reached = |threshold: Threshold, diff: &str| threshold.reached("tag", Some(diff));
        assert!(reached(Threshold::All, "major"));
        assert!(reached(Threshold::Major, "patch"));
        assert!(!reached(Threshold::Minor, "major"));
        assert!(reached(Threshold::Minor, "minor"));
        assert!(reached(Threshold::Minor, "patch"));
        assert!(!reached(Threshold::Patch, "minor"));
        assert!(reached(Threshold::Patch, "patch"));
        assert!(reached(Threshold::Patch, "prerelease"));
        assert!(reached(Threshold::MajorOnly, "major"));
        assert!(!reached(Threshold::MajorOnly, "minor"));
        assert!(reached(Threshold::MinorOnly, "minor"));
        assert!(!reached(Threshold::MinorOnly, "patch"));
        assert!(
            Threshold::MajorOnly.reached("digest", None),
            "digest updates pass every threshold"
        );
        assert!("bogus".parse::<Threshold>().is_err());
        assert_eq!("minor-only".parse::<Threshold>(), Ok(Threshold::MinorOnly));
    }

    fn instance(toml_text: &str) -> PluginInstanceConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn options_parse_and_name_the_bad_key() {
        let options = TriggerOptions::parse(
            "ops",
            &instance("plugin = \"webhook\"\nthreshold = \"minor\"\nmode = \"batch\"\nonce = false\nauto = false\nretries = 1\nretry_backoff_ms = 5\n"),
        )
        .unwrap();
        assert_eq!(options.threshold, Threshold::Minor);
        assert_eq!(options.mode, Mode::Batch);
        assert!(!options.once && !options.auto);
        assert_eq!(options.retries, 1);
        assert_eq!(options.retry_backoff, Duration::from_millis(5));
        let error =
            TriggerOptions::parse("ops", &instance("plugin = \"webhook\"\nmode = \"burst\"\n"))
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "trigger `ops`: key `triggers.ops.mode`: must be `simple` or `batch`"
        );
        assert!(
            TriggerOptions::parse("ops", &instance("plugin = \"webhook\"\nonce = \"yes\"\n"))
                .is_err()
        );
    }

    #[test]
    fn labels_include_exclude_and_override_threshold() {
        let options = |include: Option<&str>, exclude: Option<&str>| ContainerOptions {
            trigger_include: include.map(str::to_owned),
            trigger_exclude: exclude.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(
            label_verdict(&options(None, None), "ops", "webhook"),
            LabelVerdict::Allowed(None)
        );
        assert_eq!(
            label_verdict(&options(None, Some("ops")), "ops", "webhook"),
            LabelVerdict::Excluded
        );
        assert_eq!(
            label_verdict(&options(Some("other"), None), "ops", "webhook"),
            LabelVerdict::Excluded
        );
        assert_eq!(
            label_verdict(
                &options(Some("other, webhook.ops:major-only"), None),
                "ops",
                "webhook"
            ),
            LabelVerdict::Allowed(Some(Threshold::MajorOnly))
        );
        assert_eq!(
            label_verdict(&options(Some("ops"), Some("webhook.ops")), "ops", "webhook"),
            LabelVerdict::Excluded,
            "exclude wins"
        );
    }
}
