//! The example drop-in plugin (`examples/custom-registry`) as a user installs
//! it: built by `cargo xtask plugin` (scripts/test.sh does that and exports
//! CROWSNEST_TEST_EXAMPLE_PLUGIN), dropped into `plugins.d` with a grants file,
//! listed by `plugins list`, and used by `scan` against a real registry and a
//! real container.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example_plugin() -> PathBuf {
    let path = std::env::var_os("CROWSNEST_TEST_EXAMPLE_PLUGIN").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "CROWSNEST_TEST_EXAMPLE_PLUGIN is not set: build the example with \
             `cargo xtask plugin examples/custom-registry --out target/test-env/plugins/acme.wasm` (scripts/test.sh does)"
        )
    });
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

fn registry() -> String {
    std::env::var("CROWSNEST_TEST_REGISTRY_PLAIN")
        .expect("CROWSNEST_TEST_REGISTRY_PLAIN is not set: run scripts/registries.sh start and source target/test-env/registries.env")
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn crowsnest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("CROWSNEST_CONFIG")
        .output()
        .expect("run crowsnest")
}

/// Removes the containers this test started, however it ends.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

#[test]
fn example_plugin_is_listed_and_used_as_a_drop_in() {
    let plugin = example_plugin();
    let host = registry().trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.d");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&plugin, plugins.join("acme.wasm")).unwrap();
    std::fs::write(plugins.join("acme.toml"), format!("allowed_hosts = [\"{host}\"]\n")).unwrap();

    // Listed next to the built-ins, from its file.
    let out = crowsnest(dir.path(), &["plugins", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listing}{}", String::from_utf8_lossy(&out.stderr));
    let row = listing
        .lines()
        .find(|line| line.starts_with("acme "))
        .unwrap_or_else(|| panic!("acme not listed:\n{listing}"));
    assert!(row.contains("registry-provider") && row.contains("plugins.d/acme.wasm"), "{row}");

    // A repository with a release, a newer release, and work-in-progress tags.
    let repository = format!("{host}/acme-example-{}/app", std::process::id());
    for (source, tag) in [("1.0", "1.0"), ("1.1", "1.1"), ("1.0", "1.0-wip"), ("2.0", "1.1-wip")] {
        run("docker", &["tag", &format!("crowsnest-test/busybox:{source}"), &format!("{repository}:{tag}")]);
        run("docker", &["push", "-q", &format!("{repository}:{tag}")]);
    }
    let suffix = std::process::id();
    let release = format!("acme-release-{suffix}");
    let wip = format!("acme-wip-{suffix}");
    let _guard = Containers(vec![release.clone(), wip.clone()]);
    for (name, tag) in [(&release, "1.0"), (&wip, "1.0-wip")] {
        run(
            "docker",
            &[
                "create", "--network", "none", "--name", name, "--label", "crowsnest.watch=true",
                "--label", "crowsnest-test=1", &format!("{repository}:{tag}"), "sleep", "60",
            ],
        );
    }
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[watchers.local]\nwatch_by_default = false\nwatch_all = true\n\n\
             [registries.acme]\nplugin = \"acme\"\nurl = \"http://{host}\"\n\n\
             [store]\npath = \"state.db\"\ntag_cache_ttl = 0\n"
        ),
    )
    .unwrap();
    let out = crowsnest(dir.path(), &["scan", "--format", "json", "--image", &repository]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let containers: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let find = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in scan: {stdout}"))
    };
    let release = find(&release);
    assert_eq!(release["image"]["registry"]["name"], "acme", "{release:#}");
    assert_eq!(release["error"], serde_json::Value::Null, "{release:#}");
    assert_eq!(release["updateAvailable"], true, "{release:#}");
    assert_eq!(release["result"]["tag"], "1.1", "{release:#}");
    // The plugin drops `-wip` tags, so the generic plugin's answer (1.1-wip) is never offered.
    let wip = find(&wip);
    assert_eq!(wip["image"]["registry"]["name"], "acme", "{wip:#}");
    assert_eq!(wip["updateAvailable"], false, "{wip:#}");
}
