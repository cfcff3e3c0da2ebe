//! Version-strategy choice and strategy labels end to end: real containers on
//! the test Docker daemon, real tags on the loopback registry, the built-in
//! strategy plugins in the wasm runtime, through `crowsnest::scan::Scanner`
//! and the `crowsnest scan` binary.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start` (the
//! world of `crowsnest_testkit::world`). Every test pushes to repositories
//! unique to it, watches only containers labelled `crowsnest.watch=true` and
//! limits its scans to its own images, so the tests run in parallel with each
//! other and with the other end-to-end tests. Only 127.0.0.1 registries are
//! ever looked up.

use crowsnest::model::{ContainerObject, ScanReport};
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1, E2E_2_0};
use crowsnest_testkit::scans::{
    assert_failed, assert_no_update, assert_tag_update, container, images, json_container,
    json_containers, Case,
};
use crowsnest_testkit::world::TestWorld;

/// Opt-in label: the watcher below only sees containers carrying it.
const WATCH: (&str, &str) = ("crowsnest.watch", "true");

/// A world for `test` that can run the `crowsnest` binary.
fn test_world(test: &str) -> TestWorld {
    TestWorld::new(test).with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"))
}

/// A watcher on the test daemon that watches opted-in containers only.
fn watcher() -> String {
    crowsnest_testkit::config::watcher(Engine::shared(), "watch_by_default = false")
}

/// The tag every container of the distribution repository runs.
const CURRENT: &str = "1.20-alpine";

/// Tags of a typical image repository: `1.20-alpine` must move to the newest
/// `-alpine`, never to `1.31-bookworm`.
const DISTRO_TAGS: [(&str, &str); 4] = [
    (CURRENT, E2E_1_0),
    ("1.21-alpine", E2E_1_1),
    ("1.22-alpine", E2E_1_1),
    ("1.31-bookworm", E2E_2_0),
];

/// Pushes [`DISTRO_TAGS`] to a repository unique to `world`; returns the image name.
fn push_distro_tags(world: &TestWorld, name: &str) -> String {
    let image = world.plain_image(name);
    world.push_tags(&image, &DISTRO_TAGS);
    image
}

/// Runs an opted-in container of `image` with `labels`.
fn run(world: &TestWorld, image: &str, labels: &[(&str, &str)]) -> String {
    let mut all = vec![WATCH];
    all.extend_from_slice(labels);
    world.run(image, &all)
}

/// What the check of a container running [`CURRENT`] must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A minor tag update to this tag.
    Offer(&'static str),
    /// No update. `semver`: whether the current tag reads as a version (not
    /// checked when `None`); `digest_watched`: whether the digest is watched,
    /// and then looked up and equal to the local one.
    NoOffer {
        semver: Option<bool>,
        digest_watched: bool,
    },
    /// The check fails with an error naming every one of these.
    Error(&'static [&'static str]),
}

impl Expect {
    /// Checks the container `id` of `report`.
    fn check(self, report: &ScanReport, id: &str) {
        let object = container(report, id);
        match self {
            Expect::Offer(to) => assert_tag_update(object, CURRENT, to, "minor"),
            Expect::NoOffer {
                semver,
                digest_watched,
            } => {
                assert_no_update(object);
                if let Some(semver) = semver {
                    assert_eq!(
                        object.image.tag.semver, semver,
                        "the tag reads as a version"
                    );
                }
                assert_digest_watched(object, digest_watched);
            }
            Expect::Error(words) => assert_failed(object, words, Case::Sensitive),
        }
    }
}

/// Whether the digest is watched; a watched one was looked up and is the local one.
fn assert_digest_watched(object: &ContainerObject, watched: bool) {
    let digest = &object.image.digest;
    assert_eq!(digest.watch, watched, "digest watched");
    if watched {
        assert!(digest.repo.is_some(), "remote digest looked up");
        assert_eq!(digest.value, digest.repo);
    }
}

/// One container: its name in failure reports, its labels, what its check must come to.
type LabelCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Expect,
);

