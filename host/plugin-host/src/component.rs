//! Recognising a component's world, linking it, and reading its `describe()`.

use std::sync::{Arc, OnceLock};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use crate::bindings::registry::crowsnest::plugin::types;
use crate::bindings::{registry, strategy, trigger};
use crate::engine::{root_cause, shared_engine};
use crate::limits::SandboxLimits;
use crate::pool::{guest_call, instantiate_once, World};
use crate::state::{Capabilities, HostState};
use crate::{PluginError, PluginKind, PluginSource};

const WIT_PACKAGE: &str = "crowsnest:plugin";
const WIT_VERSION: &str = "0.2.0";

/// One setting a plugin accepts, from its `describe()`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigKey {
    /// Key as written in config.toml.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// Must be present.
    pub required: bool,
    /// Masked when shown.
    pub secret: bool,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    /// Unique name (`oci`, `semver`, ...).
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// Its world.
    pub kind: PluginKind,
    /// One line.
    pub description: String,
    /// Accepted settings.
    pub config_keys: Vec<ConfigKey>,
}

/// What a masked secret is shown as.
pub const MASK: &str = "********";

impl PluginInfo {
    /// Whether the setting `key` holds a secret: the one rule behind every
    /// view (API, logs, errors). A key the plugin declares is secret when it
    /// flags it `secret` in `describe()`; a key it does not declare is
    /// treated as secret, since nothing says what it holds.
    pub fn is_secret(&self, key: &str) -> bool {
        self.config_keys
            .iter()
            .find(|declared| declared.name == key)
            .is_none_or(|declared| declared.secret)
    }

    /// `settings` as they may be shown: secrets replaced by [`MASK`].
    pub fn masked(
        &self,
        settings: &[(String, String)],
    ) -> std::collections::BTreeMap<String, String> {
        settings
            .iter()
            .map(|(key, value)| {
                let shown = if self.is_secret(key) {
                    MASK.to_string()
                } else {
                    value.clone()
                };
                (key.clone(), shown)
            })
            .collect()
    }

    /// The secret values among `settings` (see [`PluginInfo::is_secret`]),
    /// to scrub from what the host writes about the instance.
    pub fn secrets(&self, settings: &[(String, String)]) -> crate::Secrets {
        crate::Secrets::new(
            settings
                .iter()
                .filter(|(key, _)| self.is_secret(key))
                .map(|(_, value)| value.clone()),
        )
    }

    fn from_wit(info: types::PluginInfo) -> Self {
        Self {
            name: info.name,
            version: info.version,
            kind: match info.kind {
                types::PluginKind::RegistryProvider => PluginKind::RegistryProvider,
                types::PluginKind::VersionStrategy => PluginKind::VersionStrategy,
                types::PluginKind::Trigger => PluginKind::Trigger,
            },
            description: info.description,
            config_keys: info
                .config_keys
                .into_iter()
                .map(|key| ConfigKey {
                    name: key.name,
                    description: key.description,
                    required: key.required,
                    secret: key.secret,
                })
                .collect(),
        }
    }
}

/// A linked component ready to instantiate, for its world.
#[derive(Clone)]
pub enum WorldPre {
    /// `registry-provider`.
    Registry(registry::RegistryProviderPre<HostState>),
    /// `version-strategy`.
    Strategy(strategy::VersionStrategyPre<HostState>),
    /// `trigger`.
    Trigger(trigger::TriggerPre<HostState>),
}

/// A loaded, linked and described plugin component.
pub struct PluginComponent {
    /// Its `describe()`.
    pub info: PluginInfo,
    /// Built-in or file.
    pub source: PluginSource,
    /// sha256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// Ready to instantiate.
    pub pre: WorldPre,
}

impl std::fmt::Debug for PluginComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginComponent")
            .field("info", &self.info)
            .field("source", &self.source)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

struct Linkers {
    registry: Linker<HostState>,
    strategy: Linker<HostState>,
    trigger: Linker<HostState>,
}

