//! crowsnest-testkit: the test world every integration test and benchmark of
//! crowsnest runs in, and nothing else.
//!
//! Responsibility: reach the Docker engines the tests use ([`engine`]: the
//! shared one of `scripts/dockerd.sh`, and a private one started on demand
//! and stopped when the test process exits), loopback TCP proxies that make
//! one engine stand for many ([`engine_proxy`]), the FROM-scratch busybox images
//! they run ([`images`]), the loopback registries ([`registry`]: those of
//! `scripts/registries.sh`, a `docker-registry` per test killed on drop, the
//! registry HTTP API, a counting proxy), a same-origin token realm with
//! short-lived tokens in front of the token registry ([`token_realm`]), a
//! fault proxy ([`faults`]), containers removed on drop ([`containers`]), the control-plane tests' app-and-lib world
//! ([`control_plane`]), configuration files ([`config`]), the `crowsnest` binary
//! ([`binary`]), polling ([`wait`]), loopback ports ([`ports`]), scan
//! requests and the checks on their results ([`scans`]), table-driven cases
//! reported together ([`cases`]), one test's slice of the shared world
//! ([`world`]), plugin catalogs, fixtures and instance specs ([`plugins`]),
//! the services triggers deliver to — real mosquitto and aiosmtpd, and
//! emulators of the chat and push services — with the process's log lines
//! ([`services`]), and the figures benchmarks print ([`figures`]). All traffic stays on
//! 127.0.0.1; everything a test starts is stopped when it ends.
//!
//! A dev-dependency only: it depends on the library crates (config, engine,
//! model, oci, plugin-host), never on the `crowsnest` front end its tests drive.

pub mod binary;
pub mod cases;
pub mod config;
pub mod containers;
pub mod control_plane;
pub mod engine;
pub mod engine_proxy;
pub mod faults;
pub mod figures;
pub mod images;
pub mod plugins;
pub mod ports;
pub mod registry;
pub mod scans;
pub mod services;
pub mod token_realm;
pub mod wait;
pub mod world;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository root (the directory of `scripts/` and `target/`).
pub fn repo_root() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `target/test-env`, where the scripts keep the test world's state.
pub fn test_env() -> PathBuf {
    repo_root().join("target/test-env")
}

/// A lower-case name no other call and no earlier run used,
/// `{what}-{pid}-{nanoseconds}-{n}`: the loopback registries keep what tests
/// push, so a rerun must never meet an earlier run's repositories.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
