//! Plugin runtime benchmark: prints figures, asserts nothing.
//!
//! `cargo bench --bench plugins` prints cold and warm (cached) load time of all
//! built-ins, instantiate time, per-call latency of a strategy call and a
//! registry call on a reused instance, and the process RSS after loading.
//! Targets (issue #2): reused call p50 < 5 µs; warm load < 50 ms; RSS < 40 MB.

use std::time::{Duration, Instant};

use crowsnest::plugin::registry::ImageRef;
use crowsnest::plugin::strategy::StrategyOptions;
use crowsnest::plugin::{Catalog, PluginKind, RegistryPlugin, SandboxLimits, StrategyPlugin};
use crowsnest_testkit::figures::{percentile, report, status_kib};
use crowsnest_testkit::plugins::{catalog, registry_spec, spec};

async fn load(cache_dir: &std::path::Path) -> (Catalog, Duration) {
    let started = Instant::now();
    let catalog = catalog(None, Some(cache_dir)).await;
    (catalog, started.elapsed())
}

/// The settings of every registry instance here: a registry nobody asks.
fn local_url() -> Vec<(String, String)> {
    vec![("url".into(), "http://127.0.0.1:5000".into())]
}

/// Set in the child process that measures a warm start on its own.
const WARM_CHILD: &str = "CROWSNEST_BENCH_WARM_CACHE";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match std::env::var_os(WARM_CHILD) {
        Some(cache) => runtime.block_on(warm_start(std::path::PathBuf::from(cache))),
        None => runtime.block_on(run()),
    }
}

/// A fresh process doing what `crowsnest` does at a warm start: load every
/// built-in from the cache and start one instance of each. Its RSS is the
/// host's footprint with all built-ins loaded (no compiler memory in it).
async fn warm_start(cache: std::path::PathBuf) -> anyhow::Result<()> {
    let (catalog, time) = load(&cache).await;
    let limits = SandboxLimits::default();
    let mut registries = Vec::new();
    let mut strategies = Vec::new();
    for entry in catalog.entries() {
        match entry.component.info.kind {
            PluginKind::RegistryProvider => registries.push(
                RegistryPlugin::new(
                    &entry.component,
                    &entry.component.info.name,
                    registry_spec(&["127.0.0.1:5000"], local_url(), limits, 1),
                )
                .await?,
            ),
            PluginKind::VersionStrategy => strategies
                .push(StrategyPlugin::new(&entry.component, spec(Vec::new(), limits, 1)).await?),
            PluginKind::Trigger => {}
        }
    }
    println!(
        "warm start in a fresh process: load       {:>9.1} ms",
        time.as_secs_f64() * 1e3
    );
    println!(
        "  RSS with all built-ins loaded + {} instances {:>6.1} MB (peak {:.1} MB)",
        registries.len() + strategies.len(),
        status_kib("VmRSS:") as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let (cold, cold_time) = load(cache.path()).await;
    let count = cold.entries().count();
    anyhow::ensure!(
        cold.problems().is_empty(),
        "built-ins failed to load: {:?}",
        cold.problems()
    );
    drop(cold);
    let mut warm_times = Vec::new();
    let mut catalog = None;
    for _ in 0..5 {
        let (loaded, time) = load(cache.path()).await;
        warm_times.push(time);
        catalog = Some(loaded);
    }
    let catalog = catalog.ok_or_else(|| anyhow::anyhow!("no catalog"))?;
    println!("built-in plugins                             {count}");
    println!(
        "cold load (compile) of all built-ins         {:>9.1} ms",
        cold_time.as_secs_f64() * 1e3
    );
    println!(
        "warm load (cached) of all built-ins          {:>9.1} ms  (best of 5; p50 {:.1} ms)",
        warm_times
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        percentile(&mut warm_times, 0.5).as_secs_f64() * 1e3
    );

    let limits = SandboxLimits::default();
    let semver = catalog.find("semver", PluginKind::VersionStrategy).await?;
    let mut instantiate = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let plugin = StrategyPlugin::new(&semver.component, spec(Vec::new(), limits, 1)).await?;
        instantiate.push(started.elapsed());
        drop(plugin);
    }
    report("instantiate + configure (semver)", &mut instantiate);

    let strategy = StrategyPlugin::new(&semver.component, spec(Vec::new(), limits, 1)).await?;
    let options = StrategyOptions::default();
    let few: Vec<String> = ["1.25.3", "1.25.4", "1.26.0", "1.26.0-alpine", "latest"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut calls = Vec::new();
    for i in 0..20_000 {
        let started = Instant::now();
        let decision = strategy.choose("1.25.3", &few, &options).await?;
        if i >= 1000 {
            calls.push(started.elapsed());
        }
        std::hint::black_box(decision);
    }
    report("strategy choose, 5 tags, reused instance", &mut calls);

    let many: Vec<String> = (0..1000)
        .map(|i| format!("{}.{}.{}", i / 100, (i / 10) % 10, i % 10))
        .collect();
    let mut calls = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        std::hint::black_box(strategy.choose("1.2.3", &many, &options).await?);
        calls.push(started.elapsed());
    }
    report("strategy choose, 1000 tags, reused instance", &mut calls);

    let oci = catalog.find("oci", PluginKind::RegistryProvider).await?;
    let registry = RegistryPlugin::new(
        &oci.component,
        "bench",
        registry_spec(&["127.0.0.1:5000"], local_url(), limits, 1),
    )
    .await?;
    let image = ImageRef {
        domain: "127.0.0.1:5000".into(),
        path: "team/app".into(),
        tag: Some("1.0".into()),
        digest: None,
    };
    let mut calls = Vec::new();
    for i in 0..20_000 {
        let started = Instant::now();
        let priority = registry.matches(&image).await?;
        if i >= 1000 {
            calls.push(started.elapsed());
        }
        std::hint::black_box(priority);
    }
    report("registry matches(), reused instance", &mut calls);
    let mut calls = Vec::new();
    for _ in 0..5000 {
        let started = Instant::now();
        std::hint::black_box(registry.locate(&image).await?);
        calls.push(started.elapsed());
    }
    report("registry locate(), reused instance", &mut calls);

    println!(
        "RSS of this process (incl. cold compile)     {:>9.1} MB",
        status_kib("VmRSS:") as f64 / 1024.0
    );
    let status = std::process::Command::new(std::env::current_exe()?)
        .env(WARM_CHILD, cache.path())
        .status()?;
    anyhow::ensure!(status.success(), "warm-start child failed: {status}");
    Ok(())
}
