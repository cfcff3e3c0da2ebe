//! Trigger deliveries end to end: `crowsnest serve` with webhook triggers
//! (the built-in plugin, sandboxed) posting to a local HTTP receiver. Checks
//! simple and batch modes, thresholds, per-container include/exclude labels,
//! `auto = false` with the manual route, retries with backoff, and `once`
//! across a restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use crowsnest::server::RunningServer;
use crowsnest_testkit::control_plane::{get_text, AppAndLib};
use crowsnest_testkit::engine;
use crowsnest_testkit::wait::eventually;
use serde_json::Value;

/// Everything the receiver got: endpoint → bodies, plus how many answers failed on purpose.
#[derive(Default)]
struct Received {
    bodies: BTreeMap<String, Vec<Value>>,
    flaky_failures_left: usize,
}

async fn receive(
    State(received): State<Arc<Mutex<Received>>>,
    Path(endpoint): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    let mut received = received.lock().unwrap();
    received
        .bodies
        .entry(endpoint.clone())
        .or_default()
        .push(body);
    if endpoint == "flaky" && received.flaky_failures_left > 0 {
        received.flaky_failures_left -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(received: Arc<Mutex<Received>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/{endpoint}", post(receive))
        .with_state(received);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// Container names each single delivery of `endpoint` was about.
fn simple_names(received: &Received, endpoint: &str) -> Vec<String> {
    let mut names: Vec<String> = received
        .bodies
        .get(endpoint)
        .map(|bodies| {
            bodies
                .iter()
                .map(|b| b["containerName"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn count(received: &Received, endpoint: &str) -> usize {
    received.bodies.get(endpoint).map_or(0, Vec::len)
}

/// How many deliveries each endpoint got so far.
fn counts(received: &Mutex<Received>) -> BTreeMap<String, usize> {
    received
        .lock()
        .unwrap()
        .bodies
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect()
}

/// A full rescan through the API, then the deliveries it caused, settled.
async fn rescan_and_settle(http: &reqwest::Client, server: &RunningServer) {
    let response = http
        .post(format!("http://{}/api/containers/watch", server.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.state.coordinator.triggers().idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_follow_modes_thresholds_labels_retries_and_once() {
    let _serial = engine::exclusive().await;
    // app: a major update; lib: a minor one.
    let world = AppAndLib::start();
    let (app, lib) = (&world.app, &world.lib);
    let quiet = world.containers.run(
        &world.app_image,
        &[("crowsnest.trigger.exclude", "all-simple")],
    );
    let mut expected_all = vec![app.name.clone(), lib.name.clone(), quiet.name.clone()];
    expected_all.sort();

    let received = Arc::new(Mutex::new(Received {
        flaky_failures_left: 2,
        ..Default::default()
    }));
    let receiver = start_receiver(Arc::clone(&received)).await;
    let triggers = format!(
        r#"
[triggers.all-simple]
plugin = "webhook"
url = "{receiver}/all-simple"

[triggers.batched]
plugin = "webhook"
url = "{receiver}/batched"
mode = "batch"

[triggers.minor]
plugin = "webhook"
url = "{receiver}/minor"
threshold = "minor"

[triggers.major-only]
plugin = "webhook"
url = "{receiver}/major-only"
threshold = "major-only"

[triggers.by-hand]
plugin = "webhook"
url = "{receiver}/by-hand"
auto = false

[triggers.flaky]
plugin = "webhook"
url = "{receiver}/flaky"
retries = 3
retry_backoff_ms = 20
"#
    );
    let text = world.config_text("", &triggers);

    // First run: the start-up scan fires the automatic triggers.
    let server = crowsnest::cli::serve::start(&crowsnest_testkit::config::parse(&text))
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), "the automatic deliveries", || {
        let received = Arc::clone(&received);
        async move {
            let received = received.lock().unwrap();
            (count(&received, "all-simple") >= 2
                && count(&received, "batched") >= 1
                && count(&received, "minor") >= 1
                && count(&received, "major-only") >= 2
                && count(&received, "flaky") >= 5)
                .then_some(())
        }
    })
    .await;
    server.state.coordinator.triggers().idle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let received = received.lock().unwrap();
        // Simple: one delivery per container; the excluding label is honoured.
        let mut not_quiet = vec![app.name.clone(), lib.name.clone()];
        not_quiet.sort();
        assert_eq!(simple_names(&received, "all-simple"), not_quiet);
        // Batch: one delivery with every container.
        assert_eq!(count(&received, "batched"), 1);
        let batch = received.bodies["batched"][0]
            .as_array()
            .expect("a batch is a JSON array");
        let mut batch_names: Vec<String> = batch
            .iter()
            .map(|e| e["containerName"].as_str().unwrap().to_owned())
            .collect();
        batch_names.sort();
        assert_eq!(batch_names, expected_all);
        // Thresholds: `minor` skips major updates, `major-only` skips minor ones.
        assert_eq!(simple_names(&received, "minor"), vec![lib.name.clone()]);
        let mut majors = vec![app.name.clone(), quiet.name.clone()];
        majors.sort();
        assert_eq!(simple_names(&received, "major-only"), majors);
        let lib_event = received.bodies["minor"][0].clone();
        assert_eq!(lib_event["kind"], "tag");
        assert_eq!(lib_event["semverDiff"], "minor");
        assert_eq!(lib_event["localValue"], "1.0");
        assert_eq!(lib_event["remoteValue"], "1.1");
        // Not automatic.
        assert_eq!(count(&received, "by-hand"), 0);
        // Retries: 2 failures, then success for the first container; 1 attempt each for the others.
        assert_eq!(
            count(&received, "flaky"),
            5,
            "{:?}",
            received.bodies.get("flaky")
        );
    }
    let metrics = get_text(&http, &base, "/metrics").await;
    assert!(
        metrics
            .contains("crowsnest_trigger_deliveries_total{trigger=\"flaky\",outcome=\"retry\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "crowsnest_trigger_deliveries_total{trigger=\"flaky\",outcome=\"success\"} 3"
        ),
        "{metrics}"
    );

    // Manual run of a non-automatic trigger.
    let response = http
        .post(format!("{base}/api/containers/{}/triggers/by-hand", lib.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        simple_names(&received.lock().unwrap(), "by-hand"),
        vec![lib.name.clone()]
    );

    // A rescan finds the same results: `once` delivers nothing new.
    let snapshot = counts(&received);
    rescan_and_settle(&http, &server).await;
    assert_eq!(
        counts(&received),
        snapshot,
        "no repeat deliveries after a rescan"
    );
    server.shutdown().await;

    // Restart on the same store: the start-up scan delivers nothing already delivered.
    let server = crowsnest::cli::serve::start(&crowsnest_testkit::config::parse(&text))
        .await
        .unwrap();
    rescan_and_settle(&http, &server).await;
    assert!(server.state.coordinator.started_scans() >= 1);
    assert_eq!(
        counts(&received),
        snapshot,
        "`once` is remembered across a restart"
    );
    server.shutdown().await;
}
