//! Docker's own credentials (`[credentials]`) end to end: a `config.json`
//! written by a real `docker login`, and credential helpers (shell scripts
//! speaking the documented `docker-credential-NAME get` protocol on a temp
//! PATH), in front of the real htpasswd registry of the test world, with
//! real containers on the shared engine.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crowsnest::model::ContainerObject;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1};
use crowsnest_testkit::scans::{self, assert_failed, container, Case};
use crowsnest_testkit::world::TestWorld;

fn test_world(test: &str) -> TestWorld {
    TestWorld::new(test)
}

fn watcher() -> String {
    crowsnest_testkit::config::watcher(Engine::shared(), "")
}

/// A container of `image:1.0` (with `1.1` pushed too) on `registry`.
fn updatable_container(world: &TestWorld, registry: &str, name: &str) -> (String, String) {
    let image = format!("{registry}/{}", world.repository(name));
    world.push_tags(&image, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let id = world.run(&format!("{image}:1.0"), &[]);
    (image, id)
}

fn assert_update(object: &ContainerObject) {
    scans::assert_tag_update(object, "1.0", "1.1", "minor");
}

/// `[credentials]` reading `docker_config`, plus `extra` lines.
fn credentials(docker_config: &Path, extra: &str) -> String {
    format!(
        "{}[credentials]\ndocker_config = \"{}\"\n{extra}\n",
        watcher(),
        docker_config.display()
    )
}

/// The directory of the tests' `docker-credential-*` scripts, put on PATH
/// once for this process (the scanner runs helpers from PATH, as Docker does).
fn helpers_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-helpers-")
            .tempdir()
            .expect("helpers dir")
            .keep();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.clone()];
        paths.extend(std::env::split_paths(&path));
        std::env::set_var("PATH", std::env::join_paths(paths).expect("PATH"));
        dir
    })
}

