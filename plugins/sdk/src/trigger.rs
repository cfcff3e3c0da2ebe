//! Triggers (`trigger` world, cargo feature `trigger`): deliver update events.
//!
//! Implement [`Trigger`] and export it with [`export_trigger!`](crate::export_trigger). Triggers may
//! use [`crate::http`] and [`crate::log`].

use std::marker::PhantomData;

use crate::{ConfigError, PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_trigger as bindings;

pub use bindings::exports::crowsnest::plugin::notifier::UpdateEvent;

use bindings::exports::crowsnest::plugin::notifier;

crate::world::impl_world_glue!(
    types: crate::trigger::bindings::crowsnest::plugin::types,
    meta_guest: bindings::exports::crowsnest::plugin::meta::Guest,
    kind: Trigger,
    plugin: Trigger,
    export: TriggerExport,
);

/// A trigger: delivers update events somewhere.
pub trait Trigger: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, ConfigError>;

    /// Delivers one event.
    fn notify(&self, event: &UpdateEvent) -> Result<(), String>;

    /// Delivers several events (batch mode); one by one unless overridden.
    fn notify_batch(&self, events: &[UpdateEvent]) -> Result<(), String> {
        events.iter().try_for_each(|event| self.notify(event))
    }
}

/// An event as a JSON object with camelCase keys (the HTTP API's style).
pub fn event_to_json(event: &UpdateEvent) -> serde_json::Value {
    serde_json::json!({
        "containerId": event.container_id,
        "containerName": event.container_name,
        "watcher": event.watcher,
        "image": event.image,
        "kind": event.kind,
        "semverDiff": event.semver_diff,
        "localValue": event.local_value,
        "remoteValue": event.remote_value,
        "link": event.link,
    })
}

/// Adapts a [`Trigger`] to the generated export traits.
#[doc(hidden)]
pub struct TriggerExport<T>(PhantomData<T>);

impl<T: Trigger> notifier::Guest for TriggerExport<T> {
    fn notify(event: UpdateEvent) -> Result<(), String> {
        with_instance::<T, _>("notify", |instance| instance.notify(&event))?
    }

    fn notify_batch(events: Vec<UpdateEvent>) -> Result<(), String> {
        with_instance::<T, _>("notify-batch", |instance| instance.notify_batch(&events))?
    }
}

/// Exports a [`Trigger`] implementation as this component's `trigger` world.
/// Use once per plugin crate.
#[macro_export]
macro_rules! export_trigger {
    ($trigger:ty) => {
        $crate::__export_world!(trigger, TriggerExport, $trigger);
    };
}
