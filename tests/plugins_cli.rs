//! `crowsnest plugins list|check` as a user runs them: the real binary, the
//! embedded built-ins, fixture components built by `cargo xtask plugins`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crowsnest_testkit::binary::{text, Crowsnest};
use crowsnest_testkit::plugins::fixture;

/// Run the binary in an empty working directory with a private cache.
fn crowsnest(dir: &Path, args: &[&str]) -> Output {
    Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"))
        .command(dir)
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .expect("run crowsnest")
}

#[test]
fn list_shows_the_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let out = crowsnest(dir.path(), &["plugins", "list"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let header = stdout.lines().next().unwrap();
    for column in ["NAME", "KIND", "VERSION", "SOURCE", "SHA256"] {
        assert!(header.contains(column), "{header}");
    }
    for (name, kind) in [
        ("oci", "registry-provider"),
        ("dockerhub", "registry-provider"),
        ("semver", "version-strategy"),
        ("regex", "version-strategy"),
        ("digest", "version-strategy"),
        ("webhook", "trigger"),
    ] {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], kind, "{row}");
        assert_eq!(cells[3], "builtin", "{row}");
        assert_eq!(cells[4].len(), 64, "sha256 column: {row}");
        assert!(cells[4].chars().all(|c| c.is_ascii_hexdigit()), "{row}");
    }
}

#[test]
fn list_json_and_dropins_with_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.d");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        fixture("hostile-strategy.wasm"),
        plugins.join("hostile.wasm"),
    )
    .unwrap();
    std::fs::write(plugins.join("garbage.wasm"), b"this is not wasm").unwrap();
    let out = crowsnest(dir.path(), &["plugins", "list", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugins_json = json["plugins"].as_array().unwrap();
    let hostile = plugins_json
        .iter()
        .find(|p| {
            p["source"]
                .as_str()
                .unwrap_or_default()
                .ends_with("hostile.wasm")
        })
        .unwrap_or_else(|| panic!("drop-in not listed: {json:#}"));
    assert_eq!(hostile["kind"], "version-strategy");
    let skipped = json["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{json:#}");
    assert!(skipped[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("garbage.wasm"));
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{json:#}"
    );
    // The built-ins are still all there.
    assert!(plugins_json.len() >= 7, "{json:#}");
}

#[test]
fn check_accepts_a_good_component() {
    let dir = tempfile::tempdir().unwrap();
    let out = crowsnest(
        dir.path(),
        &[
            "plugins",
            "check",
            fixture("hostile-strategy.wasm").to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("valid version-strategy plugin"), "{stdout}");
    assert!(
        stdout.contains("crowsnest:plugin/version-strategy@0.2.0"),
        "{stdout}"
    );
    assert!(stdout.contains("name:"), "{stdout}");
}

#[test]
fn check_rejects_what_is_not_a_plugin() {
    let scratch = tempfile::tempdir().unwrap();
    let garbage = scratch.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\x7fELF not a plugin at all").unwrap();
    let cases: [(PathBuf, &str); 5] = [
        (garbage, "not a WebAssembly file"),
        (
            fixture("core-module.wasm"),
            "a core WebAssembly module, not a component",
        ),
        (
            fixture("unknown-world.wasm"),
            "implements no crowsnest world",
        ),
        (
            fixture("old-package.wasm"),
            "built against `crowsnest:plugin@0.1.0`, but this host speaks `crowsnest:plugin@0.2.0`",
        ),
        (
            PathBuf::from("/nonexistent/plugin.wasm"),
            "cannot read file",
        ),
    ];
    for (file, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = crowsnest(dir.path(), &["plugins", "check", file.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        let case = file.display();
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains("not a valid crowsnest plugin"),
            "{case}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{case}: expected `{expected}` in: {stderr}"
        );
    }
}

#[test]
fn bad_config_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[plugins]\ndir = \"x\"\nbogus_key = 1\n",
    )
    .unwrap();
    let out = crowsnest(dir.path(), &["plugins", "list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config.toml:3"), "{stderr}");
    assert!(stderr.contains("bogus_key"), "{stderr}");
}
