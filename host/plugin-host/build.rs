//! Embeds every built-in plugin component found in `host/builtin/*.wasm`.
//!
//! The components are produced from `plugins/` by `cargo xtask plugins` and
//! committed, so building the host needs no wasm toolchain.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    embed_builtin_plugins();
    println!("cargo:rerun-if-changed=../../wit");
}

fn embed_builtin_plugins() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../builtin");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    name.strip_suffix(".wasm").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = String::from("/// Built-in plugin components: (file stem, bytes).\npub static BUILTIN_COMPONENTS: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let path = dir.join(format!("{name}.wasm"));
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("builtin_components.rs");
    if let Err(err) = std::fs::write(&out, code) {
        panic!("cannot write {}: {err}", out.display());
    }
}
