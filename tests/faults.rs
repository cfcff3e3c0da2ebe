//! Fault injection: a loopback fault proxy (`crowsnest_testkit::faults`) in
//! front of the real test registry gives each repository one failure — a
//! registry that is down, slow past the deadline, a 429 storm, a 500, HTML
//! or truncated JSON instead of JSON, a 100 MB body, a redirect to a host not
//! allowed. One scan covers them all: it completes, each affected container
//! carries its precise error, and the healthy container behind the same
//! proxy is checked correctly. A same-origin token realm
//! (`crowsnest_testkit::token_realm`) in front of the real token registry
//! adds tokens refused mid-scan while every request permit is taken, and
//! tokens that expire mid-scan. Docker faults: an engine (the kit's engine
//! proxy in front of the shared one) answering `500` to an inspection
//! during an event refresh; `serve` killed with SIGKILL in the middle of a
//! scan, then restarted; a private dockerd restarted under `serve`; a
//! watcher unreachable among several, through `serve` and `crowsnest rescan`.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.

use std::time::{Duration, Instant};

use crowsnest::model::{CheckStatus, ContainerObject, ScanReport};
use crowsnest::scan::Scanner;
use crowsnest_testkit::binary::Crowsnest;
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::containers::Containers;
use crowsnest_testkit::engine::{Engine, OwnEngine};
use crowsnest_testkit::engine_proxy::EngineProxy;
use crowsnest_testkit::faults::{Fault, FaultProxy};
use crowsnest_testkit::images::{E2E_1_0, E2E_2_0};
use crowsnest_testkit::ports::free_port;
use crowsnest_testkit::scans::{self, assert_failed, assert_tag_update, container, images, Case};
use crowsnest_testkit::token_realm::{TokenLifetime, TokenRealmProxy};
use crowsnest_testkit::wait;
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

/// Requests in flight per registry origin in the token-realm scans: the
/// token requests share the registry's permits (same origin).
const TOKEN_REALM_CONCURRENCY: usize = 2;

/// Repositories (one container each) behind the token realm: three times
/// the permits, so refused tokens meet with every permit taken.
const TOKEN_REALM_REPOSITORIES: usize = 6;

/// A world with [`TOKEN_REALM_REPOSITORIES`] repositories (`1.0`, `2.0`) on
/// the token registry, each run at `1.0` through `proxy`; returns the
/// scanner (credentials for the proxy's origin, `[scan]
/// registry_concurrency` from `scan_concurrency` and the registry's own
/// `concurrency` line `registry_concurrency`), the image patterns and the
/// container ids.
async fn token_realm_world(
    world: &TestWorld,
    proxy: &TokenRealmProxy,
    scan_concurrency: usize,
    registry_concurrency: &str,
) -> (Scanner, Vec<String>, Vec<String>) {
    let registry = world.registries.token.clone();
    let (user, password) = world.registries.token_user.clone();
    world.login(&registry, &user, &password);
    let mut patterns = Vec::new();
    let mut containers = Vec::new();
    for index in 0..TOKEN_REALM_REPOSITORIES {
        let repository = world.repository(&format!("realm{index}"));
        world.push_tags(
            &format!("{registry}/{repository}"),
            &[("1.0", E2E_1_0), ("2.0", E2E_2_0)],
        );
        let image = format!("{}/{repository}", proxy.host());
        world.tag(E2E_1_0, &format!("{image}:1.0"));
        containers.push(world.run(&format!("{image}:1.0"), &[]));
        patterns.push(image);
    }
    let config = world.config(&format!(
        "{}[scan]\nregistry_concurrency = {scan_concurrency}\nregistry_concurrency_start = {scan_concurrency}\n\n[registries.realm]\nplugin = \"oci\"\nurl = \"http://{}\"\nusername = \"{user}\"\npassword = \"{password}\"\n{registry_concurrency}\n",
        crowsnest_testkit::config::watcher(Engine::shared(), ""),
        proxy.host(),
    ));
    (world.scanner(&config).await, patterns, containers)
}

