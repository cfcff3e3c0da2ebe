//! Fifty engines: the shared test engine exposed on 50 loopback TCP listeners
//! (the kit's engine proxy), configured as 50 `tcp://` watchers. A scan reads
//! all 50 (printing its time, the engine requests and the registry requests
//! by kind: registries are asked once for the whole fleet); when one engine
//! dies in the middle of its discovery only its watcher fails, named, with
//! exit code 1, and the other 49 are checked correctly.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.

use std::fmt::Write as _;
use std::time::Instant;

use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::engine_proxy::{engine_proxies, EngineProxy, EngineRequests};
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1};
use crowsnest_testkit::scans::images;
use crowsnest_testkit::world::TestWorld;
use serde_json::Value;

const ENGINES: usize = 50;

fn test_world(test: &str) -> TestWorld {
    TestWorld::new(test).with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"))
}

fn watcher_name(index: usize) -> String {
    format!("engine{index:02}")
}

/// `[watchers.engineNN]` for each proxy.
fn watchers(proxies: &[EngineProxy]) -> String {
    let mut text = String::new();
    for (index, proxy) in proxies.iter().enumerate() {
        let _ = write!(
            text,
            "[watchers.{}]\nhost = \"{}\"\n\n",
            watcher_name(index),
            proxy.url()
        );
    }
    text
}

/// A world with one repository (1.0 and 1.1) and two containers on 1.0.
fn world_with_two_containers(test: &str) -> (TestWorld, String, [String; 2]) {
    let world = test_world(test);
    let app = world.plain_image("app");
    world.push_tags(&app, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let ids = [
        world.run(&format!("{app}:1.0"), &[]),
        world.run(&format!("{app}:1.0"), &[]),
    ];
    (world, app, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_engines_are_fifty_watchers_and_one_registry_lookup() {
    let (world, app, ids) = world_with_two_containers("fifty");
    let proxies = engine_proxies(Engine::shared().socket(), ENGINES).await;
    let scanner = world.scanner(&world.config(&watchers(&proxies))).await;
    let counters = scanner.registry_client().counters();

    let started = Instant::now();
    let report = scanner.scan(&images(&[&app])).await;
    let elapsed = started.elapsed();

    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    for index in 0..ENGINES {
        let watcher = watcher_name(index);
        for id in &ids {
            let found = report
                .containers
                .iter()
                .find(|c| c.watcher == watcher && c.id == *id)
                .unwrap_or_else(|| panic!("{watcher} lists {id}"));
            assert!(found.update_available, "{watcher}: {found:?}");
            assert_eq!(
                found
                    .update_kind
                    .as_ref()
                    .and_then(|kind| kind.remote_value.as_deref()),
                Some("1.1")
            );
        }
    }
    assert_eq!(
        report.stats.repositories, 1,
        "100 containers on 50 engines share one repository lookup"
    );
    let engine_requests = proxies
        .iter()
        .map(EngineProxy::requests)
        .fold(EngineRequests::default(), EngineRequests::plus);
    for (index, proxy) in proxies.iter().enumerate() {
        let requests = proxy.requests();
        assert_eq!(
            requests.container_listings,
            2,
            "{}: one listing to discover, one to prune by: {requests:?}",
            watcher_name(index)
        );
        assert_eq!(requests.image_listings, 1, "{requests:?}");
    }
    let registry: Vec<String> = counters
        .by_kind()
        .iter()
        .map(|(kind, count)| format!("{kind:?}={count}"))
        .collect();
    println!(
        "50 engines: scan {:.0} ms wall; engine requests {engine_requests:?}; registry requests {}",
        elapsed.as_secs_f64() * 1000.0,
        registry.join(" ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_dying_mid_scan_fails_only_its_watcher() {
    let (world, app, ids) = world_with_two_containers("dying");
    let socket = Engine::shared().socket();
    let mut proxies = engine_proxies(socket, ENGINES - 1).await;
    // Version negotiation and the container listing pass; it dies at the
    // next request (the image listing), in the middle of its discovery.
    const DYING: usize = 17;
    proxies.insert(DYING, EngineProxy::dying_after(socket, 2).await);
    let config = world.config(&watchers(&proxies));
    let output = {
        let (world, config, app) = (&world, config.clone(), app.clone());
        tokio::task::block_in_place(|| {
            world.crowsnest(&config, &["scan", "--format", "json", "--image", &app])
        })
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(proxies[DYING].is_dead(), "the proxy died mid-scan");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed watcher is exit 1: {stderr}"
    );
    let dying = watcher_name(DYING);
    assert!(
        stderr.contains(&format!("`{dying}`")) || stderr.contains(&dying),
        "the error names the watcher: {stderr}"
    );
    let containers: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("JSON array on stdout ({error}); stderr: {stderr}"));
    for index in (0..ENGINES).filter(|&index| index != DYING) {
        let watcher = watcher_name(index);
        for id in &ids {
            let found = containers
                .iter()
                .find(|c| c["watcher"] == watcher.as_str() && c["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{watcher} lists {id}; stderr: {stderr}"));
            assert_eq!(found["updateAvailable"], true, "{found}");
            assert_eq!(found["updateKind"]["remoteValue"], "1.1", "{found}");
        }
    }
    assert!(
        !containers
            .iter()
            .any(|c| c["watcher"] == dying.as_str() && c["check"]["stale"] != true),
        "nothing fresh from the dead engine"
    );
}
