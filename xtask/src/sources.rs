//! The hash that ties the embedded components to their sources.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Written next to the built-ins: `host/builtin/SOURCES.sha256`.
pub const DIGEST_FILE: &str = "SOURCES.sha256";

/// Directories (relative to the repository root) whose contents the built-ins depend on.
const SOURCE_DIRS: &[&str] = &["wit", "plugins"];

/// SHA-256 over every file under `wit/` and `plugins/` (build output excluded):
/// sorted relative paths, each followed by its length and contents, so that a
/// renamed, added, removed or edited file changes the digest.
pub fn digest(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        collect(root, &root.join(dir), &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    for relative in &files {
        let contents =
            std::fs::read(root.join(relative)).with_context(|| format!("reading {relative}"))?;
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The file's text for `digest`.
pub fn render(digest: &str) -> String {
    format!("{digest}  wit/ plugins/\n")
}

/// The digest recorded in a file written by [`render`].
pub fn parse(text: &str) -> Option<String> {
    text.split_whitespace().next().map(str::to_string)
}

/// Collects files under `dir` as `/`-separated paths relative to `root`,
/// skipping cargo `target` directories.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path: PathBuf = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if entry.file_name() != "target" {
                collect(root, &path, files)?;
            }
        } else if file_type.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(relative.join("/"));
        }
    }
    Ok(())
}
