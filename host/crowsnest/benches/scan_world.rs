//! Full-scan benchmark on large local worlds: prints figures, asserts nothing.
//!
//! For each size `CONTAINERS/REPOSITORIES` of `CROWSNEST_BENCH_SIZES` (default
//! `50/10,600/100`; the table adds `5000/1000,10000/2000`) it builds
//! (idempotently) the repositories with three tags each in the plain loopback
//! registry and the created-not-started containers across them on the test
//! Docker engine (`watch_all = true`), then times full scans twice — tag
//! cache off (`tag_cache_ttl = 0`, every scan asks the registry) and on — and
//! prints per scan and as a table row: median wall time and crowsnest CPU
//! (`/proc/self/stat`, averaged over the warm scans), registry requests by
//! kind (the registry client's counters), Docker discovery time, peak RSS
//! (`VmHWM`, reset before the scanner) and RSS per 1,000 containers. Each
//! scanner starts on an empty compile cache, so the first scan's time
//! includes compiling the plugins it uses. Then it starts `crowsnest serve`
//! (the binary of the same build) on the world and prints its RSS idle,
//! after a first rescan through the API and after
//! `CROWSNEST_BENCH_RESCANS` (default 5) more.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.
//! The containers and local tags are removed at the end unless
//! `CROWSNEST_BENCH_KEEP=1`; the registry content stays (setup reuses it).
//! `CROWSNEST_BENCH_SCANS` (default 9) sets the number of scans per mode.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, RemoveImageOptions,
    TagImageOptions,
};
use bollard::Docker;
use futures::StreamExt;

use crowsnest::config::Config;
use crowsnest::model::ScanRequest;
use crowsnest::oci::{RequestKind, MEDIA_TYPE_DOCKER_MANIFEST};
use crowsnest::scan::Scanner;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::figures::{env_number, process_status_kib, status_kib};
use crowsnest_testkit::registry::Registries;
use crowsnest_testkit::{config, images};

/// Namespace of the benchmark's repositories and of its own images.
const NAMESPACE: &str = "crowsnest-bench";
/// Label on every benchmark container (for reuse and cleanup).
const BENCH_LABEL: &str = "crowsnest-bench";
/// Setup requests in flight (registry and Docker).
const SETUP_CONCURRENCY: usize = 8;

/// Tags of every repository, and the local image each one holds: the
/// benchmark's own images, derived from the shared test images, so that the
/// hundreds of tags the world adds never show on the shared images.
fn tags() -> Vec<(&'static str, String)> {
    images::VERSIONS
        .iter()
        .map(|version| (*version, images::derived(NAMESPACE, version)))
        .collect()
}

struct World {
    registry: String,
    repositories: usize,
    containers: usize,
    engine: &'static Engine,
}

fn repository(index: usize) -> String {
    format!("{NAMESPACE}/r{index:03}")
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0), so that the peak of the
/// scans is measured apart from the world setup.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The manifest of `repository:tag` (Docker schema 2), or `None` when absent.
async fn manifest(
    http: &reqwest::Client,
    registry: &str,
    repository: &str,
    tag: &str,
) -> Result<Option<Vec<u8>>> {
    let response = http
        .get(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
        .header("Accept", MEDIA_TYPE_DOCKER_MANIFEST)
        .send()
        .await?;
    if response.status().as_u16() == 404 {
        return Ok(None);
    }
    ensure!(
        response.status().is_success(),
        "GET manifest {repository}:{tag}: {}",
        response.status()
    );
    Ok(Some(response.bytes().await?.to_vec()))
}

/// Blob digests (config and layers) a schema-2 manifest references.
fn blobs_of(manifest: &[u8]) -> Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(manifest)?;
    let mut digests = vec![value["config"]["digest"]
        .as_str()
        .context("config digest")?
        .to_string()];
    for layer in value["layers"].as_array().context("layers")? {
        digests.push(
            layer["digest"]
                .as_str()
                .context("layer digest")?
                .to_string(),
        );
    }
    Ok(digests)
}

/// Pushes the three seed images once with the docker CLI (into `NAMESPACE/seed`);
/// returns their manifests, in `TAGS` order.
async fn seed(world: &World, http: &reqwest::Client) -> Result<Vec<Vec<u8>>> {
    let seed = format!("{NAMESPACE}/seed");
    let mut manifests = Vec::new();
    for (tag, image) in tags() {
        if let Some(existing) = manifest(http, &world.registry, &seed, tag).await? {
            manifests.push(existing);
            continue;
        }
        let target = format!("{}/{seed}:{tag}", world.registry);
        world.engine.docker(&["tag", &image, &target]);
        world.engine.docker(&["push", "--quiet", &target]);
        world.engine.docker(&["rmi", "--no-prune", &target]);
        manifests.push(
            manifest(http, &world.registry, &seed, tag)
                .await?
                .context("seed manifest after push")?,
        );
    }
    Ok(manifests)
}

