//! Repository tasks, run as `cargo xtask ...`.
//!
//! - `cargo xtask plugins [--check]`: build every guest plugin for wasm, turn
//!   each into a component, write the built-ins to `host/builtin/` and the test
//!   fixtures to `tests/fixtures/plugins/`, and record a hash of the sources;
//!   `--check` only verifies that the recorded hash matches the sources.
//! - `cargo xtask plugin PATH --out FILE.wasm`: build one plugin crate (e.g. a
//!   copy of `examples/custom-registry`) into a drop-in component.

mod component;
mod sources;
mod wasm_build;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use component::{Component, WorldKind};
use wasm_build::Toolchain;

/// A plugin crate of the `plugins/` workspace and what it must turn into.
struct PluginCrate {
    /// Output file stem, e.g. `oci` for `host/builtin/oci.wasm`.
    name: &'static str,
    /// Cargo package name.
    package: &'static str,
    /// The world the component must implement; `None` for the unknown-world
    /// and old-package fixtures.
    world: Option<WorldKind>,
}

/// Built-in plugins embedded in the host binary.
const BUILTINS: &[PluginCrate] = &[
    PluginCrate {
        name: "oci",
        package: "crowsnest-plugin-oci",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "dockerhub",
        package: "crowsnest-plugin-dockerhub",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "ghcr",
        package: "crowsnest-plugin-ghcr",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "quay",
        package: "crowsnest-plugin-quay",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "gitlab",
        package: "crowsnest-plugin-gitlab",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "harbor",
        package: "crowsnest-plugin-harbor",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "ecr",
        package: "crowsnest-plugin-ecr",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "gcr",
        package: "crowsnest-plugin-gcr",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "swr",
        package: "crowsnest-plugin-swr",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "acr",
        package: "crowsnest-plugin-acr",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "aliyun",
        package: "crowsnest-plugin-aliyun",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "tencent",
        package: "crowsnest-plugin-tencent",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "semver",
        package: "crowsnest-plugin-semver",
        world: Some(WorldKind::Strategy),
    },
    PluginCrate {
        name: "regex",
        package: "crowsnest-plugin-regex",
        world: Some(WorldKind::Strategy),
    },
    PluginCrate {
        name: "digest",
        package: "crowsnest-plugin-digest",
        world: Some(WorldKind::Strategy),
    },
    PluginCrate {
        name: "webhook",
        package: "crowsnest-plugin-webhook",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "ntfy",
        package: "crowsnest-plugin-ntfy",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "gotify",
        package: "crowsnest-plugin-gotify",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "slack",
        package: "crowsnest-plugin-slack",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "discord",
        package: "crowsnest-plugin-discord",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "teams",
        package: "crowsnest-plugin-teams",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "telegram",
        package: "crowsnest-plugin-telegram",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "pushover",
        package: "crowsnest-plugin-pushover",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "matrix",
        package: "crowsnest-plugin-matrix",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "googlechat",
        package: "crowsnest-plugin-googlechat",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "mattermost",
        package: "crowsnest-plugin-mattermost",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "rocketchat",
        package: "crowsnest-plugin-rocketchat",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "apprise",
        package: "crowsnest-plugin-apprise",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "email",
        package: "crowsnest-plugin-email",
        world: Some(WorldKind::Trigger),
    },
    PluginCrate {
        name: "mqtt",
        package: "crowsnest-plugin-mqtt",
        world: Some(WorldKind::Trigger),
    },
];

/// Hostile and malformed plugins for the host's sandbox tests (never embedded).
const FIXTURES: &[PluginCrate] = &[
    PluginCrate {
        name: "hostile-strategy",
        package: "crowsnest-fixture-hostile-strategy",
        world: Some(WorldKind::Strategy),
    },
    PluginCrate {
        name: "hostile-registry",
        package: "crowsnest-fixture-hostile-registry",
        world: Some(WorldKind::Registry),
    },
    PluginCrate {
        name: "unknown-world",
        package: "crowsnest-fixture-unknown-world",
        world: None,
    },
    PluginCrate {
        name: "old-package",
        package: "crowsnest-fixture-old-package",
        world: None,
    },
];

/// The fixture whose core module (before componentization) is also written as
/// `core-module.wasm`, for `plugins check` on something that is not a component.
const CORE_MODULE_SOURCE: &str = "hostile-strategy";

const USAGE: &str = "usage:
  cargo xtask plugins [--check]          build all plugins (or verify host/builtin/SOURCES.sha256)
  cargo xtask plugin PATH --out FILE     build one plugin crate into a component";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["plugins"] => build_all_plugins().map(|()| ExitCode::SUCCESS),
        ["plugins", "--check"] => check_sources(),
        ["plugin", rest @ ..] => {
            let (crate_dir, out) = parse_plugin_args(rest)?;
            build_one_plugin(&crate_dir, &out).map(|()| ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

fn parse_plugin_args(args: &[&str]) -> Result<(PathBuf, PathBuf)> {
    let mut crate_dir = None;
    let mut out = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--out" | "-o" => {
                let value = rest.next().context("--out needs a file name")?;
                out = Some(PathBuf::from(value));
            }
            other if other.starts_with('-') => bail!("unknown option `{other}`\n{USAGE}"),
            other if crate_dir.is_none() => crate_dir = Some(PathBuf::from(other)),
            other => bail!("unexpected argument `{other}`\n{USAGE}"),
        }
    }
    match (crate_dir, out) {
        (Some(crate_dir), Some(out)) => Ok((crate_dir, out)),
        _ => bail!("`plugin` needs a crate path and --out FILE.wasm\n{USAGE}"),
    }
}

