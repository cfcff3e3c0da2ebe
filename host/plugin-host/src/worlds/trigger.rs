//! Trigger plugin instances: the markup their messages are in, and
//! deliveries whose failures say whether and when to try again.

use std::sync::Arc;
use std::time::Duration;

use crate::bindings::trigger::exports::crowsnest::plugin::notifier;
use crate::bindings::trigger::Trigger;
use crate::component::{PluginComponent, WorldPre};
use crate::pool::{guest_call, InstancePool, InstanceSpec};
use crate::{PluginError, PluginKind};

pub use notifier::{Message, TextFormat, UpdateEvent};

/// Longest error message kept from a guest.
const MAX_ERROR_CHARS: usize = 1024;

/// Longest wait a service's rate-limit answer is taken at its word for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The plugin reports the delivery failed (e.g. the service answered 500).
    #[error("delivery failed: {message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// How long the service asked to wait before the next attempt (capped).
        retry_after: Option<Duration>,
        /// Whether another attempt can succeed.
        retryable: bool,
    },
    /// The plugin itself failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl DeliveryError {
    /// A failure another attempt may cure, with no wait asked for.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            retry_after: None,
            retryable: true,
        }
    }

    /// How long the service asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Failed { retry_after, .. } => *retry_after,
            Self::Plugin(_) => None,
        }
    }

    /// Whether another attempt can succeed (a plugin failure may be transient).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Failed { retryable, .. } => *retryable,
            Self::Plugin(_) => true,
        }
    }

    fn from_wit(error: notifier::DeliveryError) -> Self {
        Self::Failed {
            message: error.message.chars().take(MAX_ERROR_CHARS).collect(),
            retry_after: error
                .retry_after_ms
                .map(|ms| Duration::from_millis(ms).min(MAX_RETRY_AFTER)),
            retryable: error.retryable,
        }
    }
}

/// A configured trigger plugin instance (e.g. `[triggers.ops]`).
pub struct TriggerPlugin {
    plugin: String,
    instance: String,
    format: TextFormat,
    pool: InstancePool<Trigger>,
}

impl TriggerPlugin {
    /// Instantiate and configure `component` for the trigger instance
    /// `instance` (e.g. `ops` from `[triggers.ops]`), and ask it the markup
    /// of its messages.
    pub async fn new(
        component: &PluginComponent,
        instance: &str,
        spec: InstanceSpec,
    ) -> Result<Self, PluginError> {
        let WorldPre::Trigger(pre) = &component.pre else {
            return Err(PluginError::Unknown {
                name: component.info.name.clone(),
                kind: PluginKind::Trigger,
            });
        };
        let label: Arc<str> = Arc::from(format!("{} (trigger {instance})", component.info.name));
        let pool: InstancePool<Trigger> = InstancePool::new(pre.clone(), label, spec).await?;
        let format = guest_call!(pool: &pool, |bindings, store| bindings
            .crowsnest_plugin_notifier()
            .call_message_format(store))?;
        Ok(Self {
            plugin: component.info.name.clone(),
            instance: instance.to_string(),
            format,
            pool,
        })
    }

    /// The plugin's name (e.g. `webhook`).
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The instance name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The markup of this instance's messages.
    pub fn format(&self) -> TextFormat {
        self.format
    }

    /// Deliver one event with its rendered message.
    pub async fn notify(
        &self,
        message: &Message,
        event: &UpdateEvent,
    ) -> Result<(), DeliveryError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_notifier().call_notify(store, message, event))?
            .map_err(DeliveryError::from_wit)
    }

    /// Deliver several events at once with the batch's rendered message.
    pub async fn notify_batch(
        &self,
        message: &Message,
        events: &[UpdateEvent],
    ) -> Result<(), DeliveryError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_notifier().call_notify_batch(store, message, events))?
            .map_err(DeliveryError::from_wit)
    }
}