/// Gives `repository` the three tags: blobs mounted from the seed, manifests PUT.
async fn fill_repository(
    world: &World,
    http: &reqwest::Client,
    repository: &str,
    manifests: &[Vec<u8>],
) -> Result<bool> {
    let listed = http
        .get(format!(
            "http://{}/v2/{repository}/tags/list",
            world.registry
        ))
        .send()
        .await?;
    if listed.status().is_success() {
        let listed: serde_json::Value = listed.json().await?;
        let present: Vec<&str> = listed["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if tags().iter().all(|(tag, _)| present.contains(tag)) {
            return Ok(false);
        }
    }
    for ((tag, _), manifest) in tags().iter().zip(manifests) {
        for digest in blobs_of(manifest)? {
            let mounted = http
                .post(format!(
                    "http://{}/v2/{repository}/blobs/uploads/?mount={digest}&from={NAMESPACE}/seed",
                    world.registry
                ))
                .send()
                .await?;
            ensure!(
                mounted.status().as_u16() == 201,
                "mount {digest} into {repository}: {}",
                mounted.status()
            );
        }
        let put = http
            .put(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                world.registry
            ))
            .header("Content-Type", MEDIA_TYPE_DOCKER_MANIFEST)
            .body(manifest.clone())
            .send()
            .await?;
        ensure!(
            put.status().is_success(),
            "PUT {repository}:{tag}: {}",
            put.status()
        );
    }
    Ok(true)
}

/// Local image reference of container `index`: repositories round-robin,
/// tags in thirds (two thirds have an update, one third is current).
fn container_image(world: &World, index: usize) -> String {
    let versions = images::VERSIONS;
    let tag = versions[(index / world.repositories) % versions.len()];
    format!(
        "{}/{}:{tag}",
        world.registry,
        repository(index % world.repositories)
    )
}

async fn bench_containers(docker: &Docker) -> Result<Vec<(String, String)>> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{BENCH_LABEL}=1")])]);
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    Ok(listed
        .into_iter()
        .filter_map(|c| Some((c.id?, c.image.unwrap_or_default())))
        .collect())
}

