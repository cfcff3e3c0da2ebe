//! Version-strategy plugin instances.

use std::sync::Arc;

use crate::bindings::strategy::exports::crowsnest::plugin::strategy as wit;
use crate::bindings::strategy::VersionStrategy;
use crate::component::{PluginComponent, WorldPre};
use crate::pool::{guest_call, InstancePool, InstanceSpec};
use crate::state::Capabilities;
use crate::{PluginError, PluginKind};

/// Kind of an offered update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    /// First numeric part changed.
    Major,
    /// Second numeric part changed.
    Minor,
    /// Third or later numeric part changed.
    Patch,
    /// Only the pre-release changed.
    Prerelease,
    /// Same tag, new digest.
    Digest,
    /// The strategy cannot tell.
    Unknown,
}

impl UpdateKind {
    /// The lower-case name used in JSON and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Patch => "patch",
            Self::Prerelease => "prerelease",
            Self::Digest => "digest",
            Self::Unknown => "unknown",
        }
    }
}

/// Candidate filters and options for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrategyOptions {
    /// Candidates must match.
    pub include: Option<String>,
    /// Candidates must not match.
    pub exclude: Option<String>,
    /// `REGEX => TEMPLATE` rewrite before reading tags.
    pub transform: Option<String>,
    /// Strategy-specific options.
    pub extra: Vec<(String, String)>,
}

/// The offered tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Tag as published.
    pub tag: String,
    /// What kind of update it is.
    pub kind: UpdateKind,
}

/// A strategy's verdict for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The current tag reads as a version.
    pub version_tag: bool,
    /// Compare the remote digest of the current tag with the local one.
    pub watch_digest: bool,
    /// The update to offer.
    pub offer: Option<Offer>,
}

/// Why a strategy call produced no decision.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StrategyError {
    /// An option (label or config) is invalid.
    #[error("invalid `{option}`: {message}")]
    InvalidOption {
        /// `include`, `exclude`, `transform` or an extra key.
        option: String,
        /// Why.
        message: String,
    },
    /// The plugin itself failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A configured version-strategy plugin.
pub struct StrategyPlugin {
    name: String,
    pool: InstancePool<VersionStrategy>,
}

impl StrategyPlugin {
    /// Instantiate and configure `component`; `spec.capabilities` is
    /// ignored: strategies are pure functions and are lent nothing.
    pub async fn new(component: &PluginComponent, spec: InstanceSpec) -> Result<Self, PluginError> {
        let WorldPre::Strategy(pre) = &component.pre else {
            return Err(PluginError::Unknown {
                name: component.info.name.clone(),
                kind: PluginKind::VersionStrategy,
            });
        };
        let label: Arc<str> = Arc::from(component.info.name.as_str());
        let spec = InstanceSpec {
            capabilities: Capabilities::default(),
            ..spec
        };
        let pool = InstancePool::new(pre.clone(), label, spec).await?;
        Ok(Self {
            name: component.info.name.clone(),
            pool,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Choose the update for `current` among `candidates`.
    ///
    /// The answer is checked: an offered tag must be one of the candidates.
    pub async fn choose(
        &self,
        current: &str,
        candidates: &[String],
        options: &StrategyOptions,
    ) -> Result<Decision, StrategyError> {
        let opts = wit::Options {
            include: options.include.clone(),
            exclude: options.exclude.clone(),
            transform: options.transform.clone(),
            extra: options.extra.clone(),
        };
        let answer = guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_strategy().call_choose(store, current, candidates, &opts))?;
        let decision = answer.map_err(|err| StrategyError::InvalidOption {
            option: err.option,
            message: err.message,
        })?;
        let offer = match decision.offer {
            None => None,
            Some(offer) => {
                if !candidates.contains(&offer.tag) {
                    let shown: String = offer.tag.chars().take(64).collect();
                    return Err(PluginError::Malformed {
                        plugin: self.name.clone(),
                        reason: format!(
                            "offered tag `{shown}`{} ({} bytes) is not among the candidates",
                            if shown.len() < offer.tag.len() {
                                "…"
                            } else {
                                ""
                            },
                            offer.tag.len()
                        ),
                    }
                    .into());
                }
                Some(Offer {
                    tag: offer.tag,
                    kind: match offer.kind {
                        wit::UpdateKind::Major => UpdateKind::Major,
                        wit::UpdateKind::Minor => UpdateKind::Minor,
                        wit::UpdateKind::Patch => UpdateKind::Patch,
                        wit::UpdateKind::Prerelease => UpdateKind::Prerelease,
                        wit::UpdateKind::Digest => UpdateKind::Digest,
                        wit::UpdateKind::Unknown => UpdateKind::Unknown,
                    },
                })
            }
        };
        Ok(Decision {
            version_tag: decision.version_tag,
            watch_digest: decision.watch_digest,
            offer,
        })
    }
}