fn linkers() -> Result<&'static Linkers, PluginError> {
    static LINKERS: OnceLock<Result<Linkers, String>> = OnceLock::new();
    LINKERS
        .get_or_init(|| build_linkers(shared_engine()).map_err(|err| format!("{err:#}")))
        .as_ref()
        .map_err(|reason| PluginError::Invalid {
            plugin: "host".into(),
            reason: format!("cannot build plugin linkers: {reason}"),
        })
}

fn build_linkers(engine: &Engine) -> wasmtime::Result<Linkers> {
    let mut registry = Linker::new(engine);
    registry::RegistryProvider::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut registry,
        |state| state,
    )?;
    // Strategies get no host functions at all.
    let strategy = Linker::new(engine);
    let mut trigger = Linker::new(engine);
    trigger::Trigger::add_to_linker::<HostState, HasSelf<HostState>>(&mut trigger, |state| state)?;
    Ok(Linkers {
        registry,
        strategy,
        trigger,
    })
}

fn interface_name(name: &str) -> String {
    format!("{WIT_PACKAGE}/{name}@{WIT_VERSION}")
}

/// The `crowsnest:plugin@VERSION` package of an export that is not this
/// host's version, e.g. a component built against 0.1.0.
fn older_package(exports: &[String]) -> Option<String> {
    exports.iter().find_map(|export| {
        let (package, rest) = export.split_once('/')?;
        let (_, version) = rest.split_once('@')?;
        (package == WIT_PACKAGE && version != WIT_VERSION).then(|| format!("{package}@{version}"))
    })
}

/// Which world a component implements, from its exports.
pub fn detect_world(engine: &Engine, component: &Component) -> Result<PluginKind, String> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if let Some(old) = older_package(&exports) {
        return Err(format!(
            "component was built against `{old}`, but this host speaks `{WIT_PACKAGE}@{WIT_VERSION}` \
             (0.2.0 added the registry world's `clock` and `grant-cache`): rebuild it with the \
             current crowsnest-plugin-sdk (`cargo xtask plugins` for the built-in ones, \
             `cargo xtask plugin DIR --out FILE.wasm` for your own)"
        ));
    }
    let has = |iface: &str| exports.iter().any(|e| *e == interface_name(iface));
    let kind = if has("registry") {
        PluginKind::RegistryProvider
    } else if has("strategy") {
        PluginKind::VersionStrategy
    } else if has("notifier") {
        PluginKind::Trigger
    } else {
        let listed = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        };
        return Err(format!(
            "component implements no crowsnest world: it exports {listed}; a plugin must export `{}` and one of `{}`, `{}`, `{}`",
            interface_name("meta"),
            interface_name("registry"),
            interface_name("strategy"),
            interface_name("notifier"),
        ));
    };
    if !has("meta") {
        return Err(format!(
            "component exports no `{}` (describe/configure)",
            interface_name("meta")
        ));
    }
    // Name any import the world does not lend, so the author knows what to remove.
    let allowed: &[&str] = match kind {
        PluginKind::RegistryProvider => &[
            "types",
            "registry-types",
            "log",
            "http-client",
            "oci-client",
            "clock",
            "grant-cache",
        ],
        PluginKind::VersionStrategy => &["types"],
        PluginKind::Trigger => &["types", "log", "http-client", "clock", "smtp", "mqtt"],
    };
    for (name, _) in ty.imports(engine) {
        if !allowed.iter().any(|iface| name == interface_name(iface)) {
            return Err(format!(
                "component imports `{name}`, which the {} world does not provide",
                kind.world()
            ));
        }
    }
    Ok(kind)
}

