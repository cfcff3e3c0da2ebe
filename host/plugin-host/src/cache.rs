//! The on-disk cache of compiled components, so a warm start never compiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
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
/// upgraded host never loads a stale artifact. Deserialising runs native
/// code, so nothing is read from a directory another user owns or can write
/// to, and each artifact starts with an HMAC-SHA256 under a per-cache key
/// (`artifacts.key`, 0600) that is checked before it is deserialised.
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
        self.load_from(engine, name, bytes)
            .map(|(component, _)| component)
    }

    /// [`ComponentCache::load`], also telling where the component came from.
    pub fn load_from(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Component, Origin), PluginError> {
        let sha = sha256_hex(bytes);
        // A directory someone else could write to is never read from: its
        // artifacts are native code this process would run.
        let trusted = self.dir.as_deref().and_then(|dir| match trusted_key(dir) {
            Ok(key) => Some(key),
            Err(why) => {
                tracing::warn!(plugin = name, dir = %dir.display(), "compile cache not used, compiling in memory: {why}");
                None
            }
        });
        let path = trusted
            .as_ref()
            .and_then(|_| self.artifact_path(engine, &sha));
        if let (Some(path), Some(key)) = (&path, &trusted) {
            if let Some(component) = load_verified(engine, name, path, key) {
                return Ok((component, Origin::Cache));
            }
        }
        let component =
            Component::from_binary(engine, bytes).map_err(|err| PluginError::Invalid {
                plugin: name.to_string(),
                reason: format!("not a valid WebAssembly component: {}", root_cause(&err)),
            })?;
        if let (Some(path), Some(key)) = (&path, &trusted) {
            if let Err(err) = store_artifact(path, &component, key) {
                tracing::warn!(plugin = name, path = %path.display(), "cannot cache compiled component: {err:#}");
            }
        }
        Ok((component, Origin::Compiled))
    }
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A cached artifact whose keyed hash checked out.
    Cache,
    /// Compiled now (no usable artifact, or no trusted cache).
    Compiled,
}

/// Name of the per-cache HMAC key file (32 random bytes, mode 0600).
const KEY_FILE: &str = "artifacts.key";
/// Length of the HMAC-SHA256 tag that starts every artifact.
const TAG_LEN: usize = 32;

type ArtifactMac = Hmac<Sha256>;

/// The cache's key, after checking that only this user can write to the
/// directory and read the key; created (with the directory) when missing.
fn trusted_key(dir: &Path) -> Result<Vec<u8>, String> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check_private(dir, &meta, 0o022)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(dir).map_err(|err| format!("cannot create it: {err}"))?
        }
        Err(err) => return Err(format!("cannot inspect it: {err}")),
    }
    let key_path = dir.join(KEY_FILE);
    match std::fs::symlink_metadata(&key_path) {
        Ok(meta) => {
            check_private(&key_path, &meta, 0o077)?;
            let key = std::fs::read(&key_path)
                .map_err(|err| format!("cannot read {}: {err}", key_path.display()))?;
            if key.len() < TAG_LEN {
                return Err(format!(
                    "{} is shorter than {TAG_LEN} bytes",
                    key_path.display()
                ));
            }
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            // A new key: every artifact already there fails its check and is recompiled.
            let key: [u8; TAG_LEN] = rand::random();
            write_private_file(&key_path, &key, true)
                .map_err(|err| format!("cannot create {}: {err}", key_path.display()))?;
            Ok(key.to_vec())
        }
        Err(err) => Err(format!("cannot inspect {}: {err}", key_path.display())),
    }
}

/// Refuses `path` unless it is owned by this process's user, is not a
/// symbolic link, and has none of the `forbidden` mode bits.
fn check_private(path: &Path, meta: &std::fs::Metadata, forbidden: u32) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by this process's uid {me}",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(format!(
            "{} has mode {mode:04o}; it must not be {} (chmod go-{})",
            path.display(),
            if forbidden == 0o022 {
                "group- or world-writable"
            } else {
                "accessible to group or others"
            },
            if forbidden == 0o022 { "w" } else { "rwx" }
        ));
    }
    Ok(())
}

