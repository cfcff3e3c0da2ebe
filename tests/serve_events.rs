//! Docker events drive single-container updates in `crowsnest serve`: starting
//! a container makes it appear (checked) in `GET /api/containers` without any
//! scan, removing it makes it disappear; shutdown leaves a consistent store.

use std::time::Duration;

use crowsnest_testkit::config;
use crowsnest_testkit::control_plane::{control_plane_containers, get_text};
use crowsnest_testkit::engine::{self, Engine};
use crowsnest_testkit::registry::PrivateRegistry;
use crowsnest_testkit::wait::eventually;
use serde_json::Value;

async fn containers(http: &reqwest::Client, base: &str) -> Vec<Value> {
    serde_json::from_str(&get_text(http, base, "/api/containers").await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_add_and_remove_single_containers_without_a_scan() {
    let _serial = engine::exclusive().await;
    let engine = Engine::private();
    let registry = PrivateRegistry::start(engine);
    let refs = registry.push("cn/app", &["1.0", "1.1"]);
    let ours = control_plane_containers();
    let store_dir = tempfile::tempdir().unwrap();
    let store_path = store_dir.path().join("crowsnest.db");
    // No start-up scan and a yearly schedule: only events can fill the store.
    let text = config::serve(&store_path, engine, "scan_on_start = false", "");
    let config = config::parse(&text);
    let server = crowsnest::cli::serve::start(&config).await.unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    assert!(containers(&http, &base).await.is_empty());
    // Let the event follower connect before the container starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let id = ours
        .run(&refs[0], &[("crowsnest.display.name", "evented")])
        .id;
    let appeared = eventually(
        Duration::from_secs(30),
        "the new container to appear",
        || {
            let (http, base, id) = (&http, &base, &id);
            async move {
                containers(http, base)
                    .await
                    .into_iter()
                    .find(|c| c["id"] == id.as_str() && c["status"] == "running")
            }
        },
    )
    .await;
    assert_eq!(appeared["displayName"], "evented");
    assert_eq!(
        appeared["updateAvailable"], true,
        "the event refresh checks the registry: {appeared}"
    );
    assert_eq!(appeared["updateKind"]["remoteValue"], "1.1");
    assert_eq!(server.state.coordinator.started_scans(), 0, "no scan ran");

    ours.remove(&id);
    eventually(
        Duration::from_secs(30),
        "the removed container to disappear",
        || {
            let (http, base, id) = (&http, &base, &id);
            async move {
                let gone = !containers(http, base)
                    .await
                    .iter()
                    .any(|c| c["id"] == id.as_str());
                gone.then_some(())
            }
        },
    )
    .await;
    assert_eq!(server.state.coordinator.started_scans(), 0, "still no scan");
    let metrics = get_text(&http, &base, "/metrics").await;
    for action in ["create", "start", "destroy"] {
        assert!(
            metrics.contains(&format!(
                "crowsnest_docker_events_total{{action=\"{action}\"}}"
            )),
            "{action} not counted:\n{metrics}"
        );
    }

    // Graceful shutdown mid-scan: the store stays readable and consistent.
    let keep = ours.run(&refs[1], &[]);
    let scan_state = std::sync::Arc::clone(&server.state);
    let scan = tokio::spawn(async move {
        scan_state
            .coordinator
            .scan(Default::default(), crowsnest::metrics::ScanOrigin::Http)
            .await
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.shutdown().await;
    let finished = scan.await.unwrap().unwrap();
    assert!(
        finished.containers.iter().any(|c| c.id == keep.id),
        "the scan in flight finished"
    );
    let reopened = crowsnest::store::Store::open(&store_path).await.unwrap();
    let stored: Vec<crowsnest::model::ContainerObject> = reopened.list_containers().await.unwrap();
    assert!(stored.iter().any(|c| c.id == keep.id));
    assert!(!stored.iter().any(|c| c.id == id));
}
