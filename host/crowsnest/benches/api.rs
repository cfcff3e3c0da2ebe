//! Control-plane benchmark (`cargo bench --bench api`):
//! 1. `GET /api/containers` throughput and latency percentiles with 600 stored
//!    containers, over real HTTP/1.1 keep-alive connections on loopback;
//! 2. `POST /api/containers/watch` (full rescan) latency with a warm tag cache,
//!    against a real Docker engine and registry (the test world of the
//!    control-plane tests).
//!
//! Environment: `CROWSNEST_BENCH_SECONDS` (default 5), `CROWSNEST_BENCH_CONNECTIONS` (default 16).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crowsnest::model::{
    ContainerObject, DigestInfo, ImageInfo, RegistryInfo, ScanResult, TagInfo, UpdateKindInfo,
};
use crowsnest_testkit::config;
use crowsnest_testkit::control_plane::control_plane_containers;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::figures::{env_number, percentile};
use crowsnest_testkit::registry::PrivateRegistry;

fn synthetic_container(index: usize) -> ContainerObject {
    let name = format!("service-{index:03}");
    let labels: BTreeMap<String, String> = [
        ("com.docker.compose.project", "stack"),
        ("com.docker.compose.service", name.as_str()),
        ("crowsnest.watch", "true"),
        ("crowsnest.tag.include", r"^\d+\.\d+\.\d+$"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    ContainerObject {
        id: format!("{index:064x}"),
        name: name.clone(),
        display_name: name,
        status: "running".into(),
        watcher: format!("host-{}", index % 6),
        image: ImageInfo {
            id: format!("sha256:{:064x}", index * 7919),
            registry: RegistryInfo {
                name: "hub".into(),
                url: "https://registry-1.docker.io/v2".into(),
                lookup_image: format!("docker.io/library/app{}", index % 40),
            },
            name: format!("library/app{}", index % 40),
            tag: TagInfo {
                value: Some("1.25.3".into()),
                semver: true,
            },
            digest: DigestInfo {
                watch: false,
                value: Some(format!("sha256:{:064x}", index * 104729)),
                repo: None,
            },
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            created: Some("2025-06-03T10:00:00Z".into()),
            reference: format!("app{}:1.25.3", index % 40),
        },
        result: Some(ScanResult {
            tag: Some("1.26.0".into()),
            digest: Some(format!("sha256:{:064x}", index * 15485863)),
            link: None,
            created: None,
        }),
        update_available: index.is_multiple_of(3),
        update_kind: index.is_multiple_of(3).then(|| UpdateKindInfo {
            kind: "tag".into(),
            local_value: Some("1.25.3".into()),
            remote_value: Some("1.26.0".into()),
            semver_diff: Some("minor".into()),
        }),
        error: None,
        labels,
        kind: None,
        owner: None,
        check: crowsnest_model::CheckInfo::new(if index.is_multiple_of(3) {
            crowsnest_model::CheckStatus::Update
        } else {
            crowsnest_model::CheckStatus::UpToDate
        }),
    }
}

async fn list_throughput() {
    let store_dir = tempfile::tempdir().unwrap();
    let text = config::serve(
        &store_dir.path().join("bench.db"),
        Engine::private(),
        "scan_on_start = false\nevents = false",
        "",
    )
    .replace("grpc_listen = \"127.0.0.1:0\"", "grpc_listen = \"\"");
    let server = crowsnest::cli::serve::start(&config::parse(&text))
        .await
        .unwrap();
    for index in 0..600 {
        server
            .state
            .store
            .upsert_container(&synthetic_container(index))
            .await
            .unwrap();
    }
    server.state.coordinator.invalidate();
    let url = format!("http://{}/api/containers", server.http_addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let first = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&first).unwrap();
    assert_eq!(parsed.len(), 600);

    for (gzip, decode) in [(false, false), (true, true), (true, false)] {
        load(&client, &url, first.len(), gzip, decode).await;
    }
    server.shutdown().await;
}

/// Keep-alive GET load on `url`; with `gzip` the client asks for gzip, and with
/// `decode` it also decompresses every answer (as a real client would; on a
/// 2-core machine that client work then bounds the figure).
async fn load(client: &reqwest::Client, url: &str, plain_size: usize, gzip: bool, decode: bool) {
    let seconds = env_number("CROWSNEST_BENCH_SECONDS", 5);
    let connections = env_number("CROWSNEST_BENCH_CONNECTIONS", 16) as usize;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut bytes = 0usize;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let mut request = client.get(&url);
                    if gzip {
                        request = request.header("accept-encoding", "gzip");
                    }
                    let response = client.execute(request.build().unwrap()).await.unwrap();
                    assert_eq!(response.status(), 200);
                    let body = response.bytes().await.unwrap();
                    bytes += body.len();
                    if decode {
                        let mut json = Vec::with_capacity(plain_size);
                        std::io::Read::read_to_end(
                            &mut flate2::read::GzDecoder::new(&body[..]),
                            &mut json,
                        )
                        .unwrap();
                        assert_eq!(json.len(), plain_size);
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, bytes)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut bytes = 0;
    for worker in workers {
        let (mut more, more_bytes) = worker.await.unwrap();
        latencies.append(&mut more);
        bytes += more_bytes;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "GET /api/containers (600 containers, {plain_size} bytes of JSON, {}, {connections} keep-alive connections, {seconds}s): \
         {:.0} req/s, {:.0} MB/s on the wire, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
        match (gzip, decode) {
            (false, _) => "identity",
            (true, true) => "gzip, decompressed by the client",
            (true, false) => "gzip, not decompressed (server-bound)",
        },
        latencies.len() as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        percentile(&mut latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&mut latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        latencies.len(),
    );
}

async fn rescan_latency() {
    let engine = Engine::private();
    let registry = PrivateRegistry::start(engine);
    let app = registry.push("cn/app", &["1.0", "1.1", "2.0"]);
    let lib = registry.push("cn/lib", &["1.0", "1.1"]);
    let guard = control_plane_containers();
    let containers: Vec<_> = (0..10)
        .map(|index| guard.run(if index % 2 == 0 { &app[0] } else { &lib[0] }, &[]))
        .collect();
    let store_dir = tempfile::tempdir().unwrap();
    let text = config::serve(
        &store_dir.path().join("bench.db"),
        engine,
        "scan_on_start = false\nevents = false",
        "",
    )
    .replace("grpc_listen = \"127.0.0.1:0\"", "grpc_listen = \"\"")
    .replace("tag_cache_ttl = 0", "tag_cache_ttl = 3600");
    let server = crowsnest::cli::serve::start(&config::parse(&text))
        .await
        .unwrap();
    let url = format!("http://{}/api/containers/watch", server.http_addr);
    let client = reqwest::Client::new();
    let cold_started = Instant::now();
    let answer: Vec<serde_json::Value> = client
        .post(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cold = cold_started.elapsed();
    assert_eq!(answer.len(), containers.len());
    let mut latencies = Vec::new();
    for _ in 0..30 {
        let sent = Instant::now();
        let response = client.post(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    println!(
        "POST /api/containers/watch ({} containers, 2 repositories, real dockerd + registry): cold {:.1} ms; \
         warm tag cache: p50 {:.1} ms, p99 {:.1} ms over {} rescans",
        containers.len(),
        cold.as_secs_f64() * 1e3,
        percentile(&mut latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&mut latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
    );
    server.shutdown().await;
    drop(guard);
    drop(registry);
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: keep that cheap.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        list_throughput().await;
        rescan_latency().await;
    });
}
