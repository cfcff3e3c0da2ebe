//! The configured triggers and when each fires: after scans (`auto`), through
//! the API, by threshold, labels and `once`; deliveries run in the background.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crowsnest_config::Mode;
use crowsnest_docker::ContainerOptions;
use crowsnest_model::ContainerObject;
use crowsnest_plugin_host::trigger::{Message, UpdateEvent};
use crowsnest_store::Store;

use super::delivery::{close_and_wait, Delivery, PendingKey};
use super::{
    label_verdict, result_key, update_event, ConfiguredTrigger, LabelVerdict, TriggerSummary,
};
use crate::events::EventBus;
use crate::metrics::Metrics;

/// The events of one delivery, each with its pending key.
type Batch = Vec<(PendingKey, UpdateEvent)>;

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
    events: Arc<EventBus>,
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
            events: Arc::default(),
            pending: Arc::default(),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// The bus deliveries are published on (shared with the coordinator).
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Instantiates every `[triggers.NAME]` of `config` from `catalog`.
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
            let mut chosen = Vec::new();
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
                    chosen.push(container.clone());
                }
            }
            if events.is_empty() {
                continue;
            }
            let deliveries: Vec<(Result<Message, String>, Batch)> = match trigger.options.mode {
                Mode::Simple => events
                    .into_iter()
                    .zip(&chosen)
                    .map(|(event, container)| {
                        (
                            trigger.templates.simple(&trigger.name, container),
                            vec![event],
                        )
                    })
                    .collect(),
                Mode::Batch => vec![(trigger.templates.batch(&trigger.name, &chosen), events)],
            };
            for (message, batch) in deliveries {
                let delivery = self.delivery(trigger, true);
                self.tasks.spawn(async move {
                    match message {
                        Ok(message) => {
                            delivery.run(&message, batch).await;
                        }
                        Err(error) => delivery.abandon(&error, batch),
                    }
                });
            }
        }
    }

    /// A delivery through `trigger` sharing this dispatcher's metrics,
    /// pending set and cancellation, and its store when the delivered
    /// results are to be `remembered`.
    pub(super) fn delivery(&self, trigger: &Arc<ConfiguredTrigger>, remembered: bool) -> Delivery {
        Delivery {
            trigger: Arc::clone(trigger),
            store: remembered.then(|| self.store.clone()),
            metrics: Arc::clone(&self.metrics),
            events: Arc::clone(&self.events),
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
        let trigger = self.trigger(name)?;
        let event = update_event(container)
            .ok_or_else(|| TriggerRunError::NoUpdate(container.id.clone()))?;
        let key = (
            trigger.name.clone(),
            event.container_id.clone(),
            result_key(&event),
        );
        let failed = |message: String| TriggerRunError::Delivery {
            trigger: name.to_owned(),
            message,
        };
        let message = match trigger.options.mode {
            Mode::Simple => trigger.templates.simple(&trigger.name, container),
            Mode::Batch => trigger
                .templates
                .batch(&trigger.name, std::slice::from_ref(container)),
        }
        .map_err(failed)?;
        self.delivery(trigger, true)
            .run(&message, vec![(key, event)])
            .await
            .result
            .map_err(failed)
    }

    /// The configured trigger `name`.
    pub(super) fn trigger(&self, name: &str) -> Result<&Arc<ConfiguredTrigger>, TriggerRunError> {
        self.triggers
            .iter()
            .find(|trigger| trigger.name == name)
            .ok_or_else(|| TriggerRunError::UnknownTrigger(name.to_owned()))
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
