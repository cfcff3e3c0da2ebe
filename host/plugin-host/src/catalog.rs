//! The set of loaded plugins: built-ins embedded in the binary, then every
//! `*.wasm` in the drop-in directory (with an optional same-named `.toml` of
//! grants). A bad drop-in is reported and skipped; the rest load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crowsnest_oci::HostAllowList;

use crate::cache::{sha256_hex, ComponentCache};
use crate::component::{prepare, PluginComponent};
use crate::engine::shared_engine;
use crate::{PluginError, PluginKind, PluginSource};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));
}

/// The built-in components: (file stem, component bytes).
pub fn builtin_components() -> &'static [(&'static str, &'static [u8])] {
    embedded::BUILTIN_COMPONENTS
}

/// What a drop-in's `.toml` grants it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts (`host`, `host:port`, `*.domain`) the plugin may reach over HTTP.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Grants {
    /// Parse a grants file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let grants: Self =
            toml::from_str(text).map_err(|err| err.to_string().trim().replace('\n', " "))?;
        HostAllowList::new(&grants.allowed_hosts)
            .map_err(|reason| format!("allowed_hosts: {reason}"))?;
        Ok(grants)
    }
}

/// A drop-in that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadProblem {
    /// The file.
    pub path: PathBuf,
    /// What was wrong.
    pub reason: String,
}

/// How to build a catalog.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Drop-in directory (`plugins.dir`); a missing directory is not an error.
    pub dir: Option<PathBuf>,
    /// Compiled-component cache.
    pub cache: ComponentCache,
}

/// A loaded plugin and its grants.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// The linked, described component.
    pub component: Arc<PluginComponent>,
    /// What its grants file allows (empty for built-ins and drop-ins without one).
    pub grants: Grants,
}

/// All loaded plugins by name.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: BTreeMap<String, CatalogEntry>,
    problems: Vec<LoadProblem>,
}

impl Catalog {
    /// Load the built-ins and the drop-ins. Never fails as a whole: problems
    /// with single files are logged and kept in [`Catalog::problems`].
    pub async fn load(options: &CatalogOptions) -> Self {
        let mut catalog = Self::default();
        let builtins = builtin_components().iter().map(|(stem, bytes)| {
            let cache = options.cache.clone();
            async move {
                (
                    stem,
                    load_bytes(&cache, stem, bytes.to_vec(), PluginSource::Builtin).await,
                )
            }
        });
        for (stem, result) in futures::future::join_all(builtins).await {
            match result {
                Ok(component) => {
                    catalog.entries.insert(
                        component.info.name.clone(),
                        CatalogEntry {
                            component: Arc::new(component),
                            grants: Grants::default(),
                        },
                    );
                }
                // A broken built-in is a build defect, but still must not take the host down.
                Err(err) => {
                    tracing::error!("built-in plugin `{stem}` failed to load: {err}");
                    catalog.problems.push(LoadProblem {
                        path: PathBuf::from(format!("builtin:{stem}")),
                        reason: err.to_string(),
                    });
                }
            }
        }
        if let Some(dir) = &options.dir {
            catalog.load_dir(dir, &options.cache).await;
        }
        catalog
    }

