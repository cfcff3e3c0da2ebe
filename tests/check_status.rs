//! The explicit check status (`check.status`): "up-to-date" only where a
//! comparison was made; every case where nothing was compared is
//! `not-checked` with its reason, in the JSON, the `scan` table and metrics.
//!
//! Runs against the shared test world (real Docker engine, real registry on
//! loopback), like `scan_e2e.rs`.

use crowsnest::model::{CheckStatus, ContainerObject};
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::images::{E2E_1_0, E2E_2_0};
use crowsnest_testkit::scans::{container, images};
use crowsnest_testkit::world::TestWorld;

fn watcher(extra: &str) -> String {
    crowsnest_testkit::config::watcher(Engine::shared(), extra)
}

/// `object` is `not-checked`, with a reason mentioning `words`, and is not
/// offered as an update nor failed.
fn assert_not_checked(object: &ContainerObject, words: &str) {
    assert_eq!(
        object.check.status,
        CheckStatus::NotChecked,
        "{}: {:?}",
        object.name,
        object.check
    );
    let reason = object.check.reason.as_deref().unwrap_or_default();
    assert!(reason.contains(words), "{}: reason {reason:?}", object.name);
    assert!(!object.update_available);
    assert!(object.error.is_none(), "{:?}", object.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_to_date_only_where_a_comparison_was_made() {
    let world = TestWorld::new("checkstatus");
    let image = world.plain_image("status");
    let digest_1_0 = world.push(E2E_1_0, &format!("{image}:1.0"));
    world.push(E2E_1_0, &format!("{image}:latest"));
    let version = world.run(&format!("{image}:1.0"), &[]);
    let latest = world.run(&format!("{image}:latest"), &[]);
    let unwatched = world.run(
        &format!("{image}:latest"),
        &[("crowsnest.watch.digest", "false")],
    );
    let pinned = world.run(&format!("{image}@{digest_1_0}"), &[]);
    // Built or loaded locally: the tag names an image the registry never
    // stored, so the engine holds no registry digest for it.
    world.tag(E2E_2_0, &format!("{image}:latest"));
    let local_build = world.run(&format!("{image}:latest"), &[]);

    let scanner = world.scanner(&world.config(&watcher(""))).await;
    let report = scanner.scan(&images(&[&image])).await;

    let by_version = container(&report, &version);
    assert_eq!(by_version.check.status, CheckStatus::UpToDate);
    assert!(by_version.check.checked_at.is_some());
    let by_digest = container(&report, &latest);
    assert_eq!(
        by_digest.check.status,
        CheckStatus::UpToDate,
        "{:?}",
        by_digest.check
    );
    assert_not_checked(container(&report, &unwatched), "digest watching is off");
    assert_not_checked(container(&report, &pinned), "pinned by digest");
    assert_not_checked(container(&report, &local_build), "no registry digest");

    // The JSON carries the one field, in kebab case.
    let json = serde_json::to_value(container(&report, &local_build)).unwrap();
    assert_eq!(json["check"]["status"], "not-checked");
    assert_eq!(json["updateAvailable"], false);

    // Metrics count by the same words.
    let stored: Vec<ContainerObject> = scanner.store().list_containers().await.unwrap();
    let metrics = crowsnest::metrics::Metrics::new().render(&stored);
    assert!(
        metrics.contains("status=\"not-checked\"") && metrics.contains("status=\"up-to-date\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_watcher_keeps_its_containers_marked_stale() {
    let world = TestWorld::new("stale").with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"));
    let image = world.plain_image("stale");
    world.push(E2E_1_0, &format!("{image}:1.0"));
    let id = world.run(&format!("{image}:1.0"), &[("crowsnest.watch", "true")]);
    let reachable = world.config(&watcher("watch_by_default = false"));
    let first = world.scan(&reachable, &[]).await;
    let checked = container(&first, &id).clone();
    assert_eq!(checked.check.status, CheckStatus::UpToDate);
    assert!(!checked.check.stale);

    // The same watcher, its engine gone: a full scan keeps the container
    // with its last result, marked stale, and says which watcher failed.
    let gone = world.config_named(
        "gone.toml",
        &format!(
            "[watchers.local]\nsocket = \"{}\"\nwatch_by_default = false\n",
            world.dir().join("no-such-dir/docker.sock").display()
        ),
    );
    let second = world.scan(&gone, &[]).await;
    assert_eq!(
        second.watcher_errors.len(),
        1,
        "{:?}",
        second.watcher_errors
    );
    assert!(second.failed());
    let stale = container(&second, &id);
    assert!(stale.check.stale, "{:?}", stale.check);
    assert_eq!(stale.check.status, CheckStatus::UpToDate);
    assert_eq!(stale.check.checked_at, checked.check.checked_at);
    let scanner = world.scanner(&gone).await;
    let stored: Option<ContainerObject> = scanner.store().get_container(&id).await.unwrap();
    assert!(stored.expect("never deleted").check.stale);

    // The CLI: exit 1, the watcher named once, the stale row says so.
    let output = world.crowsnest(&gone, &["scan"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: watcher `local`: Docker engine"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("watcher `local`: watcher `local`"),
        "{stderr}"
    );
    assert!(stdout.contains("stale: watcher unreachable"), "{stdout}");

    // Nothing stored, nothing read: no empty table that reads like a clean result.
    let fresh = TestWorld::new("stale-empty").with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"));
    let empty = fresh.config(&format!(
        "[watchers.local]\nsocket = \"{}\"\n",
        fresh.dir().join("no-such-dir/docker.sock").display()
    ));
    let output = fresh.crowsnest(&empty, &["scan"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert!(!stdout.contains("0 containers"), "{stdout}");
}
