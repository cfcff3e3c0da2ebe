//! Version-strategy choice and strategy labels end to end: real containers on
//! the test Docker daemon, real tags on the loopback registry, the built-in
//! strategy plugins in the wasm runtime, through `crowsnest::scan::Scanner`
//! and the `crowsnest scan` binary.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start` (see
//! `tests/common/mod.rs`). Every test pushes to repositories unique to it,
//! watches only containers labelled `crowsnest.watch=true` and limits its scans
//! to its own images, so the tests run in parallel with each other and with the
//! other end-to-end tests. Only 127.0.0.1 registries are ever looked up.

mod common;

use common::{container, images, TestWorld, BASE_1_0, BASE_1_1, BASE_2_0};
use crowsnest::model::{ContainerObject, ScanReport};

/// Opt-in label: the watcher below only sees containers carrying it.
const WATCH: (&str, &str) = ("crowsnest.watch", "true");

/// A watcher on the test daemon that watches opted-in containers only.
fn watcher() -> String {
    format!(
        "[watchers.local]\nsocket = \"{}\"\nwatch_by_default = false\n",
        common::docker_socket().display()
    )
}

/// Tags of a typical image repository: `1.20-alpine` must move to the newest
/// `-alpine`, never to `1.31-bookworm`.
const DISTRO_TAGS: [(&str, &str); 4] = [
    ("1.20-alpine", BASE_1_0),
    ("1.21-alpine", BASE_1_1),
    ("1.22-alpine", BASE_1_1),
    ("1.31-bookworm", BASE_2_0),
];

/// Pushes [`DISTRO_TAGS`] to a repository unique to `world`; returns the image name.
fn push_distro_tags(world: &TestWorld, name: &str) -> String {
    let image = format!("{}/{}", world.registries.plain, world.repository(name));
    for (tag, base) in DISTRO_TAGS {
        world.push(base, &format!("{image}:{tag}"));
    }
    image
}

/// Runs an opted-in container of `image` with `labels`.
fn run(world: &TestWorld, image: &str, labels: &[(&str, &str)]) -> String {
    let mut all = vec![WATCH];
    all.extend_from_slice(labels);
    world.run(image, &all)
}

fn assert_offer(report: &ScanReport, id: &str, from: &str, to: &str, diff: &str) {
    let object = container(report, id);
    assert!(
        object.error.is_none(),
        "{from} -> {to}: unexpected error {:?}",
        object.error
    );
    let kind = object
        .update_kind
        .as_ref()
        .unwrap_or_else(|| panic!("{from}: expected the offer {to}, got none: {object:#?}"));
    assert!(object.update_available);
    assert_eq!(kind.kind, "tag", "{from} -> {to}");
    assert_eq!(kind.local_value.as_deref(), Some(from));
    assert_eq!(
        kind.remote_value.as_deref(),
        Some(to),
        "{from}: wrong offer"
    );
    assert_eq!(kind.semver_diff.as_deref(), Some(diff), "{from} -> {to}");
    assert_eq!(
        object.result.as_ref().and_then(|r| r.tag.as_deref()),
        Some(to)
    );
}

fn assert_no_offer<'a>(report: &'a ScanReport, id: &str) -> &'a ContainerObject {
    let object = container(report, id);
    assert!(
        object.error.is_none(),
        "unexpected error {:?}",
        object.error
    );
    assert!(
        !object.update_available,
        "unexpected update {:?}",
        object.update_kind
    );
    assert!(object.update_kind.is_none());
    object
}