    async fn load_dir(&mut self, dir: &Path, cache: &ComponentCache) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(dir = %dir.display(), "no drop-in plugin directory");
                return;
            }
            Err(err) => {
                self.problem(
                    dir.to_path_buf(),
                    format!("cannot read plugin directory: {err}"),
                );
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        files.sort();
        let mut from_dir: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in files {
            match load_dropin(&path, cache).await {
                Ok(entry) => {
                    let name = entry.component.info.name.clone();
                    if let Some(previous) = from_dir.get(&name) {
                        self.problem(
                            path,
                            format!(
                                "plugin name `{name}` is already used by {}; skipped",
                                previous.display()
                            ),
                        );
                        continue;
                    }
                    if let Some(replaced) = self.entries.get(&name) {
                        tracing::warn!(
                            "drop-in {} replaces the {} plugin `{name}`",
                            path.display(),
                            replaced.component.source
                        );
                    }
                    tracing::info!(plugin = %name, kind = %entry.component.info.kind, path = %path.display(), "loaded drop-in plugin");
                    from_dir.insert(name.clone(), path);
                    self.entries.insert(name, entry);
                }
                Err(reason) => self.problem(path, reason),
            }
        }
    }

    fn problem(&mut self, path: PathBuf, reason: String) {
        tracing::warn!(path = %path.display(), "plugin skipped: {reason}");
        self.problems.push(LoadProblem { path, reason });
    }

    /// Every loaded plugin, by name.
    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// Files that were skipped, and why.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// The plugin named `name`, if loaded.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// The plugin named `name`, which must be of `kind`.
    pub fn find(&self, name: &str, kind: PluginKind) -> Result<&CatalogEntry, PluginError> {
        match self.entries.get(name) {
            Some(entry) if entry.component.info.kind == kind => Ok(entry),
            _ => Err(PluginError::Unknown {
                name: name.to_string(),
                kind,
            }),
        }
    }

    /// Names of the loaded plugins of `kind`.
    pub fn names(&self, kind: PluginKind) -> Vec<&str> {
        self.entries
            .values()
            .filter(|entry| entry.component.info.kind == kind)
            .map(|entry| entry.component.info.name.as_str())
            .collect()
    }
}

async fn load_dropin(path: &Path, cache: &ComponentCache) -> Result<CatalogEntry, String> {
    let grants_path = path.with_extension("toml");
    let grants = match std::fs::read_to_string(&grants_path) {
        Ok(text) => Grants::parse(&text)
            .map_err(|reason| format!("grants file {}: {reason}", grants_path.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Grants::default(),
        Err(err) => {
            return Err(format!(
                "cannot read grants file {}: {err}",
                grants_path.display()
            ))
        }
    };
    let component = check_file(path, cache).await.map_err(|err| match err {
        PluginError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })?;
    Ok(CatalogEntry {
        component: Arc::new(component),
        grants,
    })
}

/// Load, link and describe one component file (what `plugins check` does).
pub async fn check_file(
    path: &Path,
    cache: &ComponentCache,
) -> Result<PluginComponent, PluginError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|err| PluginError::Invalid {
        plugin: label.clone(),
        reason: format!("cannot read file: {err}"),
    })?;
    load_bytes(cache, &label, bytes, PluginSource::File(path.to_path_buf())).await
}

/// Explain what a non-component binary is, before wasmtime's generic message.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Some("not a WebAssembly file (no `\\0asm` header)");
    }
    // Layer field: 0 = core module, 1 = component.
    match (bytes[6], bytes[7]) {
        (0, 0) => Some(
            "a core WebAssembly module, not a component; componentize it (e.g. `cargo xtask plugin CRATE`, or `wasm-tools component new`)",
        ),
        _ => None,
    }
}

async fn load_bytes(
    cache: &ComponentCache,
    label: &str,
    bytes: Vec<u8>,
    source: PluginSource,
) -> Result<PluginComponent, PluginError> {
    if let Some(reason) = sniff(&bytes) {
        return Err(PluginError::Invalid {
            plugin: label.to_string(),
            reason: reason.to_string(),
        });
    }
    let sha256 = sha256_hex(&bytes);
    let size = bytes.len();
    let cache = cache.clone();
    let name = label.to_string();
    // Compilation is CPU-bound: keep it off the async workers.
    let component = tokio::task::spawn_blocking(move || cache.load(shared_engine(), &name, &bytes))
        .await
        .map_err(|err| PluginError::Invalid {
            plugin: label.to_string(),
            reason: format!("compilation task failed: {err}"),
        })??;
    prepare(component, label, source, sha256, size).await
}