/// The repository root (xtask lives in `<root>/xtask`).
fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn build_all_plugins() -> Result<()> {
    let root = repo_root();
    let workspace = root.join("plugins");
    let builtin_dir = root.join("host/builtin");
    let fixture_dir = root.join("tests/fixtures/plugins");
    let toolchain = Toolchain::detect()?;
    eprintln!("xtask: building plugins with {toolchain}");

    let plugins: Vec<(&PluginCrate, &PathBuf)> = BUILTINS
        .iter()
        .map(|p| (p, &builtin_dir))
        .chain(FIXTURES.iter().map(|p| (p, &fixture_dir)))
        .collect();
    let core_paths = build_grouped_by_world(&toolchain, &workspace, &plugins)?;

    let mut report = Vec::new();
    for (plugin, out_dir) in plugins {
        let core_path = core_paths
            .get(plugin.package)
            .with_context(|| format!("plugin `{}` was not built", plugin.name))?;
        let core =
            std::fs::read(core_path).with_context(|| format!("reading {}", core_path.display()))?;
        let component = Component::from_core_module(&core)
            .with_context(|| format!("componentizing `{}`", plugin.name))?;
        component
            .expect_world(plugin.world)
            .with_context(|| format!("plugin `{}`", plugin.name))?;
        let out = out_dir.join(format!("{}.wasm", plugin.name));
        write_file(&out, &component.bytes)?;
        if plugin.name == CORE_MODULE_SOURCE {
            write_file(&fixture_dir.join("core-module.wasm"), &core)?;
        }
        report.push((plugin.name, core.len(), component));
    }

    let digest = sources::digest(&root)?;
    write_file(
        &builtin_dir.join(sources::DIGEST_FILE),
        sources::render(&digest).as_bytes(),
    )?;

    println!(
        "{:<18} {:>10} {:>10}  world / exports",
        "plugin", "core", "component"
    );
    for (name, core_len, component) in &report {
        println!(
            "{name:<18} {core_len:>10} {:>10}  {} / {}",
            component.bytes.len(),
            component.world_label(),
            component.exports.join(", ")
        );
        if !component.imports.is_empty() {
            println!("{:<41}imports: {}", "", component.imports.join(", "));
        }
    }
    println!(
        "wrote {} (sources sha256 {digest})",
        builtin_dir.join(sources::DIGEST_FILE).display()
    );
    Ok(())
}

/// Builds the plugin crates in one cargo invocation per world, so the final
/// (LTO, single codegen unit) links run in parallel. Crates of different worlds
/// are kept apart because cargo would unify the SDK's world features across
/// them; crates without a world (fixtures with their own WIT) build alone.
fn build_grouped_by_world(
    toolchain: &Toolchain,
    workspace: &Path,
    plugins: &[(&PluginCrate, &PathBuf)],
) -> Result<BTreeMap<String, PathBuf>> {
    let mut groups: Vec<(Option<WorldKind>, Vec<&str>)> = Vec::new();
    for (plugin, _) in plugins {
        match groups
            .iter_mut()
            .find(|(world, _)| plugin.world.is_some() && *world == plugin.world)
        {
            Some((_, packages)) => packages.push(plugin.package),
            None => groups.push((plugin.world, vec![plugin.package])),
        }
    }
    let mut built = BTreeMap::new();
    for (world, packages) in groups {
        let paths = toolchain
            .build_packages(workspace, &packages, &workspace.join("target"))
            .with_context(|| format!("building {world:?} plugins {}", packages.join(", ")))?;
        built.extend(paths);
    }
    Ok(built)
}

fn check_sources() -> Result<ExitCode> {
    let root = repo_root();
    let recorded_path = root.join("host/builtin").join(sources::DIGEST_FILE);
    let recorded = match std::fs::read_to_string(&recorded_path) {
        Ok(text) => sources::parse(&text),
        Err(err) => {
            eprintln!(
                "xtask: cannot read {}: {err}; run `cargo xtask plugins`",
                recorded_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let actual = sources::digest(&root)?;
    let missing: Vec<String> = BUILTINS
        .iter()
        .map(|plugin| {
            root.join("host/builtin")
                .join(format!("{}.wasm", plugin.name))
        })
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if recorded.as_deref() != Some(actual.as_str()) || !missing.is_empty() {
        eprintln!(
            "xtask: the embedded plugins in host/builtin/ are stale: wit/ or plugins/ changed \
             since they were built (recorded {}, sources {actual}{}).\n\
             Run `cargo xtask plugins` and commit host/builtin/ and tests/fixtures/plugins/.",
            recorded.as_deref().unwrap_or("nothing"),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", missing.join(", "))
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("host/builtin/ matches wit/ and plugins/ (sha256 {actual})");
    Ok(ExitCode::SUCCESS)
}

fn build_one_plugin(crate_dir: &Path, out: &Path) -> Result<()> {
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is not a crate directory (no Cargo.toml)",
            crate_dir.display()
        );
    }
    let toolchain = Toolchain::detect()?;
    eprintln!("xtask: building {} with {toolchain}", crate_dir.display());
    let core_path = toolchain.build_manifest(&manifest)?;
    let core =
        std::fs::read(&core_path).with_context(|| format!("reading {}", core_path.display()))?;
    let component = Component::from_core_module(&core)
        .with_context(|| format!("componentizing {}", core_path.display()))?;
    if component.world.is_none() {
        bail!(
            "{} exports {} — not a crowsnest plugin world (registry-provider, version-strategy or trigger)",
            crate_dir.display(),
            component.exports.join(", ")
        );
    }
    write_file(out, &component.bytes)?;
    println!(
        "wrote {} ({} bytes, core {} bytes): {} / {}",
        out.display(),
        component.bytes.len(),
        core.len(),
        component.world_label(),
        component.exports.join(", ")
    );
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
