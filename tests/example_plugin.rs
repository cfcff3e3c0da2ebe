//! The example drop-in plugin (`examples/custom-registry`) as a user installs
//! it: built by `cargo xtask plugin` (scripts/test.sh does that and exports
//! CROWSNEST_TEST_EXAMPLE_PLUGIN), dropped into `plugins.d` with a grants file,
//! listed by `plugins list`, and used by `scan` against a real registry and a
//! real container.

use std::path::PathBuf;

use crowsnest_testkit::images::{E2E_1_0, E2E_1_1};
use crowsnest_testkit::scans::{json_container, json_containers};
use crowsnest_testkit::world::TestWorld;

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

#[test]
fn example_plugin_is_listed_and_used_as_a_drop_in() {
    let plugin = example_plugin();
    let world = TestWorld::new("example-plugin").with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"));
    let host = world.registries.plain.clone();
    let plugins = world.dir().join("plugins.d");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&plugin, plugins.join("acme.wasm")).unwrap();
    std::fs::write(
        plugins.join("acme.toml"),
        format!("allowed_hosts = [\"{host}\"]\n"),
    )
    .unwrap();
    let config = world.config(&format!(
        "[watchers.local]\nwatch_by_default = false\nwatch_all = true\n\n\
         [registries.acme]\nplugin = \"acme\"\nurl = \"http://{host}\"\n"
    ));

    // Listed next to the built-ins, from its file.
    let out = world.crowsnest(&config, &["plugins", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = listing
        .lines()
        .find(|line| line.starts_with("acme "))
        .unwrap_or_else(|| panic!("acme not listed:\n{listing}"));
    assert!(
        row.contains("registry-provider") && row.contains("plugins.d/acme.wasm"),
        "{row}"
    );

    // A repository with a release, a newer release, and work-in-progress tags.
    let repository = world.plain_image("app");
    world.push_tags(
        &repository,
        &[
            ("1.0", E2E_1_0),
            ("1.1", E2E_1_1),
            ("1.0-wip", E2E_1_0),
            ("1.1-wip", E2E_1_1),
        ],
    );
    let watched = [("crowsnest.watch", "true")];
    let release = world.create(&format!("{repository}:1.0"), &watched);
    let wip = world.create(&format!("{repository}:1.0-wip"), &watched);
    let out = world.crowsnest(
        &config,
        &["scan", "--format", "json", "--image", &repository],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let containers = json_containers(&out.stdout);
    let find = |id: &str| json_container(&containers, id);
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
