//! End-to-end scans against a real Docker engine and real distribution
//! registries on loopback (the world of `crowsnest_testkit::world`).
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`. Every test uses repositories unique to it and
//! limits its scans to its own images (or, for full scans, to containers it
//! labelled `crowsnest.watch=true` under `watch_by_default = false`), so the
//! tests run in parallel. Docker Hub is always pointed at the loopback token
//! registry: no scan ever leaves the machine.

use crowsnest::model::{CheckStatus, ContainerObject, ScanRequest};
use crowsnest::oci::{MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST};
use crowsnest::scan::Scanner;
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::engine::{self, Engine};
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1, E2E_2_0};
use crowsnest_testkit::registry::{sha256_digest, CountingProxy, Registries};
use crowsnest_testkit::scans::{self, assert_failed, container, find, images, Case};
use crowsnest_testkit::world::{TestWorld, WORLD_LABEL};

/// A world for `test` that can run the `crowsnest` binary.
fn test_world(test: &str) -> TestWorld {
    TestWorld::new(test).with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"))
}

/// A watcher on the test daemon, plus extra TOML.
fn watcher(extra: &str) -> String {
    crowsnest_testkit::config::watcher(Engine::shared(), extra)
}

/// A tag update, and the current tag reads as a version.
fn assert_tag_update(object: &ContainerObject, from: &str, to: &str, diff: &str) {
    scans::assert_tag_update(object, from, to, diff);
    assert_eq!(object.image.tag.value.as_deref(), Some(from));
    assert!(object.image.tag.semver);
}

/// No update: the newest tag is the current one.
fn assert_up_to_date(object: &ContainerObject, tag: &str) {
    scans::assert_no_update(object);
    assert_eq!(
        object.result.as_ref().and_then(|r| r.tag.as_deref()),
        Some(tag)
    );
}

/// A scanner of `world` watching the test engine.
async fn local_scanner(world: &TestWorld) -> Scanner {
    world.scanner(&world.config(&watcher(""))).await
}

/// A config watching the test engine (`local`) and an engine that is not
/// there (`ghost`).
fn local_and_ghost(world: &TestWorld) -> std::path::PathBuf {
    let ghost = world.dir().join("no-such-dir/docker.sock");
    world.config(&format!(
        "{}[watchers.ghost]\nsocket = \"{}\"\n",
        watcher(""),
        ghost.display()
    ))
}

/// A failed check whose error mentions `words` (in any case).
fn assert_error_mentions(object: &ContainerObject, words: &[&str]) {
    assert_failed(object, words, Case::Insensitive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_update_found_and_none_found() {
    let world = test_world("update");
    let plain = world.registries.plain.clone();
    let app = world.plain_image("app");
    let lib = world.plain_image("lib");
    world.push_tags(
        &app,
        &[("1.0", E2E_1_0), ("1.1", E2E_1_1), ("2.0", E2E_2_0)],
    );
    world.push_tags(&lib, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let old = world.run(&format!("{app}:1.0"), &[]);
    let newest = world.run(&format!("{app}:2.0"), &[]);
    let minor = world.run(
        &format!("{lib}:1.0"),
        &[(
            "crowsnest.link.template",
            "https://example.test/v${major}.${minor}",
        )],
    );

    let scanner = local_scanner(&world).await;
    let report = scanner.scan(&images(&[&app, &lib])).await;
    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    assert_eq!(report.containers.len(), 3);
    assert_eq!(report.stats.repositories, 2);

    let old = container(&report, &old);
    assert_tag_update(old, "1.0", "2.0", "major");
    assert_eq!(old.watcher, "local");
    assert_eq!(old.status, "running");
    assert_eq!(
        old.image.registry.name, plain,
        "an unconfigured loopback registry gets an automatic instance"
    );
    assert_eq!(old.image.registry.url, format!("http://{plain}/v2"));
    assert_eq!(old.image.registry.lookup_image, app);
    assert_eq!(old.image.name, world.repository("app"));
    assert_eq!(old.image.reference, format!("{app}:1.0"));
    assert_eq!(old.image.architecture, "amd64");
    assert_eq!(old.image.os, "linux");
    assert!(
        !old.image.digest.watch,
        "version tags are not digest-watched"
    );
    assert!(old
        .image
        .digest
        .value
        .as_deref()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(old.labels.get(WORLD_LABEL), Some(&world.id));

    assert_up_to_date(container(&report, &newest), "2.0");

    let minor = container(&report, &minor);
    assert_tag_update(minor, "1.0", "1.1", "minor");
    assert_eq!(
        minor.result.as_ref().and_then(|r| r.link.as_deref()),
        Some("https://example.test/v1.1")
    );

    // The results are in the store.
    let stored: Vec<ContainerObject> = scanner
        .store()
        .list_containers()
        .await
        .expect("store readable");
    assert_eq!(find(&stored, &old.id), old);
}

/// Pushes `BASE` (already pushed as `{repository}:src-{tag}`) plus a made-up
/// arm64 sibling as a two-platform index under `tag`; returns the index digest.
async fn push_index(world: &TestWorld, repository: &str, base: &str, tag: &str) -> String {
    let plain = world.registries.plain.clone();
    world.push(base, &format!("{plain}/{repository}:src-{tag}"));
    let api = world.registry_api(&plain);
    let (amd64, media_type) = api.manifest(repository, &format!("src-{tag}")).await;
    assert_eq!(media_type, MEDIA_TYPE_DOCKER_MANIFEST);
    let mut arm64: serde_json::Value = serde_json::from_slice(&amd64).expect("manifest JSON");
    let arm64_config = serde_json::json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": []},
        "crowsnest-e2e": format!("{repository}:{tag}"),
    });
    let config_bytes = serde_json::to_vec(&arm64_config).expect("config JSON");
    let config_digest = api.put_blob(repository, &config_bytes).await;
    arm64["config"]["digest"] = config_digest.into();
    arm64["config"]["size"] = config_bytes.len().into();
    let arm64_bytes = serde_json::to_vec(&arm64).expect("manifest JSON");
    let arm64_digest = api
        .put_manifest(
            repository,
            &format!("arm64-{tag}"),
            MEDIA_TYPE_DOCKER_MANIFEST,
            &arm64_bytes,
        )
        .await;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": MEDIA_TYPE_DOCKER_MANIFEST, "digest": arm64_digest, "size": arm64_bytes.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": MEDIA_TYPE_DOCKER_MANIFEST, "digest": sha256_digest(&amd64), "size": amd64.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    });
    let index_bytes = serde_json::to_vec(&index).expect("index JSON");
    api.put_manifest(
        repository,
        tag,
        MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        &index_bytes,
    )
    .await
}

/// The `RepoDigests` digests of a local image that belong to `repository`.
fn repo_digests(reference: &str, repository: &str) -> Vec<String> {
    Engine::shared()
        .inspect_image(reference, "{{range .RepoDigests}}{{println .}}{{end}}")
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{repository}@")))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_images() {
    let world = test_world("multiarch");
    let plain = world.registries.plain.clone();
    let repository = world.repository("multi");
    let image = format!("{plain}/{repository}");
    let index_1_0 = push_index(&world, &repository, E2E_1_0, "1.0").await;
    push_index(&world, &repository, E2E_2_0, "2.0").await;
    let index_latest = push_index(&world, &repository, E2E_1_1, "latest").await;
    // Docker pulls the amd64 entry of each index and records the index digest.
    world.pull(&format!("{image}:1.0"));
    world.pull(&format!("{image}:latest"));
    let versioned = world.run(&format!("{image}:1.0"), &[]);
    let latest = world.run(&format!("{image}:latest"), &[]);

    let scanner = local_scanner(&world).await;
    let report = scanner.scan(&images(&[&image])).await;

    let versioned = container(&report, &versioned);
    assert_tag_update(versioned, "1.0", "2.0", "major");
    let held = repo_digests(&format!("{image}:1.0"), &image);
    assert!(
        held.contains(&index_1_0),
        "Docker records the index digest: {held:?}"
    );
    assert!(
        versioned
            .image
            .digest
            .value
            .as_ref()
            .is_some_and(|d| held.contains(d)),
        "local digest {:?} is one of {held:?}",
        versioned.image.digest.value
    );
    assert_eq!(versioned.image.architecture, "amd64");

    // The image holds two digests of this repository (the pushed amd64
    // manifest and the pulled index): matching either one is current.
    let held_latest = repo_digests(&format!("{image}:latest"), &image);
    assert_eq!(held_latest.len(), 2, "{held_latest:?}");
    assert!(held_latest.contains(&index_latest));
    let latest = container(&report, &latest);
    assert!(latest.error.is_none(), "{:?}", latest.error);
    assert!(latest.image.digest.watch);
    assert_eq!(
        latest.image.digest.value.as_deref(),
        Some(index_latest.as_str())
    );
    assert_eq!(
        latest.image.digest.repo.as_deref(),
        Some(index_latest.as_str()),
        "the index digest is compared, as Docker records it"
    );
    assert!(
        !latest.update_available,
        "same index: {:?}",
        latest.update_kind
    );
    assert_eq!(
        latest.result.as_ref().and_then(|r| r.tag.as_deref()),
        Some("latest")
    );

    // A new index under `latest` is a digest update.
    let new_latest = push_index(&world, &repository, E2E_2_0, "latest").await;
    let report = scanner.scan(&images(&[&image])).await;
    let latest = container(&report, &latest.id);
    assert!(latest.update_available, "{latest:#?}");
    let kind = latest.update_kind.as_ref().expect("updateKind");
    assert_eq!(kind.kind, "digest");
    assert!(
        kind.local_value
            .as_ref()
            .is_some_and(|d| held_latest.contains(d)),
        "local value {:?} is one of {held_latest:?}",
        kind.local_value
    );
    assert_eq!(kind.remote_value.as_deref(), Some(new_latest.as_str()));
    assert_eq!(kind.semver_diff, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_digest_is_resolved_with_a_manifest_head_and_no_get() {
    let world = test_world("headfirst");
    let repository = world.repository("headfirst");
    let index = push_index(&world, &repository, E2E_1_1, "latest").await;
    // Pulled through a counting proxy, so that the image's recorded digest
    // is the proxy's repository and every scan request is seen.
    let proxy = CountingProxy::start(&world.registries.plain).await;
    let image = format!("{}/{repository}", proxy.address);
    world.pull(&format!("{image}:latest"));
    let id = world.run(&format!("{image}:latest"), &[]);
    proxy.reset();

    let report = local_scanner(&world).await.scan(&images(&[&image])).await;
    let object = container(&report, &id);
    assert_eq!(object.check.status, CheckStatus::UpToDate, "{object:#?}");
    assert_eq!(object.image.digest.repo.as_deref(), Some(index.as_str()));
    let manifests: Vec<(String, String)> = proxy
        .requests()
        .into_iter()
        .filter(|(_, path)| path.contains("/manifests/"))
        .collect();
    let heads = manifests
        .iter()
        .filter(|(method, _)| method == "HEAD")
        .count();
    let gets = manifests
        .iter()
        .filter(|(method, _)| method == "GET")
        .count();
    println!("digest of an index tag: {heads} manifest HEAD, {gets} manifest GET");
    assert_eq!(
        (heads, gets),
        (1, 0),
        "one HEAD, no GET (Docker Hub counts a manifest GET as a pull): {manifests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_pinned_images() {
    let world = test_world("pinned");
    let image = world.plain_image("pinned");
    let digest_1_0 = world.push(E2E_1_0, &format!("{image}:1.0"));
    world.push(E2E_2_0, &format!("{image}:2.0"));
    let by_digest = world.run(&format!("{image}@{digest_1_0}"), &[]);
    let tag_and_digest = world.run(&format!("{image}:1.0@{digest_1_0}"), &[]);

    let scanner = local_scanner(&world).await;
    let report = scanner.scan(&images(&[&image])).await;

    // Pinned by digest only: no tag to compare, never reported as up to date.
    let pinned = container(&report, &by_digest);
    assert_eq!(pinned.image.reference, format!("{image}@{digest_1_0}"));
    assert_eq!(pinned.image.tag.value, None);
    assert_eq!(
        pinned.image.digest.value.as_deref(),
        Some(digest_1_0.as_str())
    );
    assert!(!pinned.update_available);
    assert!(pinned.update_kind.is_none());
    assert!(pinned.error.is_none(), "{:?}", pinned.error);
    assert!(
        pinned.result.is_none(),
        "nothing was looked up for a digest-only reference: {:?}",
        pinned.result
    );

    // `name:tag@digest`: the tag is compared as usual.
    let both = container(&report, &tag_and_digest);
    assert_tag_update(both, "1.0", "2.0", "major");
    assert_eq!(
        both.image.digest.value.as_deref(),
        Some(digest_1_0.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_watching_on_latest() {
    let world = test_world("latest");
    let image = world.plain_image("rolling");
    let first = world.push(E2E_1_0, &format!("{image}:latest"));
    let running = world.run(&format!("{image}:latest"), &[]);
    let unwatched = world.run(
        &format!("{image}:latest"),
        &[("crowsnest.watch.digest", "false")],
    );

    let scanner = local_scanner(&world).await;
    let report = scanner.scan(&images(&[&image])).await;
    let object = container(&report, &running);
    assert!(object.error.is_none(), "{:?}", object.error);
    assert!(object.image.digest.watch);
    assert!(!object.image.tag.semver);
    assert_eq!(object.image.digest.value.as_deref(), Some(first.as_str()));
    assert_eq!(object.image.digest.repo.as_deref(), Some(first.as_str()));
    assert!(!object.update_available);
    assert_eq!(report.stats.digest_lookups, 1);

    // A different image pushed to the same tag.
    let second = world.push(E2E_2_0, &format!("{image}:latest"));
    assert_ne!(first, second);
    let report = scanner.scan(&images(&[&image])).await;
    let object = container(&report, &running);
    assert!(object.update_available, "{object:#?}");
    let kind = object.update_kind.as_ref().expect("updateKind");
    assert_eq!(kind.kind, "digest");
    assert_eq!(kind.local_value.as_deref(), Some(first.as_str()));
    assert_eq!(kind.remote_value.as_deref(), Some(second.as_str()));
    assert_eq!(kind.semver_diff, None);
    let result = object.result.as_ref().expect("result");
    assert_eq!(result.tag.as_deref(), Some("latest"));
    assert_eq!(result.digest.as_deref(), Some(second.as_str()));

    // `crowsnest.watch.digest=false` turns digest watching off.
    let off = container(&report, &unwatched);
    assert!(!off.image.digest.watch);
    assert!(!off.update_available);
    assert_eq!(off.image.digest.repo, None);
}

/// A registry that wants credentials, as a case of
/// [`registries_with_right_wrong_and_no_credentials`].
struct Credentialed {
    /// The registry instance the config names (and the case's name).
    instance: &'static str,
    /// `host:port`.
    registry: String,
    /// The right user and password.
    login: (String, String),
    /// Tags pushed besides `1.0`, with their images.
    tags: &'static [(&'static str, &'static str)],
    /// A tag pushed only after a first scan, which must find `1.0` up to date.
    later: Option<(&'static str, &'static str)>,
}

/// A config `file` with the `oci` registry `name` on `registry`, logging in
/// as `user` with `password`.
fn credentials(
    world: &TestWorld,
    file: &str,
    name: &str,
    registry: &str,
    (user, password): (&str, &str),
) -> std::path::PathBuf {
    world.config_named(
        file,
        &format!(
            "{}[registries.{name}]\nplugin = \"oci\"\nurl = \"http://{registry}\"\nusername = \"{user}\"\npassword = \"{password}\"\n",
            watcher("")
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_with_right_wrong_and_no_credentials() {
    let registries = Registries::get();
    let cases = [
        Credentialed {
            instance: "private",
            registry: registries.basic.clone(),
            login: registries.basic_user.clone(),
            tags: &[("1.0.1", E2E_1_1), ("1.1", E2E_1_1)],
            later: None,
        },
        // Three-part tags are another shape than `1.0`: nothing to offer
        // until `1.1` is pushed.
        Credentialed {
            instance: "tokened",
            registry: registries.token.clone(),
            login: registries.token_user.clone(),
            tags: &[("1.0.1", E2E_2_0), ("1.0.2", E2E_2_0)],
            later: Some(("1.1", E2E_2_0)),
        },
    ];
    check_each(
        &cases,
        |case| format!("registry `{}` ({})", case.instance, case.registry),
        |case| async move {
            let Credentialed {
                instance,
                registry,
                login: (user, password),
                ..
            } = case;
            let world = test_world(instance);
            world.login(registry, user, password);
            let image = format!("{registry}/{}", world.repository("private"));
            world.push_tags(&image, &[("1.0", E2E_1_0)]);
            world.push_tags(&image, case.tags);
            let id = world.run(&format!("{image}:1.0"), &[]);

            let right = credentials(&world, "right.toml", instance, registry, (user, password));
            if let Some((tag, source)) = case.later {
                let report = world.scan(&right, &[&image]).await;
                let object = container(&report, &id);
                assert_up_to_date(object, "1.0");
                assert_eq!(&object.image.registry.name, instance);
                world.push_tags(&image, &[(tag, source)]);
            }
            let report = world.scan(&right, &[&image]).await;
            let object = container(&report, &id);
            assert_tag_update(object, "1.0", "1.1", "minor");
            assert_eq!(&object.image.registry.name, instance);
            assert_eq!(object.image.registry.url, format!("http://{registry}/v2"));

            let wrong_password = format!("not-{password}");
            let wrong = credentials(
                &world,
                "wrong.toml",
                instance,
                registry,
                (user, &wrong_password),
            );
            let report = world.scan(&wrong, &[&image]).await;
            let object = container(&report, &id);
            assert_error_mentions(object, &["unauthorized", instance]);
            assert!(
                !object
                    .error
                    .as_ref()
                    .expect("error")
                    .message
                    .contains(password.as_str()),
                "the password never shows"
            );

            // No credentials at all: unauthorized too, never "up to date".
            let none = world.config_named("none.toml", &watcher(""));
            let report = world.scan(&none, &[&image]).await;
            assert_error_mentions(container(&report, &id), &["unauthorized"]);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_like_registry_with_anonymous_tokens() {
    let world = test_world("hub");
    let token = world.registries.token.clone();
    let (user, password) = world.registries.token_user.clone();
    world.login(&token, &user, &password);
    // Anonymous pull is allowed under `public/` on the token server.
    let path = format!("public/{}", world.id);
    world.push(E2E_1_0, &format!("{token}/{path}:1.0"));
    world.push(E2E_1_1, &format!("{token}/{path}:1.1"));
    // Locally the image carries a Docker Hub name; Hub is the loopback token registry here.
    world.tag(E2E_1_0, &format!("{path}:1.0"));
    let id = world.run(&format!("{path}:1.0"), &[]);

    let scanner = local_scanner(&world).await;
    let report = scanner.scan(&images(&[&path])).await;
    let object = container(&report, &id);
    assert_tag_update(object, "1.0", "1.1", "minor");
    assert_eq!(object.image.registry.name, "hub");
    assert_eq!(
        object.image.registry.lookup_image,
        format!("docker.io/{path}")
    );
    assert_eq!(object.image.registry.url, format!("http://{token}/v2"));
    let counters = scanner.registry_client().counters();
    assert!(
        counters.total_for_origin(&world.registries.token_server) >= 1,
        "an anonymous token was fetched: {:?}",
        counters.snapshot()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repository_fails_only_its_container() {
    let world = test_world("missing");
    let good = world.plain_image("good");
    let missing = world.plain_image("never-pushed");
    world.push_tags(&good, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    world.tag(E2E_1_0, &format!("{missing}:1.0"));
    let good_id = world.run(&format!("{good}:1.0"), &[]);
    let missing_id = world.run(&format!("{missing}:1.0"), &[]);

    let config = world.config(&watcher(""));
    let report = world.scan(&config, &[&good, &missing]).await;
    assert!(report.watcher_errors.is_empty());
    assert_tag_update(container(&report, &good_id), "1.0", "1.1", "minor");
    let failed = container(&report, &missing_id);
    assert_error_mentions(failed, &["not found", &world.repository("never-pushed")]);
    assert!(failed.result.is_none());

    // The table shows the failure as an error, never as "up to date".
    let output = world.crowsnest(&config, &["scan", "--image", &missing]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a failed container is not a failed scan: {table}"
    );
    let row = table
        .lines()
        .find(|line| line.contains("never-pushed"))
        .unwrap_or_else(|| panic!("no row: {table}"));
    assert!(row.contains("error:"), "{row}");
    assert!(!row.contains("up to date"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_labels_are_honoured() {
    let world = test_world("optout");
    let image = world.plain_image("app");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let unlabelled = world.run(&format!("{image}:1.0"), &[]);
    let crowsnest_out = world.run(&format!("{image}:1.0"), &[("crowsnest.watch", "false")]);
    let wud_out = world.run(&format!("{image}:1.0"), &[("wud.watch", "false")]);
    let crowsnest_wins = world.run(
        &format!("{image}:1.0"),
        &[("wud.watch", "false"), ("crowsnest.watch", "true")],
    );

    let config = world.config(&watcher(""));
    let report = world.scan(&config, &[&image]).await;
    let ids: Vec<&str> = report.containers.iter().map(|c| c.id.as_str()).collect();
    assert!(
        !ids.contains(&crowsnest_out.as_str()),
        "crowsnest.watch=false is skipped"
    );
    assert!(
        !ids.contains(&wud_out.as_str()),
        "wud.watch=false is skipped"
    );
    assert_eq!(report.containers.len(), 2, "{ids:?}");
    assert_tag_update(container(&report, &unlabelled), "1.0", "2.0", "major");
    assert_tag_update(container(&report, &crowsnest_wins), "1.0", "2.0", "major");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_containers_need_watch_all() {
    let world = test_world("stopped");
    let image = world.plain_image("app");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let running = world.run(&format!("{image}:1.0"), &[]);
    let exited = world.run(&format!("{image}:1.0"), &[]);
    world.stop(&exited);
    let created = world.create(&format!("{image}:1.0"), &[]);

    let running_only = world.config_named("running.toml", &watcher(""));
    let report = world.scan(&running_only, &[&image]).await;
    assert_eq!(
        report.containers.len(),
        1,
        "only the running container without watch_all"
    );
    assert_eq!(container(&report, &running).status, "running");

    let all = world.config_named("all.toml", &watcher("watch_all = true"));
    let report = world.scan(&all, &[&image]).await;
    assert_eq!(report.containers.len(), 3);
    let exited = container(&report, &exited);
    assert_eq!(exited.status, "exited");
    assert_tag_update(exited, "1.0", "1.1", "minor");
    let created = container(&report, &created);
    assert_eq!(created.status, "created");
    assert_tag_update(created, "1.0", "1.1", "minor");
    assert_eq!(report.stats.repositories, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_daemon_fails_its_watcher_only() {
    let world = test_world("unreachable");
    let image = world.plain_image("app");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let id = world.run(&format!("{image}:1.0"), &[]);
    let config = local_and_ghost(&world);

    let output = world.crowsnest(&config, &["scan", "--format", "json", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("watcher `ghost`"),
        "stderr names the watcher: {stderr}"
    );
    assert!(!stderr.contains("watcher `local`"), "{stderr}");
    let containers: Vec<ContainerObject> =
        serde_json::from_slice(&output.stdout).expect("JSON array on stdout");
    assert_eq!(containers.len(), 1);
    let object = find(&containers, &id);
    assert_eq!(object.watcher, "local");
    assert_tag_update(object, "1.0", "2.0", "major");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_can_be_limited_to_some_watchers() {
    // What a watcher's own schedule runs in `crowsnest serve`.
    let world = test_world("per-watcher");
    let image = world.plain_image("app");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let id = world.run(&format!("{image}:1.0"), &[]);
    let config = local_and_ghost(&world);
    let scanner = world.scanner(&config).await;
    let only = |watchers: &[&str]| ScanRequest {
        images: vec![image.clone()],
        watchers: watchers.iter().map(|w| w.to_string()).collect(),
        ..ScanRequest::default()
    };

    let local = scanner.scan(&only(&["local"])).await;
    assert!(
        local.watcher_errors.is_empty(),
        "the unreachable watcher was not asked: {:?}",
        local.watcher_errors
    );
    assert_eq!(container(&local, &id).watcher, "local");

    let ghost_only = scanner.scan(&only(&["ghost"])).await;
    assert!(ghost_only.containers.is_empty());
    assert_eq!(ghost_only.watcher_errors.len(), 1);
    assert_eq!(ghost_only.watcher_errors[0].watcher, "ghost");

    let unknown = scanner.scan(&only(&["nope"])).await;
    assert!(unknown.containers.is_empty());
    assert_eq!(unknown.watcher_errors.len(), 1);
    assert!(
        unknown.watcher_errors[0]
            .message
            .contains("no watcher named `nope`"),
        "{:?}",
        unknown.watcher_errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_exits_2_naming_file_line_and_key() {
    let world = test_world("badconfig");
    // (file, text, the line it must name (by its text) and the key, if any)
    let cases = [
        (
            "unknown.toml",
            format!("{}speed = 3\n", watcher("")),
            Some(("speed = 3", "watchers.local.speed")),
        ),
        (
            "plugin.toml",
            "[registries.broken]\nplugin = \"no-such-plugin\"\n".to_owned(),
            Some((r#"plugin = "no-such-plugin""#, "registries.broken.plugin")),
        ),
        ("syntax.toml", "[scan\n".to_owned(), None),
    ];
    for (file, text, line_and_key) in &cases {
        let config = world.config_named(file, text);
        let output = world.crowsnest(&config, &["scan"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(&config.display().to_string()),
            "{file}: file in {stderr}"
        );
        if let Some((wrong, key)) = line_and_key {
            // The config's prefix (store, hub) comes first: count the lines.
            let line = std::fs::read_to_string(&config)
                .expect("config")
                .lines()
                .position(|l| l == *wrong)
                .expect("the line")
                + 1;
            assert!(
                stderr.contains(&format!("{}:{line}", config.display())),
                "{file}: file:line in {stderr}"
            );
            assert!(stderr.contains(key), "{file}: key in {stderr}");
        }
    }

    let syntax = world.dir().join("syntax.toml");
    let output = world.crowsnest(&syntax, &["scan", "--format", "yaml"]);
    assert_eq!(output.status.code(), Some(2), "bad usage exits 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_update_exits_3_and_json_has_the_contract_shape() {
    let world = test_world("exitcodes");
    let image = world.plain_image("app");
    let current = world.plain_image("current");
    world.push_tags(
        &image,
        &[("1.0", E2E_1_0), ("1.0.1", E2E_1_1), ("1.1", E2E_1_1)],
    );
    world.push(E2E_1_0, &format!("{current}:1.0"));
    let id = world.run(
        &format!("{image}:1.0"),
        &[("crowsnest.display.name", "Shown Name")],
    );
    world.run(&format!("{current}:1.0"), &[]);
    let config = world.config(&watcher(""));

    let output = world.crowsnest(
        &config,
        &[
            "scan",
            "--fail-on-update",
            "--format",
            "json",
            "--image",
            &image,
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = world.crowsnest(&config, &["scan", "--fail-on-update", "--image", &current]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "no update, no exit 3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = world.crowsnest(&config, &["scan", "--image", &image]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "updates only fail with --fail-on-update"
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("Shown Name") && l.contains("1.1") && l.contains("update (minor)")),
        "{table}"
    );

    let output = world.crowsnest(&config, &["scan", "--format", "json", "--image", &image]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let array = json.as_array().expect("a JSON array");
    assert_eq!(array.len(), 1);
    let object = &array[0];
    let keys = |value: &serde_json::Value| {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    for key in [
        "id",
        "name",
        "displayName",
        "status",
        "watcher",
        "image",
        "result",
        "updateAvailable",
        "updateKind",
        "error",
        "labels",
    ] {
        assert!(
            object.get(key).is_some(),
            "container object lacks `{key}`: {object}"
        );
    }
    for key in [
        "id",
        "registry",
        "name",
        "tag",
        "digest",
        "architecture",
        "os",
        "created",
    ] {
        assert!(object["image"].get(key).is_some(), "image lacks `{key}`");
    }
    assert_eq!(
        keys(&object["image"]["registry"]),
        ["lookupImage", "name", "url"]
    );
    assert_eq!(keys(&object["image"]["tag"]), ["semver", "value"]);
    assert_eq!(keys(&object["image"]["digest"]), ["repo", "value", "watch"]);
    for key in ["tag", "digest", "link"] {
        assert!(object["result"].get(key).is_some(), "result lacks `{key}`");
    }
    assert_eq!(
        keys(&object["updateKind"]),
        ["kind", "localValue", "remoteValue", "semverDiff"]
    );
    assert_eq!(object["id"], serde_json::json!(id));
    assert_eq!(object["displayName"], "Shown Name");
    assert_eq!(object["updateAvailable"], true);
    assert_eq!(object["error"], serde_json::Value::Null);
    assert_eq!(object["image"]["tag"]["value"], "1.0");
    assert_eq!(object["image"]["tag"]["semver"], true);
    assert_eq!(object["updateKind"]["kind"], "tag");
    assert_eq!(object["updateKind"]["semverDiff"], "minor");
    assert_eq!(object["result"]["tag"], "1.1");
    assert_eq!(object["labels"]["crowsnest.display.name"], "Shown Name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_mirror_is_looked_up_on_its_upstream() {
    let world = test_world("mirror");
    let plain = world.registries.plain.clone();
    let proxy = world.registries.proxy.clone();
    let repository = world.repository("app");
    world.push(E2E_1_0, &format!("{plain}/{repository}:1.0"));
    world.push(E2E_2_0, &format!("{plain}/{repository}:2.0"));
    // Pulled through the real pull-through cache.
    let mirrored = format!("{proxy}/{repository}:1.0");
    world.pull(&mirrored);
    let id = world.run(&mirrored, &[]);

    let config = world.config(&format!(
        "{}[registries.mirror]\nplugin = \"oci\"\nurl = \"http://{plain}\"\nmirrors = [\"{proxy}\"]\n",
        watcher("")
    ));
    let scanner = world.scanner(&config).await;
    let report = scanner
        .scan(&images(&[&format!("{proxy}/{repository}")]))
        .await;
    let object = container(&report, &id);
    assert_tag_update(object, "1.0", "2.0", "major");
    assert_eq!(object.image.reference, mirrored);
    assert_eq!(object.image.registry.name, "mirror");
    assert_eq!(
        object.image.registry.lookup_image,
        format!("{plain}/{repository}")
    );
    assert_eq!(object.image.registry.url, format!("http://{plain}/v2"));
    let counters = scanner.registry_client().counters();
    assert_eq!(
        counters.total_for_origin(&format!("http://{proxy}")),
        0,
        "the mirror itself is not asked: {:?}",
        counters.snapshot()
    );
    assert!(counters.total_for_origin(&format!("http://{plain}")) >= 1);
}

/// A well-known Docker Hub mirror needs no configuration: an image written
/// under `docker.m.daocloud.io` is looked up on Hub, `library/` added to its
/// one-component name. Hub is the real pull-through cache of the test world
/// (the built-in instance's `url` override), whose upstream is the plain
/// loopback registry: nothing leaves the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_hub_mirror_is_looked_up_on_hub_with_no_configuration() {
    let world = test_world("known-mirror");
    let plain = world.registries.plain.clone();
    let proxy = world.registries.proxy.clone();
    let official = world.repository("app").replace('/', "-");
    world.push(E2E_1_0, &format!("{plain}/library/{official}:1.0"));
    world.push(E2E_1_1, &format!("{plain}/library/{official}:1.1"));
    let mirrored = format!("docker.m.daocloud.io/{official}");
    world.tag(E2E_1_0, &format!("{mirrored}:1.0"));
    let id = world.run(&format!("{mirrored}:1.0"), &[]);

    let config = crowsnest_testkit::config::write(
        world.dir(),
        "known-mirror.toml",
        &format!(
            "{}{}[registries.hub]\nplugin = \"dockerhub\"\nurl = \"http://{proxy}\"\n",
            crowsnest_testkit::config::store(&world.dir().join("store.db")),
            watcher("")
        ),
    );
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&images(&[&mirrored])).await;
    let object = container(&report, &id);
    assert_tag_update(object, "1.0", "1.1", "minor");
    assert_eq!(object.image.registry.name, "hub");
    assert_eq!(
        object.image.registry.lookup_image,
        format!("docker.io/library/{official}")
    );
    let counters = scanner.registry_client().counters();
    assert!(
        counters.total_for_origin(&format!("http://{proxy}")) >= 1,
        "looked up through the proxy: {:?}",
        counters.snapshot()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_survives_restart_and_prunes_containers_gone_from_docker() {
    let world = test_world("store");
    let image = world.plain_image("app");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let opted_in = [("crowsnest.watch", "true")];
    let kept = world.run(&format!("{image}:1.0"), &opted_in);
    let removed = world.run(&format!("{image}:2.0"), &opted_in);
    let config = world.config(&watcher("watch_by_default = false"));

    let _serial = engine::exclusive().await;
    {
        let scanner = world.scanner(&config).await;
        let report = scanner.scan(&images(&[])).await;
        assert!(
            report.watcher_errors.is_empty(),
            "{:?}",
            report.watcher_errors
        );
        assert_tag_update(container(&report, &kept), "1.0", "2.0", "major");
        assert_up_to_date(container(&report, &removed), "2.0");
    }
    // A new scanner on the same store: the results are still there.
    let scanner = world.scanner(&config).await;
    let stored: Vec<ContainerObject> = scanner
        .store()
        .list_containers()
        .await
        .expect("store readable");
    assert_tag_update(find(&stored, &kept), "1.0", "2.0", "major");
    assert_up_to_date(find(&stored, &removed), "2.0");
    let history = scanner
        .store()
        .update_history(&kept)
        .await
        .expect("history readable");
    assert_eq!(history.len(), 1, "{history:?}");

    // Gone from Docker: pruned by the next full scan.
    world.remove(&removed);
    let report = scanner.scan(&images(&[])).await;
    assert!(report.containers.iter().all(|c| c.id != removed));
    let stored: Vec<ContainerObject> = scanner
        .store()
        .list_containers()
        .await
        .expect("store readable");
    assert!(stored.iter().all(|c| c.id != removed), "pruned");
    assert_tag_update(find(&stored, &kept), "1.0", "2.0", "major");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tag_listing_per_repository_however_many_containers() {
    const CONTAINERS: usize = 20;
    let world = test_world("count");
    let plain = world.registries.plain.clone();
    let repository = world.repository("shared");
    world.push(E2E_1_0, &format!("{plain}/{repository}:1.0"));
    world.push(E2E_1_1, &format!("{plain}/{repository}:1.1"));
    world.push(E2E_2_0, &format!("{plain}/{repository}:latest"));
    let mut ids = Vec::new();
    for index in 0..CONTAINERS {
        let tag = if index % 2 == 0 { "1.0" } else { "latest" };
        ids.push(world.create(&format!("{plain}/{repository}:{tag}"), &[]));
    }
    // The registry is reached through a counting proxy; the images name the
    // real registry, mapped onto the proxy as a mirror.
    let counting = CountingProxy::start(&plain).await;
    let config = world.config(&format!(
        "{}[registries.counted]\nplugin = \"oci\"\nurl = \"http://{}\"\nmirrors = [\"{plain}\"]\n",
        watcher("watch_all = true"),
        counting.address
    ));
    let scanner = world.scanner(&config).await;
    let image = format!("{plain}/{repository}");
    let report = scanner.scan(&images(&[&image])).await;
    assert_eq!(report.containers.len(), CONTAINERS);
    for (index, id) in ids.iter().enumerate() {
        let object = container(&report, id);
        assert!(object.error.is_none(), "{:?}", object.error);
        if index % 2 == 0 {
            assert_tag_update(object, "1.0", "1.1", "minor");
        } else {
            assert!(!object.update_available, "{object:#?}");
            assert_eq!(
                object
                    .image
                    .digest
                    .repo
                    .as_deref()
                    .map(|d| d.starts_with("sha256:")),
                Some(true)
            );
        }
    }
    let requests = counting.requests();
    let tag_listings = requests
        .iter()
        .filter(|(_, path)| path.contains("/tags/list"))
        .count();
    let manifest_requests: Vec<_> = requests
        .iter()
        .filter(|(_, path)| path.contains("/manifests/"))
        .collect();
    assert_eq!(
        tag_listings, 1,
        "one tag listing for {CONTAINERS} containers: {requests:?}"
    );
    assert_eq!(
        manifest_requests.len(),
        1,
        "one digest lookup for the `latest` containers: {requests:?}"
    );
    assert_eq!(manifest_requests[0].0, "HEAD", "digests come from a HEAD");
    assert!(
        requests.len() <= 3,
        "no more than a ping, a listing and a HEAD: {requests:?}"
    );
    assert_eq!(report.stats.repositories, 1);
    assert_eq!(report.stats.digest_lookups, 1);
    let client_total = scanner
        .registry_client()
        .counters()
        .total_for_origin(&format!("http://{}", counting.address));
    assert_eq!(
        client_total as usize,
        requests.len(),
        "the client's own counters agree"
    );
}

/// The file-name prefix (component sha256) of each built-in's cached artifact.
fn builtin_artifact_prefix(name: &str) -> String {
    let bytes = crowsnest_plugin_host::catalog::builtin_components()
        .iter()
        .find(|(stem, _)| *stem == name)
        .map(|(_, bytes)| *bytes)
        .unwrap_or_else(|| panic!("no built-in `{name}`"));
    crowsnest_plugin_host::cache::sha256_hex(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_scan_compiles_and_caches_only_the_plugins_it_uses() {
    let world = test_world("lazy-plugins");
    let app = world.plain_image("app");
    world.push_tags(&app, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let old = world.run(&format!("{app}:1.0"), &[]);
    let cache = world.dir().join("components");
    let plugins = format!(
        "[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n\n",
        world.dir().join("no-drop-ins").display(),
        cache.display()
    );
    let config = world.config(&format!("{plugins}{}", watcher("")));

    let report = world.scan(&config, &[&app]).await;
    assert_tag_update(container(&report, &old), "1.0", "2.0", "major");

    // The configured Hub instance (dockerhub), the automatic instance of the
    // loopback registry (oci) and the default strategy (semver): nothing else.
    let mut cached: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache dir created")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        // The cache's HMAC key sits beside the artifacts it signs.
        .filter(|name| name != "artifacts.key")
        .collect();
    cached.sort();
    let mut used: Vec<String> = ["dockerhub", "oci", "semver"]
        .iter()
        .map(|name| builtin_artifact_prefix(name))
        .collect();
    used.sort();
    assert_eq!(cached.len(), used.len(), "cached: {cached:?}");
    for (file, sha) in cached.iter().zip(&used) {
        assert!(
            file.starts_with(sha.as_str()) && file.ends_with(".cwasm"),
            "{file} is not {sha}"
        );
    }
    assert!(
        crowsnest_plugin_host::catalog::builtin_components().len() > used.len(),
        "the other built-ins were left uncompiled"
    );

    // A second scan from the warm cache finds the same and compiles nothing new.
    let again = world.scan(&config, &[&app]).await;
    assert_tag_update(container(&again, &old), "1.0", "2.0", "major");
    assert_eq!(
        std::fs::read_dir(&cache).expect("cache dir").count(),
        used.len() + 1,
        "the artifacts and the cache's key"
    );
}

/// The token server's count of requests naming each scope (`GET /stats`).
async fn token_requests_by_scope(token_server: &str) -> serde_json::Value {
    let stats: serde_json::Value = reqwest::get(format!("{token_server}/stats"))
        .await
        .expect("token server stats")
        .json()
        .await
        .expect("stats are JSON");
    stats["by_scope"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_repositories_behind_token_auth_cost_one_token_request() {
    let world = test_world("scopes");
    let registry = world.registries.token.clone();
    let (user, password) = world.registries.token_user.clone();
    world.login(&registry, &user, &password);
    let repositories: Vec<String> = (0..20)
        .map(|index| world.repository(&format!("app{index:02}")))
        .collect();
    let images: Vec<String> = repositories
        .iter()
        .map(|repository| format!("{registry}/{repository}"))
        .collect();
    let ids: Vec<String> = images
        .iter()
        .map(|image| {
            world.push(E2E_1_0, &format!("{image}:1.0"));
            world.create(&format!("{image}:1.0"), &[])
        })
        .collect();
    let config = world.config(&format!(
        "{}[registries.tokened]\nplugin = \"oci\"\nurl = \"http://{registry}\"\nusername = \"{user}\"\npassword = \"{password}\"\n",
        watcher("watch_all = true")
    ));
    let token_server = world.registries.token_server.clone();
    let before = token_requests_by_scope(&token_server).await;
    let scanner = world.scanner(&config).await;
    let counters = scanner.registry_client().counters();
    let patterns: Vec<&str> = images.iter().map(String::as_str).collect();
    for scan in 1..=2 {
        let report = scanner.scan(&scans::images(&patterns)).await;
        assert_eq!(report.stats.repositories, 20);
        for id in &ids {
            assert_up_to_date(container(&report, id), "1.0");
        }
        // One token for the 20 repositories (a batch holds up to
        // SCOPES_PER_TOKEN of them), reused by the second scan.
        assert_eq!(
            counters.total_for_origin(&token_server),
            1,
            "token requests after scan {scan}: {:?}",
            counters.snapshot()
        );
    }
    // Counted at the token server: each repository's scope was asked once,
    // so the one request named all twenty.
    let after = token_requests_by_scope(&token_server).await;
    for repository in &repositories {
        let scope = format!("repository:{repository}:pull");
        let asked = after[&scope].as_u64().unwrap_or(0) - before[&scope].as_u64().unwrap_or(0);
        assert_eq!(asked, 1, "token requests naming {scope}");
    }
}
