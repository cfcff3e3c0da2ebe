//! Glue shared by the built-in strategy plugins (`semver`, `regex`, `digest`):
//! converts between the WIT types of the `version-strategy` world and the
//! pure `versioning` crate, which holds all of the actual logic.

use crowsnest_plugin_sdk::strategy::{Decision, Offer, OptionError, Options, UpdateKind};

/// The SDK, for [`settingless_strategy!`]'s expansion in plugin crates.
#[doc(hidden)]
pub use crowsnest_plugin_sdk as sdk;

/// The signature shared by `versioning::{semver,regex,digest}::choose`.
pub type ChooseFn = fn(
    &str,
    &[String],
    &versioning::Options,
) -> Result<versioning::Decision, versioning::OptionError>;

/// Runs `choose` on WIT-typed arguments and converts the verdict back.
pub fn run(
    choose: ChooseFn,
    current: &str,
    candidates: &[String],
    options: &Options,
) -> Result<Decision, OptionError> {
    choose(current, candidates, &options_from_wit(options))
        .map(decision_to_wit)
        .map_err(|err| OptionError {
            option: err.option,
            message: err.message,
        })
}

/// Implements `VersionStrategy` for the unit struct `$strategy`: a built-in
/// strategy that takes no settings and whose whole logic is one `versioning`
/// choose function, run through [`run`]. Its version is the plugin crate's.
#[macro_export]
macro_rules! settingless_strategy {
    (
        $strategy:ident,
        name: $name:literal,
        description: $description:literal,
        choose: $choose:path $(,)?
    ) => {
        impl $crate::sdk::strategy::VersionStrategy for $strategy {
            fn describe() -> $crate::sdk::PluginInfo {
                $crate::sdk::PluginInfo::new($name, env!("CARGO_PKG_VERSION"), $description)
            }

            fn configure(
                _settings: &$crate::sdk::Settings,
            ) -> Result<Self, $crate::sdk::ConfigError> {
                Ok(Self)
            }

            fn choose(
                &self,
                current: &str,
                candidates: &[String],
                options: &$crate::sdk::strategy::Options,
            ) -> Result<$crate::sdk::strategy::Decision, $crate::sdk::strategy::OptionError> {
                $crate::run($choose, current, candidates, options)
            }
        }
    };
}

/// WIT options as the versioning crate's options.
pub fn options_from_wit(options: &Options) -> versioning::Options {
    versioning::Options {
        include: options.include.clone(),
        exclude: options.exclude.clone(),
        transform: options.transform.clone(),
        extra: options.extra.clone(),
    }
}

fn decision_to_wit(decision: versioning::Decision) -> Decision {
    Decision {
        version_tag: decision.version_tag,
        watch_digest: decision.watch_digest,
        offer: decision.offer.map(|offer| Offer {
            tag: offer.tag,
            kind: kind_to_wit(offer.kind),
        }),
    }
}

fn kind_to_wit(kind: versioning::UpdateKind) -> UpdateKind {
    match kind {
        versioning::UpdateKind::Major => UpdateKind::Major,
        versioning::UpdateKind::Minor => UpdateKind::Minor,
        versioning::UpdateKind::Patch => UpdateKind::Patch,
        versioning::UpdateKind::Prerelease => UpdateKind::Prerelease,
        versioning::UpdateKind::Digest => UpdateKind::Digest,
        versioning::UpdateKind::Unknown => UpdateKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_verdict_round_trips() {
        let candidates = vec![
            "1.25.3".to_string(),
            "1.26.0".to_string(),
            "2.0.0-rc1".to_string(),
        ];
        let decision = run(
            versioning::semver::choose,
            "1.25.3",
            &candidates,
            &Options {
                include: None,
                exclude: None,
                transform: None,
                extra: Vec::new(),
            },
        )
        .unwrap();
        assert!(decision.version_tag);
        assert_eq!(
            decision.offer,
            Some(Offer {
                tag: "1.26.0".to_string(),
                kind: UpdateKind::Minor
            })
        );
    }

    #[test]
    fn option_errors_keep_the_option_name() {
        let options = Options {
            include: Some("(".to_string()),
            exclude: None,
            transform: None,
            extra: Vec::new(),
        };
        let err = run(versioning::digest::choose, "latest", &[], &options).unwrap_err();
        assert_eq!(err.option, "include");
    }
}
