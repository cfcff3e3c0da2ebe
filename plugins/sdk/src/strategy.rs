//! Version strategies (`version-strategy` world, cargo feature `strategy`).
//!
//! A strategy is a pure function with no imports: implement
//! [`VersionStrategy`] and export it with [`export_strategy!`](crate::export_strategy).

use std::marker::PhantomData;

use crate::{ConfigError, PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_strategy as bindings;

pub use bindings::exports::crowsnest::plugin::strategy::{
    Decision, Offer, OptionError, Options, UpdateKind,
};

use bindings::exports::crowsnest::plugin::strategy;

crate::world::impl_world_glue!(
    types: crate::strategy::bindings::crowsnest::plugin::types,
    meta_guest: bindings::exports::crowsnest::plugin::meta::Guest,
    kind: VersionStrategy,
    plugin: VersionStrategy,
    export: StrategyExport,
);

/// A version strategy: picks the update for a container among the
/// repository's tags.
pub trait VersionStrategy: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, ConfigError>;

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

impl<T: VersionStrategy> strategy::Guest for StrategyExport<T> {
    fn choose(
        current: String,
        candidates: Vec<String>,
        options: Options,
    ) -> Result<Decision, OptionError> {
        with_instance::<T, _>("choose", |instance| {
            instance.choose(&current, &candidates, &options)
        })
        .map_err(|message| OptionError {
            option: "configure".to_string(),
            message,
        })?
    }
}

/// Exports a [`VersionStrategy`] implementation as this component's
/// `version-strategy` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        $crate::__export_world!(strategy, StrategyExport, $strategy);
    };
}
