//! Building a guest crate for `wasm32-unknown-unknown`, with whichever
//! toolchain this machine has.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

/// Variables an outer `cargo run` (or the user's shell) may set that would
/// point the inner build at the wrong compiler, target or directory.
const LEAKY_VARIABLES: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
];

/// How guest crates are compiled here.
pub enum Toolchain {
    /// A rustup toolchain with the `wasm32-unknown-unknown` target installed.
    Rustup { cargo: OsString },
    /// Debian's Rust with its std sources: std is built for the target on the fly.
    Debian,
}

impl fmt::Display for Toolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rustup { .. } => write!(f, "the rustup {TARGET} target"),
            Self::Debian => write!(
                f,
                "{DEBIAN_CARGO} and -Zbuild-std (no rustup {TARGET} target installed)"
            ),
        }
    }
}

impl Toolchain {
    /// Prefers an installed rustup target; falls back to Debian's toolchain.
    pub fn detect() -> Result<Self> {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .stderr(Stdio::null())
            .output();
        if let Ok(output) = installed {
            let listed = String::from_utf8_lossy(&output.stdout);
            if output.status.success() && listed.lines().any(|line| line.trim() == TARGET) {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                return Ok(Self::Rustup { cargo });
            }
        }
        if Path::new(DEBIAN_CARGO).is_file() {
            return Ok(Self::Debian);
        }
        bail!(
            "no wasm toolchain: run `rustup target add {TARGET}`, or install Debian's \
             rustc-web cargo-web rust-web-src rust-web-llvm lld-22"
        )
    }

    fn cargo_build(&self) -> Command {
        let mut command = match self {
            Self::Rustup { cargo } => Command::new(cargo),
            Self::Debian => {
                let mut command = Command::new(DEBIAN_CARGO);
                let path = std::env::var_os("PATH").unwrap_or_default();
                let mut search = vec![PathBuf::from("/usr/bin")];
                search.extend(std::env::split_paths(&path));
                if let Ok(joined) = std::env::join_paths(search) {
                    command.env("PATH", joined);
                }
                command.env("RUSTC_BOOTSTRAP", "1");
                command
            }
        };
        for variable in LEAKY_VARIABLES {
            command.env_remove(variable);
        }
        command.args(["build", "--release", "--target", TARGET]);
        command.arg("--message-format=json-render-diagnostics");
        if let Self::Debian = self {
            command.arg("-Zbuild-std=std,panic_abort");
        }
        command
    }

    /// Builds several packages of the workspace at `workspace` in one cargo
    /// invocation (so their final LTO links run in parallel); returns each
    /// package's core wasm, keyed by package name. Cargo unifies features
    /// across the packages of one invocation: callers group packages that may
    /// share features (plugins of the same world).
    pub fn build_packages(
        &self,
        workspace: &Path,
        packages: &[&str],
        target_dir: &Path,
    ) -> Result<BTreeMap<String, PathBuf>> {
        let mut command = self.cargo_build();
        command.current_dir(workspace);
        for package in packages {
            command.args(["--package", package]);
        }
        command.arg("--target-dir").arg(target_dir);
        let mut built = run_for_cdylibs(command)?;
        packages
            .iter()
            .map(|package| {
                let wasm = built
                    .remove(&package.replace('-', "_"))
                    .with_context(|| format!("the build produced no cdylib .wasm for `{package}`; is `crate-type = [\"cdylib\"]` set in [lib]?"))?;
                Ok((package.to_string(), wasm))
            })
            .collect()
    }

    /// Builds the crate of `manifest` (in its own workspace and target dir); returns its core wasm.
    pub fn build_manifest(&self, manifest: &Path) -> Result<PathBuf> {
        let mut command = self.cargo_build();
        command.arg("--manifest-path").arg(manifest);
        let built = run_for_cdylibs(command)?;
        match built.into_values().collect::<Vec<_>>().as_slice() {
            [wasm] => Ok(wasm.clone()),
            [] => bail!(
                "the build produced no cdylib .wasm; is `crate-type = [\"cdylib\"]` set in [lib]?"
            ),
            several => bail!(
                "the build produced {} cdylib .wasm files; expected one",
                several.len()
            ),
        }
    }
}

/// Runs a cargo build and returns the `.wasm` of each cdylib it produced,
/// keyed by library target name.
fn run_for_cdylibs(mut command: Command) -> Result<BTreeMap<String, PathBuf>> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut found = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str())
            .find(|name| name.ends_with(".wasm"));
        let name = message["target"]["name"].as_str();
        if let (Some(name), Some(wasm)) = (name, wasm) {
            found.insert(name.to_string(), PathBuf::from(wasm));
        }
    }
    Ok(found)
}
