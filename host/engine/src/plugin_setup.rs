//! The plugin host as the configuration's `[plugins]` section sets it up.

use std::time::Duration;

use crowsnest_config::PluginsConfig;
use crowsnest_plugin_host::{CatalogOptions, ComponentCache, SandboxLimits};

/// The sandbox limits `[plugins]` describes.
pub fn sandbox_limits(plugins: &PluginsConfig) -> SandboxLimits {
    SandboxLimits {
        memory_bytes: (plugins.memory_limit_mib as usize) << 20,
        cpu_per_call: Duration::from_millis(plugins.cpu_limit_ms),
        call_timeout: Duration::from_secs(plugins.call_timeout_secs.max(1)),
        ..Default::default()
    }
}

/// Where the catalog loads drop-ins from and caches compilations.
pub fn catalog_options(plugins: &PluginsConfig) -> CatalogOptions {
    CatalogOptions {
        dir: Some(plugins.dir.clone()),
        cache: ComponentCache::new(
            plugins
                .cache_dir
                .clone()
                .or_else(ComponentCache::default_dir),
        ),
    }
}