fn assert_error_names(report: &ScanReport, id: &str, words: &[&str]) {
    let object = container(report, id);
    assert!(
        !object.update_available,
        "a failed check never offers an update"
    );
    assert!(object.update_kind.is_none());
    let message = &object
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error, got {object:#?}"))
        .message;
    for word in words {
        assert!(
            message.contains(word),
            "error {message:?} does not name {word:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_exclude_and_transform_labels() {
    let world = TestWorld::new("strat-filters");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:1.20-alpine");
    let plain = run(&world, &current, &[]);
    let included = run(&world, &current, &[("crowsnest.tag.include", r"^1\.21-")]);
    let excluded = run(&world, &current, &[("crowsnest.tag.exclude", r"^1\.22")]);
    let nothing_left = run(
        &world,
        &current,
        &[("crowsnest.tag.include", "bookworm|slim")],
    );
    // The transform makes every distribution one line: the original tag is offered.
    let transformed = run(
        &world,
        &current,
        &[("crowsnest.tag.transform", r"^(\d+)\.(\d+)-.*$ => $1.$2")],
    );

    let config = world.config(&watcher());
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    assert_eq!(report.containers.len(), 5);
    assert_eq!(
        report.stats.repositories, 1,
        "one tag listing serves every container"
    );

    assert_offer(&report, &plain, "1.20-alpine", "1.22-alpine", "minor");
    assert_offer(&report, &included, "1.20-alpine", "1.21-alpine", "minor");
    assert_offer(&report, &excluded, "1.20-alpine", "1.21-alpine", "minor");
    let object = assert_no_offer(&report, &nothing_left);
    assert!(object.image.tag.semver);
    assert!(
        !object.image.digest.watch,
        "version tags are not digest-watched by default"
    );
    assert_offer(
        &report,
        &transformed,
        "1.20-alpine",
        "1.31-bookworm",
        "minor",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wud_labels_work_and_crowsnest_labels_win() {
    let world = TestWorld::new("strat-wud");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:1.20-alpine");
    let wud_include = run(&world, &current, &[("wud.tag.include", r"^1\.21-")]);
    let wud_exclude = run(&world, &current, &[("wud.tag.exclude", r"^1\.22")]);
    let wud_transform = run(
        &world,
        &current,
        &[("wud.tag.transform", r"^(\d+)\.(\d+)-.*$ => $1.$2")],
    );
    let both = run(
        &world,
        &current,
        &[
            ("wud.tag.include", r"^1\.21-"),
            ("crowsnest.tag.include", r"^1\.22-"),
        ],
    );
    let wud_digest = run(
        &world,
        &current,
        &[
            ("wud.watch.digest", "true"),
            ("crowsnest.tag.include", "^1.20-"),
        ],
    );

    let config = world.config(&watcher());
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert_eq!(report.containers.len(), 5);
    assert_offer(&report, &wud_include, "1.20-alpine", "1.21-alpine", "minor");
    assert_offer(&report, &wud_exclude, "1.20-alpine", "1.21-alpine", "minor");
    assert_offer(
        &report,
        &wud_transform,
        "1.20-alpine",
        "1.31-bookworm",
        "minor",
    );
    assert_offer(&report, &both, "1.20-alpine", "1.22-alpine", "minor");
    let object = assert_no_offer(&report, &wud_digest);
    assert!(
        object.image.digest.watch,
        "wud.watch.digest=true is honoured"
    );
    assert_eq!(object.image.digest.value, object.image.digest.repo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_label_fails_only_its_container_and_names_the_label() {
    let world = TestWorld::new("strat-invalid");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:1.20-alpine");
    let fine = run(&world, &current, &[]);
    let bad_include = run(&world, &current, &[("crowsnest.tag.include", "(unclosed")]);
    let bad_wud_exclude = run(&world, &current, &[("wud.tag.exclude", "[z-a]")]);
    let bad_transform = run(
        &world,
        &current,
        &[("crowsnest.tag.transform", "no arrow here")],
    );
    let bad_regex = run(
        &world,
        &current,
        &[
            ("crowsnest.strategy", "regex"),
            ("crowsnest.strategy.regex", "^(?P<major>\\d+"),
        ],
    );

    let config = world.config(&watcher());
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert_eq!(report.containers.len(), 5);
    assert_offer(&report, &fine, "1.20-alpine", "1.22-alpine", "minor");
    assert_error_names(&report, &bad_include, &["crowsnest.tag.include"]);
    assert_error_names(&report, &bad_wud_exclude, &["wud.tag.exclude"]);
    assert_error_names(&report, &bad_transform, &["crowsnest.tag.transform"]);
    assert_error_names(&report, &bad_regex, &["crowsnest.strategy.regex"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_labels_choose_regex_digest_or_fail_on_unknown() {
    let world = TestWorld::new("strat-labels");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:1.20-alpine");
    // Without a `compat` group the suffix is not compared: the regex strategy
    // really is in charge when it offers what semver never would.
    let regex = run(
        &world,
        &current,
        &[
            ("crowsnest.strategy", "regex"),
            (
                "crowsnest.strategy.regex",
                r"^(?P<major>\d+)\.(?P<minor>\d+)-",
            ),
        ],
    );
    let regex_compat = run(
        &world,
        &current,
        &[
            ("crowsnest.strategy", "regex"),
            (
                "crowsnest.strategy.regex",
                r"^(?P<major>\d+)\.(?P<minor>\d+)-(?P<compat>\w+)$",
            ),
        ],
    );
    let regex_without_pattern = run(&world, &current, &[("crowsnest.strategy", "regex")]);
    let digest = run(&world, &current, &[("crowsnest.strategy", "digest")]);
    let semver = run(&world, &current, &[("crowsnest.strategy", "semver")]);
    let unknown = run(&world, &current, &[("crowsnest.strategy", "calver-nope")]);

    let config = world.config(&watcher());
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert_eq!(report.containers.len(), 6);
    assert_offer(&report, &regex, "1.20-alpine", "1.31-bookworm", "minor");
    assert_offer(
        &report,
        &regex_compat,
        "1.20-alpine",
        "1.22-alpine",
        "minor",
    );
    assert_error_names(
        &report,
        &regex_without_pattern,
        &["crowsnest.strategy.regex", "regex"],
    );
    let object = assert_no_offer(&report, &digest);
    assert!(
        object.image.digest.watch,
        "the digest strategy watches the digest"
    );
    assert!(!object.image.tag.semver);
    assert!(
        object.image.digest.repo.is_some(),
        "remote digest looked up"
    );
    assert_eq!(object.image.digest.value, object.image.digest.repo);
    assert_offer(&report, &semver, "1.20-alpine", "1.22-alpine", "minor");
    assert_error_names(
        &report,
        &unknown,
        &["crowsnest.strategy", "calver-nope", "semver"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_beats_registry_key_beats_scan_default() {
    let world = TestWorld::new("strat-precedence");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:1.20-alpine");
    let unlabelled = run(&world, &current, &[]);
    let semver_label = run(&world, &current, &[("crowsnest.strategy", "semver")]);
    let regex_label = run(
        &world,
        &current,
        &[
            ("crowsnest.strategy", "regex"),
            (
                "crowsnest.strategy.regex",
                r"^(?P<major>\d+)\.(?P<minor>\d+)-(?P<compat>\w+)$",
            ),
        ],
    );

    // `[scan] strategy` alone.
    let scan_only = world.config_named(
        "scan-only.toml",
        &format!("[scan]\nstrategy = \"digest\"\n\n{}", watcher()),
    );
    let report = world
        .scanner(&scan_only)
        .await
        .scan(&images(&[&image]))
        .await;
    let object = assert_no_offer(&report, &unlabelled);
    assert!(
        object.image.digest.watch && !object.image.tag.semver,
        "[scan] strategy = digest applies"
    );
    assert_offer(
        &report,
        &semver_label,
        "1.20-alpine",
        "1.22-alpine",
        "minor",
    );
    assert_offer(&report, &regex_label, "1.20-alpine", "1.22-alpine", "minor");

    // A registry `strategy` (with its `regex`) beats `[scan] strategy`; the
    // container labels still beat both.
    let with_registry = world.config_named(
        "registry.toml",
        &format!(
            "[scan]\nstrategy = \"digest\"\n\n[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{}\"\nstrategy = \"regex\"\nregex = '^(?P<major>\\d+)\\.(?P<minor>\\d+)-'\n\n{}",
            world.registries.plain,
            watcher()
        ),
    );
    let report = world
        .scanner(&with_registry)
        .await
        .scan(&images(&[&image]))
        .await;
    assert_eq!(
        container(&report, &unlabelled).image.registry.name,
        "loopback"
    );
    assert_offer(
        &report,
        &unlabelled,
        "1.20-alpine",
        "1.31-bookworm",
        "minor",
    );
    assert_offer(
        &report,
        &semver_label,
        "1.20-alpine",
        "1.22-alpine",
        "minor",
    );
    assert_offer(&report, &regex_label, "1.20-alpine", "1.22-alpine", "minor");

    // A bad registry pattern fails the containers that use it, naming the key.
    let bad_registry_regex = world.config_named(
        "bad-regex.toml",
        &format!(
            "[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{}\"\nstrategy = \"regex\"\nregex = '(?P<major>'\n\n{}",
            world.registries.plain,
            watcher()
        ),
    );
    let report = world
        .scanner(&bad_registry_regex)
        .await
        .scan(&images(&[&image]))
        .await;
    assert_error_names(&report, &unlabelled, &["registry `loopback` key `regex`"]);
    assert_offer(
        &report,
        &semver_label,
        "1.20-alpine",
        "1.22-alpine",
        "minor",
    );
    assert_offer(&report, &regex_label, "1.20-alpine", "1.22-alpine", "minor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_configured_strategy_exits_2_naming_the_key() {
    let world = TestWorld::new("strat-config");
    let scan = world.config_named(
        "scan.toml",
        &format!("[scan]\nstrategy = \"nope\"\n\n{}", watcher()),
    );
    let output = world.crowsnest(&scan, &["scan", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scan.strategy"), "key in {stderr}");
    assert!(stderr.contains("nope"), "name in {stderr}");
    assert!(output.stdout.is_empty(), "no scan result is printed");

    let registry = world.config_named(
        "registry.toml",
        &format!(
            "[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{}\"\nstrategy = \"nope\"\n\n{}",
            world.registries.plain,
            watcher()
        ),
    );
    let output = world.crowsnest(&registry, &["scan", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("registries.loopback.strategy"),
        "key in {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_digest_label_sees_a_repushed_version_tag() {
    let world = TestWorld::new("strat-repush");
    let image = format!("{}/{}", world.registries.plain, world.repository("app"));
    world.push(BASE_1_0, &format!("{image}:1.25.2"));
    let first = world.push(BASE_1_0, &format!("{image}:1.25.3"));
    let watched = run(
        &world,
        &format!("{image}:1.25.3"),
        &[("crowsnest.watch.digest", "true")],
    );
    let unwatched = run(&world, &format!("{image}:1.25.3"), &[]);
    // The same version tag, rebuilt and pushed again.
    let second = world.push(BASE_1_1, &format!("{image}:1.25.3"));
    assert_ne!(first, second);

    let config = world.config(&watcher());
    let output = world.crowsnest(&config, &["scan", "--format", "json", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let containers: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("scan --format json prints an array");
    assert_eq!(containers.len(), 2, "{containers:#?}");
    let by_id = |id: &str| {
        containers
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("container {id} missing"))
    };

    let object = by_id(&watched);
    assert_eq!(object["error"], serde_json::Value::Null);
    assert_eq!(object["image"]["tag"]["semver"], true);
    assert_eq!(object["image"]["digest"]["watch"], true);
    assert_eq!(object["updateAvailable"], true, "{object:#}");
    assert_eq!(object["updateKind"]["kind"], "digest");
    assert_eq!(object["updateKind"]["localValue"], first.as_str());
    assert_eq!(object["updateKind"]["remoteValue"], second.as_str());
    assert_eq!(object["updateKind"]["semverDiff"], serde_json::Value::Null);
    assert_eq!(object["result"]["tag"], "1.25.3");

    // Version tags are not digest-watched unless asked.
    let object = by_id(&unwatched);
    assert_eq!(object["error"], serde_json::Value::Null);
    assert_eq!(object["image"]["digest"]["watch"], false);
    assert_eq!(object["updateAvailable"], false, "{object:#}");
    assert_eq!(object["updateKind"], serde_json::Value::Null);
}
