//! One delivery (a single event or a batch) with its retries: backoff
//! doubling up to a ceiling, abandoned at shutdown, remembered when done.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crowsnest_config::Mode;
use crowsnest_plugin_host::trigger::UpdateEvent;
use crowsnest_store::Store;

use super::ConfiguredTrigger;
use crate::metrics::Metrics;

/// Longest wait between two delivery attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// (trigger, container, result key) of one event under way.
pub(crate) type PendingKey = (String, String, String);

/// Closes `tasks` to new work and waits up to `grace` for what runs to finish;
/// `false` when some task was still running at the deadline.
pub async fn close_and_wait(tasks: &TaskTracker, grace: Duration) -> bool {
    tasks.close();
    tokio::time::timeout(grace, tasks.wait()).await.is_ok()
}

/// One delivery (a single event or a batch) with its retries.
pub(crate) struct Delivery {
    pub trigger: Arc<ConfiguredTrigger>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub pending: Arc<Mutex<HashSet<PendingKey>>>,
    pub cancel: CancellationToken,
}

impl Delivery {
    pub async fn run(self, batch: Vec<(PendingKey, UpdateEvent)>) -> Result<(), String> {
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
