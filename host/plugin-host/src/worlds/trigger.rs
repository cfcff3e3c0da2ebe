//! Trigger plugin instances.

use std::sync::Arc;

use crate::bindings::trigger::Trigger;
use crate::component::{PluginComponent, WorldPre};
use crate::pool::{guest_call, InstancePool, InstanceSpec};
use crate::{PluginError, PluginKind};

pub use crate::bindings::trigger::exports::crowsnest::plugin::notifier::UpdateEvent;

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The plugin reports the delivery failed (e.g. the receiver answered 500).
    #[error("delivery failed: {0}")]
    Failed(String),
    /// The plugin itself failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A configured trigger plugin instance (e.g. `[triggers.ops]`).
pub struct TriggerPlugin {
    plugin: String,
    instance: String,
    pool: InstancePool<Trigger>,
}

impl TriggerPlugin {
    /// Instantiate and configure `component` for the trigger instance
    /// `instance` (e.g. `ops` from `[triggers.ops]`).
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
        let pool = InstancePool::new(pre.clone(), label, spec).await?;
        Ok(Self {
            plugin: component.info.name.clone(),
            instance: instance.to_string(),
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

    /// Deliver one event.
    pub async fn notify(&self, event: &UpdateEvent) -> Result<(), DeliveryError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_notifier().call_notify(store, event))?
            .map_err(|message| DeliveryError::Failed(message.chars().take(1024).collect()))
    }

    /// Deliver several events at once.
    pub async fn notify_batch(&self, events: &[UpdateEvent]) -> Result<(), DeliveryError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_notifier().call_notify_batch(store, events))?
            .map_err(|message| DeliveryError::Failed(message.chars().take(1024).collect()))
    }
}
