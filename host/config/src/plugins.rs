//! `[plugins]`: the drop-in directory, the compile cache and the sandbox
//! limits, as the configuration file spells them (the engine turns them into
//! the plugin host's own types).

use std::path::PathBuf;

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
    /// Wall-clock time per call, host calls (HTTP …) included, seconds.
    pub call_timeout_secs: u64,
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
            call_timeout_secs: 120,
            instances: 4,
        }
    }
}