/// The component in `path` if its keyed hash matches; a tampered, truncated
/// or stale artifact is reported and `None` returned (the caller recompiles).
fn load_verified(engine: &Engine, name: &str, path: &Path, key: &[u8]) -> Option<Component> {
    let stored = match std::fs::read(path) {
        Ok(stored) => stored,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!(plugin = name, path = %path.display(), "cannot read cached component: {err}");
            return None;
        }
    };
    let (tag, artifact) = stored.split_at_checked(TAG_LEN)?;
    let mut mac = ArtifactMac::new_from_slice(key).ok()?;
    mac.update(artifact);
    if mac.verify_slice(tag).is_err() {
        tracing::warn!(plugin = name, path = %path.display(), "cached component fails its integrity check; recompiling");
        return None;
    }
    // SAFETY: the bytes were written by this user's crowsnest (the HMAC key
    // is private to this user, in a directory only it can write) and wasmtime
    // checks the artifact's version and engine configuration.
    match unsafe { Component::deserialize(engine, artifact) } {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(plugin = name, path = %path.display(), "discarding unusable cached component: {err:#}");
            None
        }
    }
}

fn store_artifact(path: &Path, component: &Component, key: &[u8]) -> anyhow::Result<()> {
    let artifact = component
        .serialize()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut mac = ArtifactMac::new_from_slice(key).map_err(|err| anyhow::anyhow!("{err}"))?;
    mac.update(&artifact);
    let mut stored = mac.finalize().into_bytes().to_vec();
    stored.extend_from_slice(&artifact);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_private_file(&tmp, &stored, false)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Writes `bytes` to a new file readable by this user only.
fn write_private_file(path: &Path, bytes: &[u8], must_be_new: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if must_be_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    options.open(path)?.write_all(bytes)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn component_bytes() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/plugins/hostile-strategy.wasm");
        std::fs::read(path).unwrap()
    }

    fn artifacts(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn origin(cache: &ComponentCache, bytes: &[u8]) -> Origin {
        cache
            .load_from(crate::engine::shared_engine(), "t", bytes)
            .unwrap()
            .1
    }

    /// A cache in a fresh directory holding one compiled component: the
    /// guard of the temporary directory, the cache's path, the cache and the
    /// component's bytes.
    fn warm_cache() -> (tempfile::TempDir, PathBuf, ComponentCache, Vec<u8>) {
        let bytes = component_bytes();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let cache = ComponentCache::new(Some(dir.clone()));
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
        (root, dir, cache, bytes)
    }

    #[test]
    fn a_tampered_artifact_is_recompiled_never_loaded() {
        let bytes = component_bytes();
        let root = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(Some(root.path().join("cache")));
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
        assert_eq!(origin(&cache, &bytes), Origin::Cache, "a warm load");
        let dir = root.path().join("cache");
        let key = std::fs::metadata(dir.join(KEY_FILE)).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let [artifact] = artifacts(&dir).try_into().unwrap();
        // Flip one byte of the compiled code: the keyed hash no longer matches.
        let mut stored = std::fs::read(&artifact).unwrap();
        let last = stored.len() - 1;
        stored[last] ^= 0x55;
        std::fs::write(&artifact, &stored).unwrap();
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
        assert_ne!(std::fs::read(&artifact).unwrap(), stored, "rewritten");
        assert_eq!(origin(&cache, &bytes), Origin::Cache);
        // A whole artifact swapped in without the key (bare wasmtime output) is refused too.
        let bare = Component::from_binary(crate::engine::shared_engine(), &bytes)
            .unwrap()
            .serialize()
            .unwrap();
        std::fs::write(&artifact, bare).unwrap();
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
    }

    #[test]
    fn a_missing_key_invalidates_every_artifact() {
        let (_root, dir, cache, bytes) = warm_cache();
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        assert_eq!(
            origin(&cache, &bytes),
            Origin::Compiled,
            "unverifiable: recompiled"
        );
        assert!(dir.join(KEY_FILE).is_file(), "a new key was made");
        assert_eq!(origin(&cache, &bytes), Origin::Cache);
        // A key others can read is no secret: the cache is not used.
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = trusted_key(&dir).unwrap_err();
        assert!(err.contains("mode 0644"), "{err}");
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
    }

    #[test]
    fn a_directory_others_can_write_or_own_is_not_used() {
        let (_root, dir, cache, bytes) = warm_cache();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = trusted_key(&dir).unwrap_err();
        assert!(
            err.contains("mode 0777") && err.contains("group- or world-writable"),
            "{err}"
        );
        // Not loaded from it even though a valid artifact is there.
        assert_eq!(origin(&cache, &bytes), Origin::Compiled);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(origin(&cache, &bytes), Origin::Cache);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // Owned by another user (only root can hand a directory over).
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            let err = trusted_key(&dir).unwrap_err();
            assert!(err.contains("owned by uid 65534"), "{err}");
            assert_eq!(origin(&cache, &bytes), Origin::Compiled);
        }
    }
}
