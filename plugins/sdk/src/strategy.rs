//! Version strategies (`version-strategy` world, cargo feature `strategy`).
//!
//! A strategy is a pure function with no imports: implement
//! [`VersionStrategy`] and export it with [`export_strategy!`](crate::export_strategy).

use std::marker::PhantomData;

use crate::instance::{not_configured_message, InstanceSlot};
use crate::{PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_strategy as bindings;

pub use bindings::exports::crowsnest::plugin::strategy::{
    Decision, Offer, OptionError, Options, UpdateKind,
};

use bindings::crowsnest::plugin::types as wit_types;
use bindings::exports::crowsnest::plugin::{meta, strategy};

crate::info::impl_world_conversions!(
    crate::strategy::bindings::crowsnest::plugin::types,
    VersionStrategy
);

/// A version strategy: picks the update for a container among the
/// repository's tags.
pub trait VersionStrategy: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, crate::ConfigError>;

    /// Chooses the update for `current` among `candidates` (registry order).
    fn choose(
        &self,
        current: &str,
        candidates: &[String],
        options: &Options,
    ) -> Result<Decision, OptionError>;
}

/// The value of the strategy-specific option `key` in `options.extra`.
pub fn extra_option<'a>(options: &'a Options, key: &str) -> Option<&'a str> {
    options
        .extra
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

/// Adapts a [`VersionStrategy`] to the generated export traits.
#[doc(hidden)]
pub struct StrategyExport<T>(PhantomData<T>);

thread_local! {
    static INSTANCE: InstanceSlot = const { InstanceSlot::new() };
}

impl<T: VersionStrategy> meta::Guest for StrategyExport<T> {
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

impl<T: VersionStrategy> strategy::Guest for StrategyExport<T> {
    fn choose(
        current: String,
        candidates: Vec<String>,
        options: Options,
    ) -> Result<Decision, OptionError> {
        match INSTANCE.with(|slot| slot.get::<T>()) {
            Some(instance) => instance.choose(&current, &candidates, &options),
            None => Err(OptionError {
                option: "configure".to_string(),
                message: not_configured_message(&T::describe().name, "choose"),
            }),
        }
    }
}

/// Exports a [`VersionStrategy`] implementation as this component's
/// `version-strategy` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        // Exports exist only in wasm: native builds (unit tests, clippy) cannot
        // link symbol names such as `crowsnest:plugin/meta@0.1.0#describe`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __CrowsnestStrategyExport = $crate::strategy::StrategyExport<$strategy>;
        #[cfg(target_arch = "wasm32")]
        $crate::strategy::bindings::export_world!(
            __CrowsnestStrategyExport with_types_in $crate::strategy::bindings
        );
    };
}
