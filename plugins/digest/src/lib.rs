//! `digest`: never offers another tag; watches the current tag's digest.

use crowsnest_plugin_sdk::strategy::{Decision, OptionError, Options, VersionStrategy};
use crowsnest_plugin_sdk::{ConfigError, PluginInfo, Settings};

/// The digest strategy; it takes no settings.
pub struct DigestOnly;

impl VersionStrategy for DigestOnly {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "digest",
            env!("CARGO_PKG_VERSION"),
            "Watches the digest of the current tag only",
        )
    }

    fn configure(_settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    fn choose(
        &self,
        current: &str,
        candidates: &[String],
        options: &Options,
    ) -> Result<Decision, OptionError> {
        crowsnest_strategy_glue::run(versioning::digest::choose, current, candidates, options)
    }
}

crowsnest_plugin_sdk::export_strategy!(DigestOnly);
