//! crowsnest-plugin-host: loads WebAssembly component plugins (built-in and
//! drop-in) and runs them sandboxed.
//!
//! Responsibility: the wasmtime engine and its epoch ticker ([`engine`]), the
//! compile cache ([`cache`]), recognising and describing components
//! ([`component`]), the set of loaded plugins ([`catalog`]), reusable
//! instances with a fresh store after a trap ([`pool`]), the limits every
//! instance runs under ([`limits`]), one module per capability lent to guests
//! ([`capabilities`]: log, clock, http, oci, smtp, mqtt), secret values
//! scrubbed from what the host writes about an instance ([`secrets`]), and
//! the typed handle of each world
//! ([`worlds`]). Metrics reach the outside through [`PluginObserver`].
//!
//! Depends only on `crowsnest-oci` (the client the `oci` capability lends);
//! must not depend on discovery, the store, the scan engine or any front end.

pub mod bindings;
pub mod cache;
pub mod capabilities;
pub mod catalog;
pub mod component;
pub mod engine;
pub mod limits;
pub mod observer;
pub mod pool;
pub mod secrets;
pub mod state;
pub mod worlds;

use std::fmt;
use std::path::PathBuf;

pub use cache::ComponentCache;
pub use capabilities::{
    auth_from_wit, GrantCache, HttpCapability, MqttBroker, MqttCapability, OciCapability,
    SetupError, SmtpCapability, SmtpSecurity, SmtpServer,
};
pub use catalog::{Catalog, CatalogOptions, Grants, LoadProblem};
pub use component::{PluginComponent, PluginInfo};
pub use limits::SandboxLimits;
pub use observer::{CallOutcome, NoObserver, PluginObserver};
pub use pool::InstanceSpec;
pub use secrets::Secrets;
pub use state::{Capabilities, HostState};
pub use worlds::registry::{self as registry, RegistryPlugin};
pub use worlds::strategy::{self as strategy, StrategyPlugin};
pub use worlds::trigger::{self as trigger, TriggerPlugin};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `registry-provider`: serves images of some registries.
    RegistryProvider,
    /// `version-strategy`: picks the update among tags.
    VersionStrategy,
    /// `trigger`: delivers update events.
    Trigger,
}

impl PluginKind {
    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            Self::RegistryProvider => "registry-provider",
            Self::VersionStrategy => "version-strategy",
            Self::Trigger => "trigger",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the binary.
    Builtin,
    /// A drop-in file.
    File(PathBuf),
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin => f.write_str("builtin"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A plugin failure. It fails only the work of that plugin instance; the host
/// carries on, and the next call gets a fresh instance where one was poisoned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The file is not a usable plugin.
    #[error("plugin `{plugin}` is not valid: {reason}")]
    Invalid {
        /// File or plugin name.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// No plugin of that name (and kind) is loaded.
    #[error("no {kind} plugin named `{name}` is loaded")]
    Unknown {
        /// Requested name.
        name: String,
        /// Requested kind.
        kind: PluginKind,
    },
    /// `configure` rejected the settings.
    #[error("plugin `{plugin}` rejected its configuration{}: {message}", key.as_ref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    Config {
        /// Plugin instance label.
        plugin: String,
        /// The offending key, when the plugin named one.
        key: Option<String>,
        /// Why.
        message: String,
    },
    /// The guest trapped, panicked, or hit a sandbox limit.
    #[error("plugin `{plugin}` failed: {cause}")]
    Trap {
        /// Plugin instance label.
        plugin: String,
        /// Trap, panic or limit, in words.
        cause: String,
    },
    /// The guest returned something the host cannot accept.
    #[error("plugin `{plugin}` returned a malformed answer: {reason}")]
    Malformed {
        /// Plugin instance label.
        plugin: String,
        /// What was wrong with it.
        reason: String,
    },
}