/// Builds the world (idempotent): registry content, local tags, containers.
async fn setup(world: &World, docker: &Docker) -> Result<()> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let manifests = seed(world, &http).await?;
    let filled: Vec<Result<bool>> = futures::stream::iter(0..world.repositories)
        .map(|index| {
            let http = &http;
            let manifests = &manifests;
            async move { fill_repository(world, http, &repository(index), manifests).await }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut pushed = 0;
    for result in filled {
        pushed += usize::from(result?);
    }

    // Local tags, so that containers name the registry's repositories.
    let local: Vec<Result<()>> = futures::stream::iter(
        (0..world.repositories).flat_map(|r| tags().into_iter().map(move |t| (r, t))),
    )
    .map(|(index, (tag, image))| async move {
        docker
            .tag_image(
                &image,
                Some(TagImageOptions {
                    repo: Some(format!("{}/{}", world.registry, repository(index))),
                    tag: Some(tag.to_string()),
                }),
            )
            .await
            .with_context(|| format!("tag {image}"))
    })
    .buffer_unordered(SETUP_CONCURRENCY)
    .collect()
    .await;
    local.into_iter().collect::<Result<Vec<()>>>()?;

    let existing = bench_containers(docker).await?;
    let wanted: Vec<String> = (0..world.containers)
        .map(|i| container_image(world, i))
        .collect();
    let mut have: Vec<String> = existing.iter().map(|(_, image)| image.clone()).collect();
    let mut want = wanted.clone();
    have.sort();
    want.sort();
    let mut created = 0;
    if have != want {
        remove_containers(docker, &existing).await;
        let results: Vec<Result<()>> = futures::stream::iter(wanted.iter().enumerate())
            .map(|(index, image)| async move {
                let labels = HashMap::from([
                    (BENCH_LABEL.to_string(), "1".to_string()),
                    ("crowsnest.watch".to_string(), "true".to_string()),
                ]);
                docker
                    .create_container(
                        Some(CreateContainerOptions {
                            name: Some(format!("crowsnest-bench-{index:04}")),
                            ..Default::default()
                        }),
                        ContainerCreateBody {
                            image: Some(image.clone()),
                            labels: Some(labels),
                            host_config: Some(HostConfig {
                                network_mode: Some("none".into()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )
                    .await
                    .with_context(|| format!("create a container from {image}"))?;
                Ok(())
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect()
            .await;
        for result in results {
            result?;
            created += 1;
        }
    }
    println!(
        "world: {} repositories × {} tags in {} ({pushed} filled now), {} containers ({created} created now); setup {:.1} s",
        world.repositories,
        images::VERSIONS.len(),
        world.registry,
        world.containers,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn remove_containers(docker: &Docker, containers: &[(String, String)]) {
    futures::stream::iter(containers)
        .for_each_concurrent(SETUP_CONCURRENCY, |(id, _)| async move {
            let removed = docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            if let Err(err) = removed {
                eprintln!("cleanup: cannot remove container {id}: {err}");
            }
        })
        .await;
}

async fn cleanup(world: &World, docker: &Docker) -> Result<()> {
    let containers = bench_containers(docker).await?;
    remove_containers(docker, &containers).await;
    futures::stream::iter(
        (0..world.repositories).flat_map(|r| images::VERSIONS.iter().map(move |tag| (r, *tag))),
    )
    .for_each_concurrent(SETUP_CONCURRENCY, |(index, tag)| async move {
        let reference = format!("{}/{}:{tag}", world.registry, repository(index));
        let removed = docker
            .remove_image(
                &reference,
                Some(RemoveImageOptions {
                    noprune: true,
                    ..Default::default()
                }),
                None,
            )
            .await;
        if let Err(err) = removed {
            eprintln!("cleanup: cannot untag {reference}: {err}");
        }
    })
    .await;
    println!(
        "cleanup: removed {} containers and the local tags",
        containers.len()
    );
    Ok(())
}

/// The world's configuration text: the bench containers of the test engine,
/// a store in `dir` with the tag cache on for `tag_cache_ttl` seconds, and
/// an empty compile cache in `dir` (the first scan compiles what it uses).
fn config_text(world: &World, dir: &Path, tag_cache_ttl: u64, extra: &str) -> String {
    // Docker Hub points at a loopback registry: a stray watched container can
    // never make the benchmark reach the internet.
    let store = config::store(&dir.join("store.db")).replace(
        "tag_cache_ttl = 0",
        &format!("tag_cache_ttl = {tag_cache_ttl}"),
    );
    format!(
        "[plugins]\ncache_dir = \"{}\"\n\n{}\n{store}{}{extra}",
        dir.join("components").display(),
        config::watcher(
            world.engine,
            "watch_all = true\nwatch_by_default = false\nschedule = \"0 0 1 1 *\"\njitter = 0"
        ),
        config::hub(Registries::get()),
    )
}

fn config_for(world: &World, dir: &Path, tag_cache_ttl: u64) -> Config {
    let text = config_text(world, dir, tag_cache_ttl, "");
    config::load(&config::write(dir, "config.toml", &text))
}

/// Memory of `crowsnest serve` over the world (tag cache off), in MB.
struct ServeFigures {
    /// Started, store empty, nothing scanned.
    idle_mb: f64,
    /// After the first full rescan (`POST /api/containers/watch`).
    first_mb: f64,
    /// After every rescan.
    rescans_mb: f64,
    /// `VmHWM` at the end.
    peak_mb: f64,
    /// Median rescan latency through the API.
    rescan_ms: f64,
    /// `GET /api/containers` body size.
    json_kb: f64,
}

/// `crowsnest serve` (the binary of this build) over the world, killed on drop.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `crowsnest serve` on the world, rescans it `rescans + 1` times
/// through the API and reads its RSS from `/proc/PID/status` on the way.
async fn measure_serve(world: &World, rescans: usize) -> Result<ServeFigures> {
    let dir = tempfile::tempdir()?;
    let port = crowsnest_testkit::ports::free_port();
    let text = config_text(
        world,
        dir.path(),
        0,
        &format!("\n[server]\nlisten = \"127.0.0.1:{port}\"\ngrpc_listen = \"\"\n"),
    );
    let path = config::write(dir.path(), "config.toml", &text);
    let log = std::fs::File::create(dir.path().join("serve.log"))?;
    let child = crowsnest_testkit::binary::Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"))
        .command(dir.path())
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .context("start crowsnest serve")?;
    let served = Served(child);
    let pid = served.0.id().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let healthy = http.get(format!("{base}/health")).send().await;
        if healthy.is_ok_and(|answer| answer.status().is_success()) {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "crowsnest serve did not answer /health within 60 s: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_mb = || process_status_kib(&pid, "VmRSS:") as f64 / 1024.0;
    let idle_mb = rss_mb();
    let mut first_mb = 0.0;
    let mut times = Vec::new();
    for run in 0..=rescans {
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/api/containers/watch"))
            .send()
            .await?;
        ensure!(
            answer.status().is_success(),
            "rescan through the API: {}",
            answer.status()
        );
        answer.bytes().await?;
        times.push(started.elapsed());
        // The server trims the heap in the background once a scan is done.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if run == 0 {
            first_mb = rss_mb();
        }
    }
    let listed = http.get(format!("{base}/api/containers")).send().await?;
    let json_kb = listed.bytes().await?.len() as f64 / 1024.0;
    Ok(ServeFigures {
        idle_mb,
        first_mb,
        rescans_mb: rss_mb(),
        peak_mb: process_status_kib(&pid, "VmHWM:") as f64 / 1024.0,
        rescan_ms: median(&mut times).as_secs_f64() * 1000.0,
        json_kb,
    })
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on
    // Linux); the command name (field 2) may hold spaces, so count after ')'.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The figures of one world size and cache mode.
struct Figures {
    first_ms: f64,
    median_ms: f64,
    cpu_ms: f64,
    kinds: Vec<(RequestKind, u64)>,
    discovery_ms: f64,
    setup_ms: f64,
    peak_mb: f64,
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

async fn measure(world: &World, scans: usize, tag_cache_ttl: u64) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let config = config_for(world, dir.path(), tag_cache_ttl);
    let peak_reset = reset_peak_rss();
    let setup_started = Instant::now();
    let scanner = Scanner::new(&config)
        .await
        .map_err(|err| anyhow::anyhow!("scanner setup: {err}"))?;
    let setup_time = setup_started.elapsed();
    let counters = scanner.registry_client().counters();
    let request = ScanRequest::default();

    let mut times = Vec::new();
    let mut warm_cpu = 0.0;
    let mut warm_kinds: Vec<(RequestKind, u64)> = Vec::new();
    for run in 0..scans {
        let kinds_before = counters.by_kind();
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let report = scanner.scan(&request).await;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        let kinds: Vec<(RequestKind, u64)> = counters
            .by_kind()
            .into_iter()
            .zip(kinds_before)
            .map(|((kind, after), (_, before))| (kind, after - before))
            .collect();
        let mine = report
            .containers
            .iter()
            .filter(|c| c.labels.get(BENCH_LABEL).map(String::as_str) == Some("1"))
            .count();
        let updates = report
            .containers
            .iter()
            .filter(|c| c.update_available)
            .count();
        let errors: Vec<&str> = report
            .containers
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| e.message.as_str()))
            .collect();
        println!(
            "  scan {}: {:>8.1} ms, {:>6.0} ms CPU, requests {}, {} containers ({mine} of the world), {} repositories, {} digest lookups, {} tag cache hits, {updates} updates, {} errors{}",
            run + 1,
            elapsed.as_secs_f64() * 1000.0,
            cpu * 1000.0,
            kinds_line(&kinds),
            report.containers.len(),
            report.stats.repositories,
            report.stats.digest_lookups,
            report.stats.tag_cache_hits,
            errors.len(),
            errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default(),
        );
        if !report.watcher_errors.is_empty() {
            bail!("watcher failed: {:?}", report.watcher_errors);
        }
        times.push(elapsed);
        if run > 0 {
            warm_cpu += cpu;
            warm_kinds = kinds;
        }
    }
    // Where the time goes: Docker discovery alone (list + images), same watchers.
    let mut discovery_times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let found = crowsnest::docker::discover_all(scanner.watchers()).await;
        discovery_times.push(started.elapsed());
        ensure!(
            found.iter().all(|w| w.containers.is_ok()),
            "discovery failed"
        );
    }
    let first = times.first().copied().unwrap_or_default();
    let mut warm: Vec<Duration> = times.iter().skip(1).copied().collect();
    if warm.is_empty() {
        warm.push(first);
    }
    let warm_runs = (scans.max(2) - 1) as f64;
    if !peak_reset {
        println!("  (VmHWM could not be reset: peak RSS is the whole process's)");
    }
    Ok(Figures {
        first_ms: first.as_secs_f64() * 1000.0,
        median_ms: median(&mut warm).as_secs_f64() * 1000.0,
        cpu_ms: warm_cpu / warm_runs * 1000.0,
        kinds: warm_kinds,
        discovery_ms: median(&mut discovery_times).as_secs_f64() * 1000.0,
        setup_ms: setup_time.as_secs_f64() * 1000.0,
        peak_mb: status_kib("VmHWM:") as f64 / 1024.0,
    })
}

fn kinds_line(kinds: &[(RequestKind, u64)]) -> String {
    let total: u64 = kinds.iter().map(|(_, count)| count).sum();
    let parts: Vec<String> = kinds
        .iter()
        .map(|(kind, count)| format!("{} {count}", kind.name()))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

/// `CONTAINERS/REPOSITORIES` pairs of `CROWSNEST_BENCH_SIZES`.
fn sizes() -> Result<Vec<(usize, usize)>> {
    let text =
        std::env::var("CROWSNEST_BENCH_SIZES").unwrap_or_else(|_| "50/10,600/100".to_string());
    text.split(',')
        .map(|size| {
            let (containers, repositories) = size
                .trim()
                .split_once('/')
                .with_context(|| format!("CROWSNEST_BENCH_SIZES: `{size}` is not C/R"))?;
            Ok((
                containers
                    .parse()
                    .context("CROWSNEST_BENCH_SIZES: containers")?,
                repositories
                    .parse::<usize>()
                    .context("CROWSNEST_BENCH_SIZES: repositories")?
                    .max(1),
            ))
        })
        .collect()
}

fn main() -> Result<()> {
    let engine = Engine::shared();
    images::derive(engine, NAMESPACE);
    let scans = env_number("CROWSNEST_BENCH_SCANS", 9).max(1);
    let keep = std::env::var("CROWSNEST_BENCH_KEEP").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let docker = Docker::connect_with_unix(
            &engine.socket().display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .context("connect to the test Docker engine (scripts/dockerd.sh start)")?;
        docker
            .ping()
            .await
            .context("the test Docker engine does not answer (scripts/dockerd.sh start)")?;
        let mut rows = Vec::new();
        for (containers, repositories) in sizes()? {
            let world = World {
                registry: Registries::get().plain.clone(),
                repositories,
                containers,
                engine,
            };
            setup(&world, &docker).await?;
            let mut measured = Vec::new();
            for (mode, ttl) in [("tag cache off", 0), ("tag cache on", 3600)] {
                println!("{containers}/{repositories}, {mode}:");
                let figures = measure(&world, scans, ttl).await;
                match figures {
                    Ok(figures) => measured.push(figures),
                    Err(error) => {
                        if !keep {
                            cleanup(&world, &docker).await?;
                        }
                        return Err(error);
                    }
                }
            }
            let rescans = env_number("CROWSNEST_BENCH_RESCANS", 5);
            let serve = measure_serve(&world, rescans).await;
            if !keep {
                cleanup(&world, &docker).await?;
            }
            let serve = serve?;
            println!(
                "{containers}/{repositories}, crowsnest serve: {:.1} MB idle, {:.1} MB after a rescan, {:.1} MB after {} more, peak {:.1} MB; rescan median {:.1} ms; GET /api/containers {:.0} KB",
                serve.idle_mb,
                serve.first_mb,
                serve.rescans_mb,
                rescans,
                serve.peak_mb,
                serve.rescan_ms,
                serve.json_kb
            );
            rows.push((containers, repositories, measured, serve));
        }
        println!();
        println!("| containers/repos | scan wall median (cache off / on) | CPU per scan (off / on) | first scan (empty compile cache) | requests per scan, cache off | discovery | scanner setup | scanner peak RSS | per 1,000 | serve RSS idle / after rescans | serve per 1,000 |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for (containers, repositories, measured, serve) in rows {
            let [off, on] = measured.as_slice() else {
                continue;
            };
            let peak = off.peak_mb.max(on.peak_mb);
            println!(
                "| {containers}/{repositories} | {:.1} / {:.1} ms | {:.0} / {:.0} ms | {:.1} ms | {} | {:.1} ms | {:.0} ms | {:.1} MB | {:.2} MB | {:.1} / {:.1} MB | {:.2} MB |",
                off.median_ms,
                on.median_ms,
                off.cpu_ms,
                on.cpu_ms,
                off.first_ms,
                kinds_line(&off.kinds),
                off.discovery_ms,
                off.setup_ms,
                peak,
                peak * 1000.0 / containers.max(1) as f64,
                serve.idle_mb,
                serve.rescans_mb,
                (serve.rescans_mb - serve.idle_mb) * 1000.0 / containers.max(1) as f64,
            );
        }
        Ok(())
    })
}
