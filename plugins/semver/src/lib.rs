//! `semver`: the default version strategy. Same-shape tags (prefix, part
//! count, separator, suffix) compared part by part; see `versioning::semver`.

use crowsnest_plugin_sdk::strategy::{Decision, OptionError, Options, VersionStrategy};
use crowsnest_plugin_sdk::{ConfigError, PluginInfo, Settings};

/// The semver strategy; it takes no settings.
pub struct Semver;

impl VersionStrategy for Semver {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "semver",
            env!("CARGO_PKG_VERSION"),
            "Versions of the same shape as the current tag, compared part by part",
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
        crowsnest_strategy_glue::run(versioning::semver::choose, current, candidates, options)
    }
}

crowsnest_plugin_sdk::export_strategy!(Semver);
