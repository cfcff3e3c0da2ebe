//! The on-disk cache of compiled components, so a warm start never compiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::engine::{root_cause, wasmtime_version};
use crate::PluginError;

/// Hex sha256 of a component's bytes: its identity in listings and in the cache.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiles components, reusing compiled artifacts from a cache directory.
///
/// Artifacts are keyed by the component's sha256, the wasmtime version and the
/// engine's compatibility hash, so a warm start never recompiles and an
/// upgraded host never loads a stale artifact.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir` (created private on first write); `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The default cache directory: `$XDG_CACHE_HOME/crowsnest/components`, else `~/.cache/...`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("crowsnest").join("components"))
    }

    /// The cache directory in use, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn artifact_path(&self, engine: &Engine, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hasher.finish();
        Some(dir.join(format!(
            "{sha256}-wasmtime{}-{compat:016x}.cwasm",
            wasmtime_version()
        )))
    }

    /// Compile `bytes` (a component), or load its cached compilation.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<Component, PluginError> {
        let sha = sha256_hex(bytes);
        let path = self.artifact_path(engine, &sha);
        if let Some(path) = &path {
            if path.is_file() {
                // SAFETY: the cache directory is created 0700 by this process and
                // artifacts are written atomically by `store` below; wasmtime also
                // checks the artifact's version and engine configuration.
                match unsafe { Component::deserialize_file(engine, path) } {
                    Ok(component) => return Ok(component),
                    Err(err) => tracing::warn!(
                        plugin = name,
                        path = %path.display(),
                        "discarding unusable cached component: {err:#}"
                    ),
                }
            }
        }
        let component =
            Component::from_binary(engine, bytes).map_err(|err| PluginError::Invalid {
                plugin: name.to_string(),
                reason: format!("not a valid WebAssembly component: {}", root_cause(&err)),
            })?;
        if let Some(path) = &path {
            if let Err(err) = store_artifact(path, &component) {
                tracing::warn!(plugin = name, path = %path.display(), "cannot cache compiled component: {err:#}");
            }
        }
        Ok(component)
    }
}

fn store_artifact(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
