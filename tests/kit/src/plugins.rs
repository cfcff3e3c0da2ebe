//! Plugins outside the scanner: catalogs, the fixture components built by
//! `cargo xtask plugins`, and instance specs lending what the scanner lends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crowsnest_oci::{ClientConfig, HostAllowList, RegistryClient};
use crowsnest_plugin_host::{
    Capabilities, Catalog, CatalogOptions, ComponentCache, HttpCapability, InstanceSpec,
    NoObserver, OciCapability, SandboxLimits,
};

/// The fixture component `name` (`tests/fixtures/plugins/NAME`); panics
/// saying how to build it when it is missing.
pub fn fixture(name: &str) -> PathBuf {
    let path = crate::repo_root().join("tests/fixtures/plugins").join(name);
    assert!(
        path.is_file(),
        "missing fixture {} — run `cargo xtask plugins`",
        path.display()
    );
    path
}

/// The built-in component `name` as embedded in the binary (`host/builtin/NAME.wasm`).
pub fn builtin(name: &str) -> PathBuf {
    crate::repo_root()
        .join("host/builtin")
        .join(format!("{name}.wasm"))
}

/// The built-ins plus the drop-ins of `dir`, compiled into `cache_dir`
/// (`None`: in memory only).
pub async fn catalog(dir: Option<&Path>, cache_dir: Option<&Path>) -> Catalog {
    Catalog::load(&CatalogOptions {
        dir: dir.map(Path::to_path_buf),
        cache: ComponentCache::new(cache_dir.map(Path::to_path_buf)),
    })
    .await
}

/// An instance spec lending nothing (all a strategy gets), observed by nobody.
pub fn spec(
    settings: Vec<(String, String)>,
    limits: SandboxLimits,
    max_instances: usize,
) -> InstanceSpec {
    InstanceSpec {
        settings,
        limits,
        capabilities: Capabilities::default(),
        max_instances,
        observer: Arc::new(NoObserver),
    }
}

/// An instance spec lending HTTP and the host's OCI client, both restricted
/// to the `allowed` hosts, as the scanner sets up a registry instance.
pub fn registry_spec(
    allowed: &[&str],
    settings: Vec<(String, String)>,
    limits: SandboxLimits,
    max_instances: usize,
) -> InstanceSpec {
    let allow = Arc::new(HostAllowList::new(allowed.iter().copied()).expect("allow-list"));
    let client = RegistryClient::new(ClientConfig::default()).expect("registry client");
    InstanceSpec {
        capabilities: Capabilities {
            http: Some(HttpCapability::new(allow.clone(), reqwest::Client::new())),
            oci: Some(OciCapability::new(&client, allow)),
            ..Capabilities::default()
        },
        ..spec(settings, limits, max_instances)
    }
}
