//! Triggers (`trigger` world, cargo feature `trigger`): deliver update events.
//!
//! Implement [`Trigger`] and export it with [`export_trigger!`](crate::export_trigger). Triggers may
//! use [`crate::http`] and [`crate::log`].

use std::marker::PhantomData;

use crate::instance::{not_configured_message, InstanceSlot};
use crate::{PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_trigger as bindings;

pub use bindings::exports::crowsnest::plugin::notifier::UpdateEvent;

use bindings::crowsnest::plugin::types as wit_types;
use bindings::exports::crowsnest::plugin::{meta, notifier};

crate::info::impl_world_conversions!(crate::trigger::bindings::crowsnest::plugin::types, Trigger);

/// A trigger: delivers update events somewhere.
pub trait Trigger: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, crate::ConfigError>;

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

thread_local! {
    static INSTANCE: InstanceSlot = const { InstanceSlot::new() };
}

fn with_instance<T: Trigger>(
    call: &str,
    body: impl FnOnce(&T) -> Result<(), String>,
) -> Result<(), String> {
    match INSTANCE.with(|slot| slot.get::<T>()) {
        Some(instance) => body(&instance),
        None => Err(not_configured_message(&T::describe().name, call)),
    }
}

impl<T: Trigger> meta::Guest for TriggerExport<T> {
    fn describe() -> wit_types::PluginInfo {
        plugin_info_to_wit(T::describe())
    }

    fn configure(settings: Vec<wit_types::Setting>) -> Result<(), wit_types::ConfigError> {
        INSTANCE.with(InstanceSlot::clear);
        let info = T::describe();
        let settings = Settings::new(settings_from_wit(settings), &info.config_keys)
            .map_err(config_error_to_wit)?;
        let instance = T::configure(&settings).map_err(config_error_to_wit)?;
        INSTANCE.with(|slot| slot.install(instance));
        Ok(())
    }
}

impl<T: Trigger> notifier::Guest for TriggerExport<T> {
    fn notify(event: UpdateEvent) -> Result<(), String> {
        with_instance::<T>("notify", |instance| instance.notify(&event))
    }

    fn notify_batch(events: Vec<UpdateEvent>) -> Result<(), String> {
        with_instance::<T>("notify-batch", |instance| instance.notify_batch(&events))
    }
}

/// Exports a [`Trigger`] implementation as this component's `trigger` world.
/// Use once per plugin crate.
#[macro_export]
macro_rules! export_trigger {
    ($trigger:ty) => {
        // Exports exist only in wasm: native builds (unit tests, clippy) cannot
        // link symbol names such as `crowsnest:plugin/meta@0.1.0#describe`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __CrowsnestTriggerExport = $crate::trigger::TriggerExport<$trigger>;
        #[cfg(target_arch = "wasm32")]
        $crate::trigger::bindings::export_world!(
            __CrowsnestTriggerExport with_types_in $crate::trigger::bindings
        );
    };
}
