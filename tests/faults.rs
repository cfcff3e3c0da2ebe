//! Fault injection: a loopback fault proxy (`crowsnest_testkit::faults`) in
//! front of the real test registry gives each repository one failure — a
//! registry that is down, slow past the deadline, a 429 storm, a 500, HTML
//! or truncated JSON instead of JSON, a 100 MB body, a redirect to a host not
//! allowed. One scan covers them all: it completes, each affected container
//! carries its precise error, and the healthy container behind the same
//! proxy is checked correctly.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.

use std::time::Duration;

use crowsnest::model::{CheckStatus, ContainerObject, ScanReport};
use crowsnest::scan::Scanner;
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::faults::{Fault, FaultProxy};
use crowsnest_testkit::images::{E2E_1_0, E2E_2_0};
use crowsnest_testkit::ports::free_port;
use crowsnest_testkit::scans::{assert_failed, assert_tag_update, container, images, Case};
use crowsnest_testkit::world::TestWorld;

/// Guard against a hang: every scan here must end long before (its own
/// deadlines are a few seconds); this is not a speed check.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// One injected fault and the words its container's error must carry.
struct FaultCase {
    name: &'static str,
    fault: Option<Fault>,
    words: Vec<String>,
}

fn config(world: &TestWorld, scan: &str, plugins: &str) -> std::path::PathBuf {
    world.config(&format!(
        "{}[scan]\n{scan}\n\n[plugins]\n{plugins}\n",
        crowsnest_testkit::config::watcher(Engine::shared(), ""),
    ))
}

async fn scan_within_guard(scanner: &Scanner, patterns: &[&str]) -> ScanReport {
    tokio::time::timeout(HANG_GUARD, scanner.scan(&images(patterns)))
        .await
        .expect("the scan ended (its deadlines bound it)")
}

fn errored(object: &ContainerObject, words: &[String]) {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    assert_failed(object, &words, Case::Sensitive);
    assert_eq!(
        object.check.status,
        CheckStatus::Error,
        "{:?}",
        object.check
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registry_fault_fails_only_its_containers_with_a_precise_error() {
    let world = TestWorld::new("faults");
    let upstream = world.registries.plain.clone();
    let proxy = FaultProxy::start(&upstream).await;
    let healthy = world.repository("healthy");
    world.push_tags(
        &format!("{upstream}/{healthy}"),
        &[("1.0", E2E_1_0), ("2.0", E2E_2_0)],
    );
    let dead = format!("127.0.0.1:{}", free_port());
    let cases = [
        FaultCase {
            name: "registry down",
            fault: None,
            words: vec!["transport error".into(), dead.clone()],
        },
        FaultCase {
            name: "slow past the lookup deadline",
            fault: Some(Fault::Slow(Duration::from_secs(60))),
            words: vec!["timed out after 8 s ([scan] lookup_timeout_secs)".into()],
        },
        FaultCase {
            name: "429 storm with Retry-After",
            fault: Some(Fault::TooManyRequests {
                retry_after_secs: 1,
            }),
            words: vec![
                format!("rate limited by {} (429, Retry-After 1 s)", proxy.host()),
                "until the deadline: timed out after 8 s ([scan] lookup_timeout_secs)".into(),
            ],
        },
        FaultCase {
            name: "500",
            fault: Some(Fault::ServerError),
            words: vec!["500".into()],
        },
        FaultCase {
            name: "HTML instead of JSON",
            fault: Some(Fault::Html),
            words: vec!["registry protocol error".into()],
        },
        FaultCase {
            name: "truncated JSON",
            fault: Some(Fault::TruncatedJson),
            words: vec!["registry protocol error".into()],
        },
        FaultCase {
            name: "a 100 MB body",
            fault: Some(Fault::HugeBody(100 << 20)),
            words: vec!["body exceeds the 16777216-byte limit".into()],
        },
        FaultCase {
            name: "redirect to a host not allowed",
            fault: Some(Fault::RedirectTo(format!("http://{upstream}"))),
            words: vec![
                "host not allowed for this plugin".into(),
                format!("redirect to http://{upstream} refused"),
            ],
        },
    ];
    let mut containers = Vec::new();
    let mut patterns = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let repository = world.repository(&format!("fault{index}"));
        let domain = match &case.fault {
            Some(fault) => {
                proxy.inject(&repository, fault.clone());
                proxy.host()
            }
            None => dead.clone(),
        };
        let image = format!("{domain}/{repository}");
        world.tag(E2E_1_0, &format!("{image}:1.0"));
        containers.push(world.run(&format!("{image}:1.0"), &[]));
        patterns.push(image);
    }
    let healthy_image = format!("{}/{healthy}", proxy.host());
    world.tag(E2E_1_0, &format!("{healthy_image}:1.0"));
    let healthy_container = world.run(&format!("{healthy_image}:1.0"), &[]);
    patterns.push(healthy_image);

    let config = config(&world, "lookup_timeout_secs = 8\nregistry_timeout = 20", "");
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let report = scan_within_guard(&world.scanner(&config).await, &patterns).await;

    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    assert_tag_update(
        container(&report, &healthy_container),
        "1.0",
        "2.0",
        "major",
    );
    let indexed: Vec<(&FaultCase, &String)> = cases.iter().zip(&containers).collect();
    check_each(
        &indexed,
        |(case, _)| case.name.to_string(),
        |(case, id)| {
            let object = container(&report, id).clone();
            let words = case.words.clone();
            async move { errored(&object, &words) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_call_stuck_on_a_slow_host_is_stopped_by_its_wall_clock_deadline() {
    let world = TestWorld::new("faultscall");
    let upstream = world.registries.plain.clone();
    let proxy = FaultProxy::start(&upstream).await;
    let healthy = world.repository("healthy");
    world.push_tags(
        &format!("{upstream}/{healthy}"),
        &[("1.0", E2E_1_0), ("2.0", E2E_2_0)],
    );
    let slow = world.repository("slow");
    world.push_tags(
        &format!("{upstream}/{slow}"),
        &[("1.0", E2E_1_0), ("2.0", E2E_2_0)],
    );
    proxy.inject(&slow, Fault::Slow(Duration::from_secs(60)));
    let slow_image = format!("{}/{slow}", proxy.host());
    let healthy_image = format!("{}/{healthy}", proxy.host());
    world.tag(E2E_1_0, &format!("{slow_image}:1.0"));
    world.tag(E2E_1_0, &format!("{healthy_image}:1.0"));
    let stuck = world.run(&format!("{slow_image}:1.0"), &[]);
    let fine = world.run(&format!("{healthy_image}:1.0"), &[]);

    // The guest's CPU limit never fires (it waits in a host call); the
    // per-call wall clock (2 s) does, well before the lookup's (60 s) and the
    // registry request's (30 s).
    let config = config(
        &world,
        "lookup_timeout_secs = 60\nregistry_timeout = 30",
        "call_timeout_secs = 2",
    );
    let scanner = world.scanner(&config).await;
    let report = scan_within_guard(&scanner, &[&slow_image, &healthy_image]).await;
    errored(
        container(&report, &stuck),
        &["exceeded its wall-clock deadline (2 s per call, host calls included)".into()],
    );
    assert_tag_update(container(&report, &fine), "1.0", "2.0", "major");

    // The discarded instance is rebuilt: the same scanner checks it once the registry answers.
    proxy.inject(&slow, Fault::Slow(Duration::ZERO));
    let report = scan_within_guard(&scanner, &[&slow_image]).await;
    assert_tag_update(container(&report, &stuck), "1.0", "2.0", "major");
}
