//! `regex`: the user's pattern (named groups `major`, `minor`, `patch`,
//! `build`, `compat`) says where the numbers are; see `versioning::regex`.
//! The pattern comes from the `regex` option of the container (label), else
//! from this instance's `regex` setting.

use std::borrow::Cow;

use crowsnest_plugin_sdk::strategy::{
    extra_option, Decision, OptionError, Options, VersionStrategy,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};
use versioning::regex::REGEX_OPTION;

/// The regex strategy with its default pattern, if configured.
pub struct RegexStrategy {
    default_pattern: Option<String>,
}

impl VersionStrategy for RegexStrategy {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "regex",
            env!("CARGO_PKG_VERSION"),
            "Versions read through a pattern with named groups major, minor, patch, build, compat",
        )
        .key(ConfigKey::optional(
            REGEX_OPTION,
            "Default pattern when a container gives none, e.g. ^(?P<major>\\d+)\\.(?P<minor>\\d+)$",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let default_pattern = settings.get(REGEX_OPTION).map(str::to_string);
        if let Some(pattern) = &default_pattern {
            // Reject a broken default now rather than on every container.
            let probe = versioning::Options {
                extra: vec![(REGEX_OPTION.to_string(), pattern.clone())],
                ..versioning::Options::default()
            };
            versioning::regex::choose("", &[], &probe)
                .map_err(|err| ConfigError::key(REGEX_OPTION, err.message))?;
        }
        Ok(Self { default_pattern })
    }

    fn choose(
        &self,
        current: &str,
        candidates: &[String],
        options: &Options,
    ) -> Result<Decision, OptionError> {
        let options = match (&self.default_pattern, extra_option(options, REGEX_OPTION)) {
            (Some(pattern), None) => {
                let mut with_default = options.clone();
                with_default
                    .extra
                    .push((REGEX_OPTION.to_string(), pattern.clone()));
                Cow::Owned(with_default)
            }
            _ => Cow::Borrowed(options),
        };
        crowsnest_strategy_glue::run(versioning::regex::choose, current, candidates, &options)
    }
}

crowsnest_plugin_sdk::export_strategy!(RegexStrategy);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::strategy::configure_from;

    fn configured(pattern: Option<&str>) -> Result<RegexStrategy, ConfigError> {
        configure_from(pattern.map(|pattern| (REGEX_OPTION, pattern)))
    }

    fn no_options() -> Options {
        Options {
            include: None,
            exclude: None,
            transform: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn configured_pattern_is_the_default() {
        let strategy = configured(Some(r"^v(?P<major>\d+)\.(?P<minor>\d+)$")).unwrap();
        let candidates = vec![
            "v1.2".to_string(),
            "v1.10".to_string(),
            "latest".to_string(),
        ];
        let decision = strategy.choose("v1.2", &candidates, &no_options()).unwrap();
        assert_eq!(
            decision.offer.map(|offer| offer.tag).as_deref(),
            Some("v1.10")
        );
    }

    #[test]
    fn broken_default_pattern_is_a_config_error() {
        let err = configured(Some("(")).err().unwrap();
        assert_eq!(err.key.as_deref(), Some(REGEX_OPTION));
    }
}
