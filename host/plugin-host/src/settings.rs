//! `[plugins]`: the drop-in directory, the compile cache and the sandbox
//! limits, as the configuration file spells them.

use std::path::PathBuf;
use std::time::Duration;

use crate::cache::ComponentCache;
use crate::catalog::CatalogOptions;
use crate::limits::SandboxLimits;

/// `[plugins]`: drop-in directory, cache and sandbox limits.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory of drop-in `*.wasm` plugins.
    pub dir: PathBuf,
    /// Compiled-component cache directory (default: the user cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Linear memory per plugin instance, MiB.
    pub memory_limit_mib: u32,
    /// Guest CPU time per call, milliseconds.
    pub cpu_limit_ms: u64,
    /// Concurrent instances per configured registry plugin.
    pub instances: usize,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./plugins.d"),
            cache_dir: None,
            memory_limit_mib: 64,
            cpu_limit_ms: 1000,
            instances: 4,
        }
    }
}

impl PluginsConfig {
    /// The sandbox limits these settings describe.
    pub fn sandbox_limits(&self) -> SandboxLimits {
        SandboxLimits {
            memory_bytes: (self.memory_limit_mib as usize) << 20,
            cpu_per_call: Duration::from_millis(self.cpu_limit_ms),
            ..Default::default()
        }
    }

    /// Where the catalog loads drop-ins from and caches compilations.
    pub fn catalog_options(&self) -> CatalogOptions {
        CatalogOptions {
            dir: Some(self.dir.clone()),
            cache: ComponentCache::new(self.cache_dir.clone().or_else(ComponentCache::default_dir)),
        }
    }
}