/// Link a compiled component for its world and read its `describe()`.
pub async fn prepare(
    component: Component,
    label: &str,
    source: PluginSource,
    sha256: String,
    size: usize,
) -> Result<PluginComponent, PluginError> {
    let engine = shared_engine();
    let invalid = |reason: String| PluginError::Invalid {
        plugin: label.to_string(),
        reason,
    };
    let kind = detect_world(engine, &component).map_err(invalid)?;
    let linkers = linkers()?;
    let link_error = |err: wasmtime::Error| {
        invalid(format!(
            "cannot link as {}: {}",
            kind.world(),
            root_cause(&err)
        ))
    };
    let pre = match kind {
        PluginKind::RegistryProvider => WorldPre::Registry(
            registry::RegistryProviderPre::new(
                linkers
                    .registry
                    .instantiate_pre(&component)
                    .map_err(link_error)?,
            )
            .map_err(link_error)?,
        ),
        PluginKind::VersionStrategy => WorldPre::Strategy(
            strategy::VersionStrategyPre::new(
                linkers
                    .strategy
                    .instantiate_pre(&component)
                    .map_err(link_error)?,
            )
            .map_err(link_error)?,
        ),
        PluginKind::Trigger => WorldPre::Trigger(
            trigger::TriggerPre::new(
                linkers
                    .trigger
                    .instantiate_pre(&component)
                    .map_err(link_error)?,
            )
            .map_err(link_error)?,
        ),
    };
    let info = describe(&pre, label).await?;
    if info.kind != kind {
        return Err(invalid(format!(
            "describe() says kind {} but the component implements {}",
            info.kind, kind
        )));
    }
    validate_info(&info).map_err(invalid)?;
    Ok(PluginComponent {
        info,
        source,
        sha256,
        size,
        pre,
    })
}

async fn describe(pre: &WorldPre, label: &str) -> Result<PluginInfo, PluginError> {
    let label: Arc<str> = Arc::from(format!("{label} (describe)"));
    let limits = SandboxLimits::default();
    let info = match pre {
        WorldPre::Registry(pre) => {
            describe_world::<registry::RegistryProvider>(pre, label, limits).await?
        }
        WorldPre::Strategy(pre) => {
            describe_world::<strategy::VersionStrategy>(pre, label, limits).await?
        }
        WorldPre::Trigger(pre) => describe_world::<trigger::Trigger>(pre, label, limits).await?,
    };
    Ok(PluginInfo::from_wit(info))
}

async fn describe_world<W: World>(
    pre: &W::Pre,
    label: Arc<str>,
    limits: SandboxLimits,
) -> Result<types::PluginInfo, PluginError> {
    let mut live = instantiate_once::<W>(pre, label, limits, Capabilities::default()).await?;
    guest_call!(live: &mut live, |bindings, store| bindings.describe(store))
}

fn validate_info(info: &PluginInfo) -> Result<(), String> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!(
            "describe() name `{}` must be 1-64 characters of a-z, 0-9, `-`, `_`",
            info.name.chars().take(80).collect::<String>()
        ));
    }
    if info.version.len() > 64 || info.description.len() > 1024 || info.config_keys.len() > 256 {
        return Err("describe() answer is oversized".into());
    }
    Ok(())
}

#[cfg(test)]
mod secret_flag_tests {
    use super::*;

    fn key(name: &str, secret: bool) -> ConfigKey {
        ConfigKey {
            name: name.into(),
            description: String::new(),
            required: false,
            secret,
        }
    }

    #[test]
    fn the_plugins_flags_decide_what_is_masked() {
        let info = PluginInfo {
            name: "webhook".into(),
            version: "1".into(),
            kind: PluginKind::Trigger,
            description: String::new(),
            config_keys: vec![
                key("url", true),
                key("token_header", false),
                key("password", true),
            ],
        };
        let settings = [
            ("url", "https://hooks.example/T0/B0/s3cretXYZ"),
            ("token_header", "X-Token"),
            ("password", "pw-value"),
            ("undeclared", "anything"),
        ]
        .map(|(key, value)| (key.to_string(), value.to_string()));
        let shown = info.masked(&settings);
        // Flagged `secret`: masked although the name says nothing of secrets.
        assert_eq!(shown["url"], MASK);
        // Not flagged: shown although its name contains "token".
        assert_eq!(shown["token_header"], "X-Token");
        assert_eq!(shown["password"], MASK);
        assert_eq!(shown["undeclared"], MASK, "unknown keys are never shown");
        let secrets = info.secrets(&settings);
        assert_eq!(
            secrets.scrub("POST https://hooks.example/T0/B0/s3cretXYZ: refused (X-Token)"),
            "POST ********: refused (X-Token)"
        );
    }
}
