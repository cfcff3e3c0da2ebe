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

/// A built-in, compiled and described on first use.
#[derive(Debug)]
struct LazyBuiltin {
    bytes: &'static [u8],
    /// `None` once loading failed (the reason is in the problems).
    loaded: tokio::sync::OnceCell<Option<CatalogEntry>>,
}

/// All plugins by name. Drop-ins are described when the catalog is built (a
/// drop-in's name is only known from its `describe()`); built-ins are compiled
/// only when first asked for, so a scan compiles (and caches) just the
/// plugins it uses.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Drop-ins by plugin name; they replace built-ins of the same name.
    dropins: BTreeMap<String, CatalogEntry>,
    /// Built-ins by file stem, which is their plugin name.
    builtins: BTreeMap<String, LazyBuiltin>,
    cache: Option<ComponentCache>,
    problems: std::sync::Mutex<Vec<LoadProblem>>,
}

impl Catalog {
    /// Load the built-ins and the drop-ins, compiling everything. Never fails
    /// as a whole: problems with single files are logged and kept in
    /// [`Catalog::problems`].
    pub async fn load(options: &CatalogOptions) -> Self {
        let catalog = Self::load_lazy(options).await;
        catalog.load_all().await;
        catalog
    }

    /// Load the drop-ins; built-ins are compiled when first looked up
    /// ([`Catalog::find`], [`Catalog::get`]) or by [`Catalog::load_all`].
    pub async fn load_lazy(options: &CatalogOptions) -> Self {
        let mut catalog = Self {
            builtins: builtin_components()
                .iter()
                .map(|(stem, bytes)| {
                    (
                        (*stem).to_string(),
                        LazyBuiltin {
                            bytes,
                            loaded: tokio::sync::OnceCell::new(),
                        },
                    )
                })
                .collect(),
            cache: Some(options.cache.clone()),
            ..Self::default()
        };
        if let Some(dir) = &options.dir {
            catalog.load_dir(dir, &options.cache).await;
        }
        catalog
    }

    /// Compile every built-in not yet compiled (what listings need).
    pub async fn load_all(&self) {
        let stems: Vec<&str> = self.builtins.keys().map(String::as_str).collect();
        futures::future::join_all(stems.into_iter().map(|stem| self.builtin(stem))).await;
    }

    /// The built-in `stem`, compiled and described on first call.
    async fn builtin(&self, stem: &str) -> Option<&CatalogEntry> {
        let lazy = self.builtins.get(stem)?;
        lazy.loaded
            .get_or_init(|| async {
                let cache = self
                    .cache
                    .clone()
                    .unwrap_or_else(|| ComponentCache::new(None));
                let loaded = load_bytes(&cache, stem, lazy.bytes.to_vec(), PluginSource::Builtin)
                    .await
                    .and_then(|component| {
                        // Lookups go by stem before compiling, so the two must agree.
                        if component.info.name == stem {
                            Ok(component)
                        } else {
                            Err(PluginError::Invalid {
                                plugin: stem.to_string(),
                                reason: format!(
                                    "built-in file `{stem}.wasm` describes itself as `{}`",
                                    component.info.name
                                ),
                            })
                        }
                    });
                match loaded {
                    Ok(component) => {
                        tracing::debug!(plugin = stem, "compiled built-in plugin");
                        Some(CatalogEntry {
                            component: Arc::new(component),
                            grants: Grants::default(),
                        })
                    }
                    // A broken built-in is a build defect, but still must not take the host down.
                    Err(err) => {
                        tracing::error!("built-in plugin `{stem}` failed to load: {err}");
                        self.record(LoadProblem {
                            path: PathBuf::from(format!("builtin:{stem}")),
                            reason: err.to_string(),
                        });
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    fn record(&self, problem: LoadProblem) {
        // A poisoned lock only means another thread panicked while pushing; the list is still usable.
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(problem);
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
                    if self.builtins.contains_key(&name) {
                        tracing::warn!(
                            "drop-in {} replaces the built-in plugin `{name}`",
                            path.display()
                        );
                    }
                    tracing::info!(plugin = %name, kind = %entry.component.info.kind, path = %path.display(), "loaded drop-in plugin");
                    from_dir.insert(name.clone(), path);
                    self.dropins.insert(name, entry);
                }
                Err(reason) => self.problem(path, reason),
            }
        }
    }

    fn problem(&mut self, path: PathBuf, reason: String) {
        tracing::warn!(path = %path.display(), "plugin skipped: {reason}");
        self.record(LoadProblem { path, reason });
    }

    /// Every plugin loaded so far, by name: all drop-ins, and the built-ins
    /// compiled so far (call [`Catalog::load_all`] first for all of them).
    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        let builtins = self
            .builtins
            .iter()
            .filter(|(stem, _)| !self.dropins.contains_key(*stem))
            .filter_map(|(_, lazy)| lazy.loaded.get()?.as_ref());
        let mut all: Vec<&CatalogEntry> = self.dropins.values().chain(builtins).collect();
        all.sort_by(|a, b| a.component.info.name.cmp(&b.component.info.name));
        all.into_iter()
    }

    /// Files that were skipped, and why.
    pub fn problems(&self) -> Vec<LoadProblem> {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The plugin named `name`, compiling it if it is a built-in not yet used.
    pub async fn get(&self, name: &str) -> Option<&CatalogEntry> {
        match self.dropins.get(name) {
            Some(entry) => Some(entry),
            None => self.builtin(name).await,
        }
    }

    /// The plugin named `name`, which must be of `kind`.
    pub async fn find(&self, name: &str, kind: PluginKind) -> Result<&CatalogEntry, PluginError> {
        match self.get(name).await {
            Some(entry) if entry.component.info.kind == kind => Ok(entry),
            _ => Err(PluginError::Unknown {
                name: name.to_string(),
                kind,
            }),
        }
    }

    /// Names of all plugins of `kind` (compiles the built-ins not yet used:
    /// only their `describe()` tells their kind).
    pub async fn names(&self, kind: PluginKind) -> Vec<&str> {
        self.load_all().await;
        self.entries()
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