/// Each container runs [`CURRENT`] with the labels of its case.
const LABEL_CASES: &[LabelCase] = &[
    // Tag filters and transforms.
    ("no label", &[], Expect::Offer("1.22-alpine")),
    (
        "crowsnest.tag.include",
        &[("crowsnest.tag.include", r"^1\.21-")],
        Expect::Offer("1.21-alpine"),
    ),
    (
        "crowsnest.tag.exclude",
        &[("crowsnest.tag.exclude", r"^1\.22")],
        Expect::Offer("1.21-alpine"),
    ),
    (
        "include leaving nothing",
        &[("crowsnest.tag.include", "bookworm|slim")],
        // Version tags are not digest-watched by default.
        Expect::NoOffer {
            semver: Some(true),
            digest_watched: false,
        },
    ),
    (
        // The transform makes every distribution one line: the original tag is offered.
        "crowsnest.tag.transform",
        &[("crowsnest.tag.transform", r"^(\d+)\.(\d+)-.*$ => $1.$2")],
        Expect::Offer("1.31-bookworm"),
    ),
    // What's Up Docker's labels work; crowsnest's win.
    (
        "wud.tag.include",
        &[("wud.tag.include", r"^1\.21-")],
        Expect::Offer("1.21-alpine"),
    ),
    (
        "wud.tag.exclude",
        &[("wud.tag.exclude", r"^1\.22")],
        Expect::Offer("1.21-alpine"),
    ),
    (
        "wud.tag.transform",
        &[("wud.tag.transform", r"^(\d+)\.(\d+)-.*$ => $1.$2")],
        Expect::Offer("1.31-bookworm"),
    ),
    (
        "crowsnest.tag.include over wud.tag.include",
        &[
            ("wud.tag.include", r"^1\.21-"),
            ("crowsnest.tag.include", r"^1\.22-"),
        ],
        Expect::Offer("1.22-alpine"),
    ),
    (
        "wud.watch.digest",
        &[
            ("wud.watch.digest", "true"),
            ("crowsnest.tag.include", "^1.20-"),
        ],
        Expect::NoOffer {
            semver: None,
            digest_watched: true,
        },
    ),
    // An invalid label fails only its container, naming the label.
    (
        "bad crowsnest.tag.include",
        &[("crowsnest.tag.include", "(unclosed")],
        Expect::Error(&["crowsnest.tag.include"]),
    ),
    (
        "bad wud.tag.exclude",
        &[("wud.tag.exclude", "[z-a]")],
        Expect::Error(&["wud.tag.exclude"]),
    ),
    (
        "bad crowsnest.tag.transform",
        &[("crowsnest.tag.transform", "no arrow here")],
        Expect::Error(&["crowsnest.tag.transform"]),
    ),
    (
        "bad crowsnest.strategy.regex",
        &[
            ("crowsnest.strategy", "regex"),
            ("crowsnest.strategy.regex", "^(?P<major>\\d+"),
        ],
        Expect::Error(&["crowsnest.strategy.regex"]),
    ),
    // Strategy labels choose regex, digest or semver, or fail on an unknown one.
    (
        // Without a `compat` group the suffix is not compared: the regex
        // strategy really is in charge when it offers what semver never would.
        "regex without compat",
        &[
            ("crowsnest.strategy", "regex"),
            (
                "crowsnest.strategy.regex",
                r"^(?P<major>\d+)\.(?P<minor>\d+)-",
            ),
        ],
        Expect::Offer("1.31-bookworm"),
    ),
    (
        "regex with compat",
        &[
            ("crowsnest.strategy", "regex"),
            (
                "crowsnest.strategy.regex",
                r"^(?P<major>\d+)\.(?P<minor>\d+)-(?P<compat>\w+)$",
            ),
        ],
        Expect::Offer("1.22-alpine"),
    ),
    (
        "regex without a pattern",
        &[("crowsnest.strategy", "regex")],
        Expect::Error(&["crowsnest.strategy.regex", "regex"]),
    ),
    (
        "digest",
        &[("crowsnest.strategy", "digest")],
        Expect::NoOffer {
            semver: Some(false),
            digest_watched: true,
        },
    ),
    (
        "semver",
        &[("crowsnest.strategy", "semver")],
        Expect::Offer("1.22-alpine"),
    ),
    (
        "unknown strategy",
        &[("crowsnest.strategy", "calver-nope")],
        Expect::Error(&["crowsnest.strategy", "calver-nope", "semver"]),
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_choose_the_strategy_and_filter_the_tags() {
    let world = test_world("strat-labels");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:{CURRENT}");
    let ids: Vec<String> = LABEL_CASES
        .iter()
        .map(|(_, labels, _)| run(&world, &current, labels))
        .collect();

    let config = world.config(&watcher());
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    assert_eq!(report.containers.len(), LABEL_CASES.len());
    assert_eq!(
        report.stats.repositories, 1,
        "one tag listing serves every container"
    );
    let cases: Vec<(&LabelCase, &String)> = LABEL_CASES.iter().zip(&ids).collect();
    check_each(
        &cases,
        |((name, _, _), _)| name.to_string(),
        |((_, _, expect), id)| {
            let report = &report;
            async move { expect.check(report, id) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_beats_registry_key_beats_scan_default() {
    let world = test_world("strat-precedence");
    let image = push_distro_tags(&world, "app");
    let current = format!("{image}:{CURRENT}");
    let containers = [
        ("unlabelled", run(&world, &current, &[])),
        (
            "semver label",
            run(&world, &current, &[("crowsnest.strategy", "semver")]),
        ),
        (
            "regex label",
            run(
                &world,
                &current,
                &[
                    ("crowsnest.strategy", "regex"),
                    (
                        "crowsnest.strategy.regex",
                        r"^(?P<major>\d+)\.(?P<minor>\d+)-(?P<compat>\w+)$",
                    ),
                ],
            ),
        ),
    ];
    let plain = &world.registries.plain;
    // (config file, its text, the registry of the unlabelled container, what
    // each container's check comes to, in `containers` order)
    let configs = [
        // `[scan] strategy` alone.
        (
            "scan-only.toml",
            format!("[scan]\nstrategy = \"digest\"\n\n{}", watcher()),
            None,
            [
                Expect::NoOffer {
                    semver: Some(false),
                    digest_watched: true,
                },
                Expect::Offer("1.22-alpine"),
                Expect::Offer("1.22-alpine"),
            ],
        ),
        // A registry `strategy` (with its `regex`) beats `[scan] strategy`;
        // the container labels still beat both.
        (
            "registry.toml",
            format!(
                "[scan]\nstrategy = \"digest\"\n\n[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{plain}\"\nstrategy = \"regex\"\nregex = '^(?P<major>\\d+)\\.(?P<minor>\\d+)-'\n\n{}",
                watcher()
            ),
            Some("loopback"),
            [
                Expect::Offer("1.31-bookworm"),
                Expect::Offer("1.22-alpine"),
                Expect::Offer("1.22-alpine"),
            ],
        ),
        // A bad registry pattern fails the containers that use it, naming the key.
        (
            "bad-regex.toml",
            format!(
                "[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{plain}\"\nstrategy = \"regex\"\nregex = '(?P<major>'\n\n{}",
                watcher()
            ),
            None,
            [
                Expect::Error(&["registry `loopback` key `regex`"]),
                Expect::Offer("1.22-alpine"),
                Expect::Offer("1.22-alpine"),
            ],
        ),
    ];
    for (file, text, registry, expected) in &configs {
        let config = world.config_named(file, text);
        let report = world.scan(&config, &[&image]).await;
        if let Some(registry) = registry {
            assert_eq!(
                &container(&report, &containers[0].1).image.registry.name,
                registry,
                "{file}"
            );
        }
        let cases: Vec<_> = containers.iter().zip(expected).collect();
        check_each(
            &cases,
            |((name, _), _)| format!("{file}: {name}"),
            |((_, id), expect)| {
                let report = &report;
                async move { expect.check(report, id) }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_configured_strategy_exits_2_naming_the_key() {
    let world = test_world("strat-config");
    // (config file, its text, what stderr must name)
    let cases = [
        (
            "scan.toml",
            format!("[scan]\nstrategy = \"nope\"\n\n{}", watcher()),
            &["scan.strategy", "nope"][..],
        ),
        (
            "registry.toml",
            format!(
                "[registries.loopback]\nplugin = \"oci\"\nurl = \"http://{}\"\nstrategy = \"nope\"\n\n{}",
                world.registries.plain,
                watcher()
            ),
            &["registries.loopback.strategy"][..],
        ),
    ];
    for (file, text, words) in &cases {
        let config = world.config_named(file, text);
        let output = world.crowsnest(&config, &["scan", "--format", "json"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        for word in *words {
            assert!(stderr.contains(word), "{file}: `{word}` in {stderr}");
        }
        assert!(
            output.stdout.is_empty(),
            "{file}: no scan result is printed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_digest_label_sees_a_repushed_version_tag() {
    let world = test_world("strat-repush");
    let image = world.plain_image("app");
    world.push(E2E_1_0, &format!("{image}:1.25.2"));
    let first = world.push(E2E_1_0, &format!("{image}:1.25.3"));
    let watched = run(
        &world,
        &format!("{image}:1.25.3"),
        &[("crowsnest.watch.digest", "true")],
    );
    let unwatched = run(&world, &format!("{image}:1.25.3"), &[]);
    // The same version tag, rebuilt and pushed again.
    let second = world.push(E2E_1_1, &format!("{image}:1.25.3"));
    assert_ne!(first, second);

    let config = world.config(&watcher());
    let output = world.crowsnest(&config, &["scan", "--format", "json", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let containers = json_containers(&output.stdout);
    assert_eq!(containers.len(), 2, "{containers:#?}");
    let by_id = |id: &str| json_container(&containers, id);

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
