//! Strategy benchmark (issue 5): choosing the update among 1 000 realistic tags
//! through the built-in strategy plugins in the wasm runtime, as the scanner
//! does for each container. Prints figures, asserts only that answers exist.
//!
//! `cargo bench --bench strategy` prints:
//! - p50/p99 of one `choose` call per current-tag shape (target < 1 ms);
//! - per-call time when 100 containers share one repository's tag list,
//!   called one after another (as `scan::check` does) and concurrently.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use crowsnest::plugin::strategy::StrategyOptions;
use crowsnest::plugin::{PluginKind, SandboxLimits, StrategyPlugin};
use crowsnest_testkit::figures::{percentile, report};
use crowsnest_testkit::plugins::{catalog, spec};

/// Tags per repository.
const TAG_COUNT: usize = 1000;
/// Containers sharing one tag list.
const CONTAINERS: usize = 100;

/// A deterministic shuffle (xorshift), so runs are comparable.
fn shuffle(tags: &mut [String]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..tags.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tags.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// 1 000 tags the way a busy official image publishes them: plain two- and
/// three-part versions, distribution suffixes, pre-releases, `v`-prefixed
/// releases, four-part versions with a linuxserver revision, calendar tags,
/// and a few words.
fn realistic_tags() -> Vec<String> {
    let mut tags = BTreeSet::new();
    for word in [
        "latest",
        "stable",
        "mainline",
        "edge",
        "alpine",
        "bookworm",
        "stable-alpine",
        "mainline-alpine-slim",
    ] {
        tags.insert(word.to_string());
    }
    for minor in 18..28 {
        tags.insert(format!("1.{minor}"));
        for suffix in ["alpine", "bookworm", "alpine-slim", "perl"] {
            tags.insert(format!("1.{minor}-{suffix}"));
        }
        for patch in 0..8 {
            tags.insert(format!("1.{minor}.{patch}"));
            for suffix in [
                "alpine",
                "alpine3.19",
                "alpine3.20",
                "bookworm",
                "bullseye",
                "slim",
                "alpine-slim",
                "perl",
            ] {
                tags.insert(format!("1.{minor}.{patch}-{suffix}"));
            }
        }
        for pre in ["rc1", "rc.2", "beta.1", "alpha"] {
            tags.insert(format!("1.{minor}.0-{pre}"));
        }
    }
    for major in 1..4 {
        for minor in 0..10 {
            for patch in 0..3 {
                tags.insert(format!("v{major}.{minor}.{patch}"));
            }
        }
    }
    for build in 5..15 {
        for revision in [120, 121, 125] {
            tags.insert(format!("4.9.0.{build}-ls{revision}"));
        }
        tags.insert(format!("4.9.0.{build}"));
    }
    let mut day = 0;
    while tags.len() < TAG_COUNT {
        tags.insert(format!(
            "{}-{:02}-{:02}",
            2023 + day / 336,
            (day / 28) % 12 + 1,
            day % 28 + 1
        ));
        day += 1;
    }
    let mut tags: Vec<String> = tags.into_iter().collect();
    tags.truncate(TAG_COUNT);
    shuffle(&mut tags);
    tags
}

/// Current tags of different shapes, as deployed containers run them.
const CURRENT_SHAPES: &[(&str, &str)] = &[
    ("three-part", "1.20.3"),
    ("two-part with suffix", "1.20-alpine"),
    ("three-part with suffix", "1.22.4-alpine3.19"),
    ("pre-release", "1.25.0-rc1"),
    ("v-prefixed", "v2.3.1"),
    ("four-part linuxserver", "4.9.0.9-ls121"),
    ("calendar", "2023-01-15"),
    ("not a version (digest)", "latest"),
];

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let catalog = catalog(None, None).await;
    let semver = catalog.find("semver", PluginKind::VersionStrategy).await?;
    let limits = SandboxLimits::default();
    let strategy = StrategyPlugin::new(&semver.component, spec(Vec::new(), limits, 1)).await?;
    let tags = realistic_tags();
    anyhow::ensure!(tags.len() == TAG_COUNT, "generated {} tags", tags.len());
    let options = StrategyOptions::default();
    println!("semver strategy plugin, {TAG_COUNT} tags per repository, one reused instance");

    // Per container: one call per current tag, many times.
    let mut all = Vec::new();
    for (shape, current) in CURRENT_SHAPES {
        let decision = strategy.choose(current, &tags, &options).await?;
        let answer = match &decision.offer {
            Some(offer) => format!("-> {} ({})", offer.tag, offer.kind.as_str()),
            None if decision.watch_digest => "-> watch digest".to_string(),
            None => "-> up to date".to_string(),
        };
        let mut samples = Vec::new();
        for i in 0..1100 {
            let started = Instant::now();
            std::hint::black_box(strategy.choose(current, &tags, &options).await?);
            if i >= 100 {
                samples.push(started.elapsed());
            }
        }
        all.extend_from_slice(&samples);
        report(
            &format!("choose {current} [{shape}] {answer}"),
            &mut samples,
        );
    }
    report("choose, all shapes (per container call)", &mut all);

    let include = StrategyOptions {
        include: Some(r"^\d+\.\d+\.\d+-alpine$".into()),
        exclude: Some("rc|beta".into()),
        ..StrategyOptions::default()
    };
    let mut samples = Vec::new();
    for i in 0..1100 {
        let started = Instant::now();
        std::hint::black_box(strategy.choose("1.22.4-alpine", &tags, &include).await?);
        if i >= 100 {
            samples.push(started.elapsed());
        }
    }
    report("choose with include + exclude regexes", &mut samples);

    // 100 containers sharing one repository's tag list.
    let currents: Vec<String> = tags
        .iter()
        .step_by(TAG_COUNT / CONTAINERS)
        .take(CONTAINERS)
        .cloned()
        .collect();
    let mut per_call = Vec::new();
    let mut rounds = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        for current in &currents {
            std::hint::black_box(strategy.choose(current, &tags, &options).await?);
        }
        let elapsed = started.elapsed();
        rounds.push(elapsed);
        per_call.push(elapsed / currents.len() as u32);
    }
    report(
        &format!("{CONTAINERS} containers, sequential: per call"),
        &mut per_call,
    );
    let mut rounds_ms = rounds.clone();
    let p50 = percentile(&mut rounds_ms, 0.5);
    println!(
        "{:<52} p50 {:>8.2} ms",
        format!("{CONTAINERS} containers, sequential: whole round"),
        p50.as_secs_f64() * 1e3
    );

    let shared =
        Arc::new(StrategyPlugin::new(&semver.component, spec(Vec::new(), limits, 2)).await?);
    let tags = Arc::new(tags);
    let mut per_call = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let calls = currents.iter().map(|current| {
            let shared = shared.clone();
            let tags = tags.clone();
            let current = current.clone();
            tokio::spawn(async move {
                shared
                    .choose(&current, &tags, &StrategyOptions::default())
                    .await
                    .map(|_| ())
            })
        });
        for outcome in futures::future::join_all(calls).await {
            outcome??;
        }
        per_call.push(started.elapsed() / currents.len() as u32);
    }
    report(
        &format!("{CONTAINERS} containers, concurrent (2 instances): per call"),
        &mut per_call,
    );
    Ok(())
}
