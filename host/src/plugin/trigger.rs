//! Trigger plugin instances.

use std::sync::Arc;

use super::bindings::trigger::Trigger;
use super::component::{PluginComponent, WorldPre};
use super::pool::{guest_call, InstancePool};
use super::sandbox::{NetworkGrant, SandboxLimits};
use super::{PluginError, PluginKind};
use crate::registry::HostAllowList;

pub use super::bindings::trigger::exports::crowsnest::plugin::notifier::UpdateEvent;

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
    /// Instantiate and configure `component` for one `[triggers.NAME]` entry.
    pub async fn new(
        component: &PluginComponent,
        instance: &str,
        settings: Vec<(String, String)>,
        allow: Arc<HostAllowList>,
        http: reqwest::Client,
        limits: SandboxLimits,
    ) -> Result<Self, PluginError> {
        let WorldPre::Trigger(pre) = &component.pre else {
            return Err(PluginError::Unknown {
                name: component.info.name.clone(),
                kind: PluginKind::Trigger,
            });
        };
        let label: Arc<str> = Arc::from(format!("{} (trigger {instance})", component.info.name));
        let network = NetworkGrant {
            allow,
            http,
            oci: None,
        };
        let pool = InstancePool::new(
            pre.clone(),
            label,
            super::registry::to_wit_settings(settings),
            limits,
            Some(network),
            2,
        )
        .await?;
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
