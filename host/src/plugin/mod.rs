//! Plugin runtime: loads WebAssembly component plugins (built-in and drop-in)
//! and runs them sandboxed.
//!
//! - [`engine`]: the shared wasmtime engine, epoch ticker and compiled-component cache.
//! - [`component`]: recognising a component's world and reading its `describe()`.
//! - [`catalog`]: the set of loaded plugins: built-ins plus `plugins.dir` drop-ins.
//! - [`pool`]: reusable instances per configured plugin instance; a fresh store after a trap.
//! - [`sandbox`]: limits, CPU accounting, allow-lists and the host functions lent to guests.
//! - [`registry`], [`strategy`], [`trigger`]: typed handles the rest of the host calls.

pub mod bindings;
pub mod catalog;
pub mod component;
pub mod engine;
pub mod pool;
pub mod registry;
pub mod sandbox;
pub mod strategy;
pub mod trigger;

use std::fmt;
use std::path::PathBuf;

pub use catalog::{Catalog, CatalogOptions, Grants, LoadProblem};
pub use component::{PluginComponent, PluginInfo};
pub use registry::RegistryPlugin;
pub use sandbox::SandboxLimits;
pub use strategy::StrategyPlugin;
pub use trigger::TriggerPlugin;

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