/// Writes the helper `docker-credential-NAME`: it appends the server URL it
/// is asked for to `NAME.log` in the helpers dir, then runs `body`.
fn helper(name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = helpers_dir();
    let log = dir.join(format!("{name}.log"));
    let script = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || {{ echo \"unexpected action $1\" >&2; exit 2; }}\nserver=$(cat)\necho \"$server\" >> '{}'\n{body}\n",
            log.display()
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    log
}

/// The server URLs a helper was asked for.
fn asked(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_login_serves_registries_configured_without_credentials() {
    let world = test_world("docker-login");
    let registry = world.registries.basic.clone();
    let (user, password) = world.registries.basic_user.clone();
    // A real `docker login` writes the test's own config.json.
    world.login(&registry, &user, &password);
    let docker_config = world.dir().join("docker/config.json");
    let written = std::fs::read_to_string(&docker_config).expect("docker login wrote config.json");
    assert!(written.contains(&registry), "{written}");
    let (image, id) = updatable_container(&world, &registry, "app");

    // No [registries] entry: the automatic instance uses Docker's login.
    let automatic = world.config_named("automatic.toml", &credentials(&docker_config, ""));
    let report = world.scan(&automatic, &[&image]).await;
    let object = container(&report, &id);
    assert_update(object);
    assert_eq!(object.image.registry.name, format!("{registry} as {user}"));

    // A configured instance without credentials takes it too, under its name.
    let configured = world.config_named(
        "configured.toml",
        &format!(
            "{}[registries.private]\nplugin = \"oci\"\nurl = \"http://{registry}\"\n",
            credentials(&docker_config, "")
        ),
    );
    let report = world.scan(&configured, &[&image]).await;
    let object = container(&report, &id);
    assert_update(object);
    assert_eq!(object.image.registry.name, "private");

    // A wrong password in config.json (user and password apart, keyed by
    // URL) is what is sent: unauthorized, never "up to date".
    let wrong = world.dir().join("wrong.json");
    std::fs::write(
        &wrong,
        format!(
            r#"{{"auths":{{"http://{registry}/v2/":{{"username":"{user}","password":"not-{password}"}}}}}}"#
        ),
    )
    .expect("write config.json");
    let report = world
        .scan(
            &world.config_named("wrong.toml", &credentials(&wrong, "")),
            &[&image],
        )
        .await;
    assert_failed(
        container(&report, &id),
        &["unauthorized"],
        Case::Insensitive,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helpers_run_on_the_host_only_when_allowed() {
    let world = test_world("cred-helper");
    let registry = world.registries.basic.clone();
    let (user, password) = world.registries.basic_user.clone();
    // The test's own Docker client logs in to push; crowsnest reads only the
    // config.json each case names.
    world.login(&registry, &user, &password);
    let (image, id) = updatable_container(&world, &registry, "app");
    let (second_image, second_id) = updatable_container(&world, &registry, "other");
    let name = format!("crowtest{}", std::process::id());
    let log = helper(
        &name,
        &format!(
            "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\""
        ),
    );
    let docker_config = world.dir().join("helpers.json");
    std::fs::write(
        &docker_config,
        format!(r#"{{"auths":{{"{registry}":{{}}}},"credHelpers":{{"{registry}":"{name}"}}}}"#),
    )
    .expect("write config.json");

    // Not allowed (the default): the helper never runs; no login at all.
    let disabled = world.config_named("disabled.toml", &credentials(&docker_config, ""));
    let report = world.scan(&disabled, &[&image]).await;
    assert_failed(
        container(&report, &id),
        &["unauthorized"],
        Case::Insensitive,
    );
    assert_eq!(
        asked(&log),
        Vec::<String>::new(),
        "helper ran while disabled"
    );

    // Allowed: asked once, with the server URL on stdin, for both containers.
    let enabled = world.config_named(
        "enabled.toml",
        &credentials(&docker_config, "helpers = true"),
    );
    let report = world.scan(&enabled, &[&image, &second_image]).await;
    assert_update(container(&report, &id));
    assert_update(container(&report, &second_id));
    assert_eq!(asked(&log), vec![registry.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_helpers_fail_only_their_registrys_containers() {
    let world = test_world("bad-helper");
    let registry = world.registries.basic.clone();
    let (user, password) = world.registries.basic_user.clone();
    // The test's own Docker client logs in to push; crowsnest reads only the
    // config.json each case names.
    world.login(&registry, &user, &password);
    let (image, id) = updatable_container(&world, &registry, "app");
    // Another registry in the same scan, with no helper involved.
    let (plain_image, plain_id) = updatable_container(&world, &world.registries.plain, "free");
    let pid = std::process::id();
    let slow = format!("slow{pid}");
    helper(&slow, "sleep 30");
    let failing = format!("failing{pid}");
    helper(
        &failing,
        "echo 'keychain is locked' >&2\necho 'error getting credentials'\nexit 3",
    );
    let garbled = format!("garbled{pid}");
    helper(&garbled, "echo 'not json'");
    let cases = [
        (slow.as_str(), vec!["timed out", "helper_timeout_secs"]),
        (
            failing.as_str(),
            vec![
                "exit status: 3",
                "keychain is locked",
                "error getting credentials",
            ],
        ),
        (garbled.as_str(), vec!["ServerURL", "JSON"]),
        (
            "absent-helper",
            vec!["docker-credential-absent-helper", "not found on PATH"],
        ),
    ];
    for (name, words) in cases {
        let docker_config = world.dir().join(format!("{name}.json"));
        std::fs::write(
            &docker_config,
            format!(r#"{{"credHelpers":{{"{registry}":"{name}"}}}}"#),
        )
        .expect("write config.json");
        let config = world.config_named(
            &format!("{name}.toml"),
            &credentials(&docker_config, "helpers = true\nhelper_timeout_secs = 1"),
        );
        let started = std::time::Instant::now();
        let report = world.scan(&config, &[&image, &plain_image]).await;
        let mut words = words;
        words.push(&registry);
        assert_failed(container(&report, &id), &words, Case::Sensitive);
        assert_update(container(&report, &plain_id));
        // The timeout is the helper's, not the scan's (a sanity bound, not a figure).
        assert!(
            started.elapsed().as_secs() < 25,
            "{name}: helper not killed"
        );
    }
}

#[test]
fn bad_credentials_settings_name_file_line_and_key() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("absent.json");
    let text = format!(
        "[credentials]\nhelpers = true\ndocker_config = \"{}\"\n",
        missing.display()
    );
    let error = crowsnest::config::Config::parse(&text, Some(Path::new("c.toml")), &[])
        .expect_err("a missing docker_config is an error")
        .to_string();
    assert!(
        error.starts_with("c.toml:3:") && error.contains("credentials.docker_config: cannot read"),
        "{error}"
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{").expect("write");
    let text = format!("[credentials]\ndocker_config = \"{}\"\n", broken.display());
    let error = crowsnest::config::Config::parse(&text, Some(Path::new("c.toml")), &[])
        .expect_err("a broken docker_config is an error")
        .to_string();
    assert!(error.contains("not a Docker config.json"), "{error}");
    let zero = "[credentials]\nhelper_timeout_secs = 0\n";
    let error = crowsnest::config::Config::parse(zero, Some(Path::new("c.toml")), &[])
        .expect_err("a zero timeout is an error")
        .to_string();
    assert!(
        error.starts_with("c.toml:2:") && error.contains("credentials.helper_timeout_secs"),
        "{error}"
    );
    let unknown = "[credentials]\nhelper = true\n";
    let error = crowsnest::config::Config::parse(unknown, Some(Path::new("c.toml")), &[])
        .expect_err("an unknown key is an error")
        .to_string();
    assert!(
        error.contains("c.toml:2:") && error.contains("helper"),
        "{error}"
    );
}