/// Scans `patterns`; every container is offered `2.0`, and the proxy never
/// saw more than `ceiling` requests at once. Returns how long it took.
async fn scan_token_realm(
    scanner: &Scanner,
    proxy: &TokenRealmProxy,
    (patterns, containers): (&[String], &[String]),
    ceiling: usize,
) -> Duration {
    let started = Instant::now();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let report = scan_within_guard(scanner, &patterns).await;
    let took = started.elapsed();
    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    for id in containers {
        assert_tag_update(container(&report, id), "1.0", "2.0", "major");
    }
    assert!(
        proxy.max_in_flight() <= ceiling,
        "{} requests in flight at once, above the ceiling {ceiling}",
        proxy.max_in_flight()
    );
    took
}

/// Token requests a scan of `took` may make when tokens live `lifetime`:
/// per repository, the first one and one per lifetime elapsed, plus one.
fn token_request_bound(took: Duration, lifetime: Duration) -> usize {
    let lifetimes = took.as_secs_f64() / lifetime.as_secs_f64();
    TOKEN_REALM_REPOSITORIES * (lifetimes.ceil() as usize + 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refused_at_a_same_origin_realm_with_every_permit_taken_do_not_hang_the_scan() {
    let world = TestWorld::new("faultsrealm");
    // A first scan caches a token per repository (announced for 300 s);
    // then the registry revokes them all (a key rotation): every
    // repository's request of the next scan meets a 401 while the other
    // requests hold the origin's permits, and the token they need is on
    // that same origin (Harbor `/service/token`).
    let proxy = TokenRealmProxy::start(
        &world.registries.token,
        &world.registries.token_server,
        TokenLifetime {
            announced_secs: 300,
            rejected_after: Duration::from_secs(300),
        },
        Duration::from_millis(300),
    )
    .await;
    let (scanner, patterns, containers) =
        token_realm_world(&world, &proxy, TOKEN_REALM_CONCURRENCY, "").await;
    let scanned = (patterns.as_slice(), containers.as_slice());
    scan_token_realm(&scanner, &proxy, scanned, TOKEN_REALM_CONCURRENCY).await;
    // One token covers every repository of the scan (several `scope`s).
    assert_eq!(proxy.token_requests(), 1);
    proxy.revoke_issued();
    let took = scan_token_realm(&scanner, &proxy, scanned, TOKEN_REALM_CONCURRENCY).await;
    println!(
        "same-origin realm, cached tokens revoked: scan {took:?}, {} token requests, {} refused requests, {} in flight at most",
        proxy.token_requests(),
        proxy.expired_rejections(),
        proxy.max_in_flight()
    );
    // The revoked token was sent by as many requests at once as there are
    // permits (the deadlock case); later requests use its renewal.
    assert!(
        proxy.expired_rejections() >= TOKEN_REALM_CONCURRENCY,
        "the revoked token was refused at every permit ({took:?})"
    );
    // The first token and its one renewal, shared by every refused request.
    assert_eq!(proxy.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_scan_is_renewed_and_token_requests_stay_bounded() {
    let world = TestWorld::new("faultsexpiry");
    // Tokens live 1 s and say so; the scan lasts several seconds.
    let lifetime = Duration::from_secs(1);
    let proxy = TokenRealmProxy::start(
        &world.registries.token,
        &world.registries.token_server,
        TokenLifetime {
            announced_secs: lifetime.as_secs(),
            rejected_after: lifetime,
        },
        Duration::from_millis(500),
    )
    .await;
    let (scanner, patterns, containers) =
        token_realm_world(&world, &proxy, TOKEN_REALM_CONCURRENCY, "").await;
    let scanned = (patterns.as_slice(), containers.as_slice());
    let took = scan_token_realm(&scanner, &proxy, scanned, TOKEN_REALM_CONCURRENCY).await;
    let first_scan_tokens = proxy.token_requests();
    println!(
        "tokens living 1 s: scan {took:?}, {first_scan_tokens} token requests, {} refused requests",
        proxy.expired_rejections()
    );
    assert!(
        took > lifetime,
        "the scan ({took:?}) outlived the first tokens"
    );
    assert!(
        first_scan_tokens <= token_request_bound(took, lifetime / 2),
        "{first_scan_tokens} token requests in {took:?}"
    );

    // Every cached token has expired by the next scan: renewed, all correct.
    tokio::time::sleep(lifetime).await;
    let took = scan_token_realm(&scanner, &proxy, scanned, TOKEN_REALM_CONCURRENCY).await;
    assert!(
        proxy.token_requests() - first_scan_tokens <= token_request_bound(took, lifetime / 2),
        "{} token requests in the second scan ({took:?})",
        proxy.token_requests() - first_scan_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspection_answered_500_during_an_event_refresh_keeps_the_stored_container() {
    let world = TestWorld::new("faultsinspect");
    let engine = EngineProxy::start(Engine::shared().socket()).await;
    let image = world.plain_image("inspected");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let id = world.run(&format!("{image}:1.0"), &[]);
    let config = world.config(&format!("[watchers.local]\nhost = \"{}\"\n", engine.url()));
    let scanner = world.scanner(&config).await;
    let report = scan_within_guard(&scanner, &[&image]).await;
    assert_tag_update(container(&report, &id), "1.0", "2.0", "major");

    // The refresh a Docker event starts: the engine fails the inspection.
    engine.fail_inspections_of(&id);
    let error = scanner
        .refresh_container("local", &id)
        .await
        .expect_err("a failed inspection is an error, not a vanished container");
    assert!(
        error
            .to_string()
            .contains("inspection failed (engine proxy fault)"),
        "{error}"
    );
    let stored: Option<ContainerObject> = scanner.store().get_container(&id).await.expect("store");
    let stored = stored.expect("the container stays in the store");
    assert_tag_update(&stored, "1.0", "2.0", "major");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrys_own_concurrency_caps_its_requests_in_flight() {
    let world = TestWorld::new("faultsceiling");
    let proxy = TokenRealmProxy::start(
        &world.registries.token,
        &world.registries.token_server,
        TokenLifetime {
            announced_secs: 300,
            rejected_after: Duration::from_secs(300),
        },
        Duration::from_millis(100),
    )
    .await;
    // The general ceiling would let 8 through; the registry's own says 1.
    let (scanner, patterns, containers) =
        token_realm_world(&world, &proxy, 8, "concurrency = 1").await;
    let scanned = (patterns.as_slice(), containers.as_slice());
    scan_token_realm(&scanner, &proxy, scanned, 1).await;
    assert_eq!(proxy.max_in_flight(), 1);
}

/// A `crowsnest serve` process, killed on drop (also when a test fails).
struct Serving(std::process::Child);

impl Serving {
    /// SIGKILL, as the OOM killer or a power cut would stop it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `crowsnest serve` with `config`, its log in `dir/serve.log`.
fn spawn_serve(dir: &std::path::Path, config: &std::path::Path) -> Serving {
    let log = std::fs::File::create(dir.join("serve.log")).expect("serve log");
    let child = Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"))
        .command(dir)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start crowsnest serve");
    Serving(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_scan_leaves_an_intact_store_with_every_result() {
    let world = TestWorld::new("faultskill");
    let upstream = world.registries.plain.clone();
    let proxy = FaultProxy::start(&upstream).await;
    let mut ids = Vec::new();
    let mut repositories = Vec::new();
    for index in 0..4 {
        let repository = world.repository(&format!("kill{index}"));
        world.push_tags(
            &format!("{upstream}/{repository}"),
            &[("1.0", E2E_1_0), ("2.0", E2E_2_0)],
        );
        let image = format!("{}/{repository}", proxy.host());
        world.tag(E2E_1_0, &format!("{image}:1.0"));
        ids.push(world.run(&format!("{image}:1.0"), &[("crowsnest.watch", "true")]));
        repositories.push(repository);
    }
    let port = free_port();
    let config = world.config(&format!(
        "{}[server]\nlisten = \"127.0.0.1:{port}\"\ngrpc_listen = \"\"\n",
        crowsnest_testkit::config::watcher(
            Engine::shared(),
            "watch_by_default = false\nschedule = \"0 0 1 1 *\"\njitter = 0"
        ),
    ));
    let first = scan_within_guard(&world.scanner(&config).await, &[]).await;
    for id in &ids {
        assert_tag_update(container(&first, id), "1.0", "2.0", "major");
    }

    // `serve`'s start-up scan waits on the slowed registry: killed (SIGKILL)
    // in its middle.
    for repository in &repositories {
        proxy.inject(repository, Fault::Slow(Duration::from_secs(60)));
    }
    let mut serve = spawn_serve(world.dir(), &config);
    wait::eventually(
        Duration::from_secs(60),
        "the start-up scan's registry requests",
        || {
            let seen = proxy.faulty_requests();
            async move { (seen > 0).then_some(()) }
        },
    )
    .await;
    serve.kill();

    let store_path = world.dir().join("store.db");
    let integrity: String = rusqlite::Connection::open(&store_path)
        .expect("open the store")
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    // Nothing lost, nothing invented: each result is the first scan's.
    let stored: Vec<ContainerObject> = crowsnest::store::Store::open(&store_path)
        .await
        .expect("reopen the store")
        .list_containers()
        .await
        .expect("read the store");
    for id in &ids {
        let before = container(&first, id);
        let after = stored
            .iter()
            .find(|object| &object.id == id)
            .unwrap_or_else(|| panic!("{id} lost from the store"));
        assert_eq!(
            (
                &after.result,
                after.update_available,
                &after.check,
                &after.error
            ),
            (
                &before.result,
                before.update_available,
                &before.check,
                &before.error
            ),
            "{id}"
        );
    }

    // Restarted with the registry healthy: its scan is stored, all correct.
    for repository in &repositories {
        proxy.inject(repository, Fault::Slow(Duration::ZERO));
    }
    let mut serve = spawn_serve(world.dir(), &config);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    ready(&http, &base).await;
    let stored = listed(&http, &base).await;
    serve.kill();
    for id in &ids {
        assert_tag_update(scans::find(&stored, id), "1.0", "2.0", "major");
    }
}

/// The stored containers `serve` on `base` lists.
async fn listed(http: &reqwest::Client, base: &str) -> Vec<ContainerObject> {
    http.get(format!("{base}/api/containers"))
        .send()
        .await
        .expect("GET /api/containers")
        .json()
        .await
        .expect("containers JSON")
}

/// Waits until `serve` on `base` is ready (its start-up scan finished).
async fn ready(http: &reqwest::Client, base: &str) {
    wait::eventually(
        Duration::from_secs(90),
        "serve ready after its start-up scan",
        || {
            let request = http.get(format!("{base}/readyz")).send();
            async move { request.await.ok().filter(|r| r.status() == 200).map(drop) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_restarted_under_serve_reconnects_events_and_deletes_nothing() {
    let world = TestWorld::new("faultsdockerd");
    let image = world.plain_image("restarted");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let own = OwnEngine::start("restart");
    own.engine().docker(&["pull", &format!("{image}:1.0")]);
    let containers = Containers::new(own.engine(), "restart");
    let always = ["--restart", "always"];
    let before = containers.run_with(&always, &format!("{image}:1.0"), &[]);
    let port = free_port();
    let config = world.config(&format!(
        "[watchers.local]\nsocket = \"{}\"\nschedule = \"0 0 1 1 *\"\njitter = 0\n\n[server]\nlisten = \"127.0.0.1:{port}\"\ngrpc_listen = \"\"\nevent_debounce_ms = 100\n",
        own.engine().socket().display()
    ));
    let _serve = spawn_serve(world.dir(), &config);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    ready(&http, &base).await;
    assert_tag_update(
        scans::find(&listed(&http, &base).await, &before.id),
        "1.0",
        "2.0",
        "major",
    );

    own.restart();
    // A container created after the restart reaches the store through the
    // reconnected event stream (the schedule is yearly: no scan runs).
    let after = containers.run_with(&always, &format!("{image}:1.0"), &[]);
    let stored = wait::eventually(
        Duration::from_secs(90),
        "the container started after the restart, through events",
        || {
            let (http, base, id) = (http.clone(), base.clone(), after.id.clone());
            async move {
                let stored = listed(&http, &base).await;
                stored
                    .iter()
                    .any(|object| object.id == id)
                    .then_some(stored)
            }
        },
    )
    .await;
    assert_tag_update(scans::find(&stored, &after.id), "1.0", "2.0", "major");
    // The one from before was never deleted, its result intact.
    assert_tag_update(scans::find(&stored, &before.id), "1.0", "2.0", "major");

    // The next full scan is correct and complete.
    let rescan = http
        .post(format!("{base}/api/containers/watch"))
        .send()
        .await
        .expect("POST /api/containers/watch");
    assert_eq!(rescan.status(), 200);
    assert!(
        rescan.headers().get("x-crowsnest-watcher-errors").is_none(),
        "{:?}",
        rescan.headers()
    );
    let rescanned: Vec<ContainerObject> = rescan.json().await.expect("rescan JSON");
    for id in [&before.id, &after.id] {
        assert_tag_update(scans::find(&rescanned, id), "1.0", "2.0", "major");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_unreachable_among_several_is_named_and_the_others_answer() {
    let world = TestWorld::new("faultswatchers").with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"));
    let image = world.plain_image("among");
    world.push_tags(&image, &[("1.0", E2E_1_0), ("2.0", E2E_2_0)]);
    let id = world.run(&format!("{image}:1.0"), &[("crowsnest.watch", "true")]);
    let port = free_port();
    let yearly = "schedule = \"0 0 1 1 *\"\njitter = 0";
    let config = world.config(&format!(
        "{}[watchers.gone]\nsocket = \"{}\"\n{yearly}\n\n[server]\nlisten = \"127.0.0.1:{port}\"\ngrpc_listen = \"\"\n",
        crowsnest_testkit::config::watcher(
            Engine::shared(),
            &format!("watch_by_default = false\n{yearly}")
        ),
        world.dir().join("no-such-dir/docker.sock").display()
    ));
    let _serve = spawn_serve(world.dir(), &config);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait::eventually(Duration::from_secs(60), "serve listening", || {
        let request = http.get(format!("{base}/health")).send();
        async move { request.await.ok().filter(|r| r.status() == 200).map(drop) }
    })
    .await;

    let rescan = http
        .post(format!("{base}/api/containers/watch"))
        .send()
        .await
        .expect("POST /api/containers/watch");
    assert_eq!(rescan.status(), 200);
    let failed: Vec<serde_json::Value> = serde_json::from_str(
        rescan
            .headers()
            .get("x-crowsnest-watcher-errors")
            .and_then(|value| value.to_str().ok())
            .expect("the failed watcher is named in the header"),
    )
    .expect("header JSON");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["watcher"], "gone", "{failed:?}");
    let rescanned: Vec<ContainerObject> = rescan.json().await.expect("rescan JSON");
    assert_tag_update(scans::find(&rescanned, &id), "1.0", "2.0", "major");

    // `crowsnest rescan`: the other watcher's table, the failure, exit 1.
    let output =
        tokio::task::block_in_place(|| world.crowsnest(&config, &["rescan", "--server", &base]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("`gone`"), "{stderr}");
    let row = stdout
        .lines()
        .find(|line| line.contains(&world.repository("among")))
        .unwrap_or_else(|| panic!("no row for the reachable watcher's container: {stdout}"));
    assert!(row.contains("2.0"), "{row}");
}
