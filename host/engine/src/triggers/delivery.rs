//! One delivery (a single event or a batch) with its retries: backoff
//! doubling up to a ceiling, or the wait the service asked for when longer;
//! no retry of a failure the plugin calls final; abandoned at shutdown;
//! remembered when done. Every error is scrubbed of the trigger's secrets
//! before it is logged or returned.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crowsnest_config::Mode;
use crowsnest_plugin_host::trigger::{DeliveryError, Message, UpdateEvent};
use crowsnest_store::Store;

use super::ConfiguredTrigger;
use crate::events::{EventBus, EventKind};
use crate::metrics::Metrics;

/// Longest backoff between two delivery attempts (a service's own
/// `retry-after` may ask for longer, up to the plugin host's cap).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// (trigger, container, result key) of one event under way.
pub(crate) type PendingKey = (String, String, String);

/// Closes `tasks` to new work and waits up to `grace` for what runs to finish;
/// `false` when some task was still running at the deadline.
pub async fn close_and_wait(tasks: &TaskTracker, grace: Duration) -> bool {
    tasks.close();
    tokio::time::timeout(grace, tasks.wait()).await.is_ok()
}

/// How a delivery ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Attempts made (1 when the first succeeded).
    pub attempts: u32,
    /// The last error, scrubbed of secrets, when every attempt failed.
    pub result: Result<(), String>,
}

/// One delivery (a single event or a batch) with its retries.
pub(crate) struct Delivery {
    pub trigger: Arc<ConfiguredTrigger>,
    /// Where delivered results are remembered (`None`: a sample, not remembered).
    pub store: Option<Store>,
    pub metrics: Arc<Metrics>,
    /// Where the delivery's outcome is published.
    pub events: Arc<EventBus>,
    pub pending: Arc<Mutex<HashSet<PendingKey>>>,
    pub cancel: CancellationToken,
}

impl Delivery {
    /// Delivers `message` about `batch`, retrying as configured.
    pub async fn run(self, message: &Message, batch: Vec<(PendingKey, UpdateEvent)>) -> Outcome {
        let outcome = self.attempt_all(message, &batch).await;
        self.publish(&outcome, &batch);
        if let (Ok(()), Some(store)) = (&outcome.result, &self.store) {
            for (key, _) in &batch {
                if let Err(error) = store.mark_notified(&key.0, &key.1, &key.2).await {
                    tracing::warn!(trigger = %key.0, container = %key.1, %error, "cannot remember a delivery");
                }
            }
        }
        if let Ok(mut pending) = self.pending.lock() {
            for (key, _) in &batch {
                pending.remove(key);
            }
        }
        outcome
    }

    fn publish(&self, outcome: &Outcome, batch: &[(PendingKey, UpdateEvent)]) {
        let containers: Vec<&str> = batch.iter().map(|(key, _)| key.1.as_str()).collect();
        let (kind, error) = match &outcome.result {
            Ok(()) => (EventKind::TriggerDelivered, None),
            Err(error) => (EventKind::TriggerFailed, Some(error.as_str())),
        };
        self.events.publish(
            kind,
            serde_json::json!({
                "trigger": self.trigger.name,
                "containers": containers,
                "attempts": outcome.attempts,
                "error": error,
            }),
        );
    }

    /// Gives up on `batch` without an attempt: its message could not be rendered.
    pub fn abandon(self, error: &str, batch: Vec<(PendingKey, UpdateEvent)>) {
        let error = self.trigger.scrub(error);
        self.metrics.record_delivery(&self.trigger.name, "failure");
        tracing::warn!(trigger = %self.trigger.name, %error, "trigger message could not be rendered; not delivered");
        let outcome = Outcome {
            attempts: 0,
            result: Err(error.clone()),
        };
        self.publish(&outcome, &batch);
        if let Ok(mut pending) = self.pending.lock() {
            for (key, _) in &batch {
                pending.remove(key);
            }
        }
    }

    async fn attempt(
        &self,
        message: &Message,
        events: &[UpdateEvent],
    ) -> Result<(), DeliveryError> {
        let notifier = &self.trigger.notifier;
        match self.trigger.options.mode {
            Mode::Batch => notifier.notify_batch(message, events).await,
            Mode::Simple => {
                for event in events {
                    notifier.notify(message, event).await?;
                }
                Ok(())
            }
        }
    }

    async fn attempt_all(&self, message: &Message, batch: &[(PendingKey, UpdateEvent)]) -> Outcome {
        let trigger = &self.trigger;
        let events: Vec<UpdateEvent> = batch.iter().map(|(_, event)| event.clone()).collect();
        let mut backoff = trigger.options.retry_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(message, &events).await {
                Ok(()) => {
                    self.metrics.record_delivery(&trigger.name, "success");
                    tracing::info!(trigger = %trigger.name, events = events.len(), attempts, "trigger delivered");
                    return Outcome {
                        attempts,
                        result: Ok(()),
                    };
                }
                Err(failure) => failure,
            };
            let error = trigger.scrub(&failure.to_string());
            let give_up = |reason: &str| {
                self.metrics.record_delivery(&trigger.name, "failure");
                tracing::warn!(trigger = %trigger.name, attempts, %error, "trigger delivery failed; {reason}");
                Outcome {
                    attempts,
                    result: Err(error.clone()),
                }
            };
            if !failure.retryable() {
                return give_up("the service refused it for good, not retrying");
            }
            if attempts > trigger.options.retries {
                return give_up("giving up");
            }
            // The service's own answer wins when it asks for a longer wait.
            let wait = failure
                .retry_after()
                .map_or(backoff, |asked| asked.max(backoff));
            self.metrics.record_delivery(&trigger.name, "retry");
            tracing::warn!(
                trigger = %trigger.name,
                attempt = attempts,
                retry_in_ms = wait.as_millis() as u64,
                rate_limited = failure.retry_after().is_some(),
                %error,
                "trigger delivery failed; retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.cancel.cancelled() => {
                    self.metrics.record_delivery(&trigger.name, "failure");
                    return Outcome {
                        attempts,
                        result: Err(format!("abandoned at shutdown after: {error}")),
                    };
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
