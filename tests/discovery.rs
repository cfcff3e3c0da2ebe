//! Docker discovery against a real Docker engine.
//!
//! Needs a daemon on the socket (`scripts/dockerd.sh start`); the local test
//! images are built on demand with `scripts/dockerd.sh build-images`. The test
//! world is set up with the `docker` CLI, independently of the code under test;
//! every container runs with `--network none`, carries `crowsnest-test=1` and is
//! removed by a drop guard.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crowsnest::discovery::{
    discover_all, ContainerAction, DiscoveredContainer, DiscoveryError, DockerWatcher,
    WatcherConfig,
};
use futures::StreamExt;

const IMAGE_1_0: &str = "crowsnest-test/busybox:1.0";
/// Only tag of its image, so a container created from its id resolves to it.
const IMAGE_2_0: &str = "crowsnest-test/busybox:2.0";

fn socket_path() -> PathBuf {
    std::env::var_os("CROWSNEST_TEST_DOCKER_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the docker CLI against the test socket; panics with its stderr on failure.
fn docker(args: &[&str]) -> String {
    let host = format!("unix://{}", socket_path().display());
    let output = Command::new("docker")
        .arg("--host")
        .arg(&host)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the docker CLI: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn docker_succeeds(args: &[&str]) -> bool {
    let host = format!("unix://{}", socket_path().display());
    Command::new("docker")
        .arg("--host")
        .arg(&host)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

fn local_config() -> WatcherConfig {
    WatcherConfig {
        socket: Some(socket_path()),
        ..Default::default()
    }
}

/// Connects to the test daemon and makes sure the test images exist.
async fn test_watcher(config: WatcherConfig) -> DockerWatcher {
    let watcher = match DockerWatcher::connect("local", config).await {
        Ok(watcher) => watcher,
        Err(error) => panic!(
            "Docker is not reachable ({error}).\n\
             Start the test engine first: run scripts/dockerd.sh start"
        ),
    };
    ensure_test_images();
    watcher
}

fn ensure_test_images() {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if [IMAGE_1_0, IMAGE_2_0]
            .iter()
            .all(|image| docker_succeeds(&["image", "inspect", image]))
        {
            return;
        }
        let status = Command::new(repo_root().join("scripts/dockerd.sh"))
            .arg("build-images")
            .env("CROWSNEST_DOCKER_SOCKET", socket_path())
            .status()
            .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh build-images: {error}"));
        assert!(status.success(), "scripts/dockerd.sh build-images failed");
    });
}

/// Removes the containers (and image tags) a test created, even when it panics.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    image_tags: Vec<String>,
}

impl Cleanup {
    /// `docker create`s a container with a unique name, `--network none` and the
    /// test label, optionally starts it, and returns its full id.
    fn container(&mut self, image: &str, labels: &[(&str, &str)], start: bool) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "crowsnest-discovery-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut args: Vec<String> = [
            "create",
            "--network",
            "none",
            "--label",
            "crowsnest-test=1",
            "--name",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.push(name);
        for (key, value) in labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.push(image.to_owned());
        args.extend(["sleep".to_owned(), "300".to_owned()]);
        let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker(&borrowed);
        self.containers.push(id.clone());
        if start {
            docker(&["start", &id]);
        }
        id
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.containers {
            if !docker_succeeds(&["rm", "--force", "--volumes", id]) {
                eprintln!("cleanup: could not remove container {id}");
            }
        }
        for tag in &self.image_tags {
            if !docker_succeeds(&["rmi", tag]) {
                eprintln!("cleanup: could not remove image tag {tag}");
            }
        }
    }
}

fn find<'a>(containers: &'a [DiscoveredContainer], id: &str) -> Option<&'a DiscoveredContainer> {
    containers.iter().find(|container| container.id == id)
}

#[tokio::test]
async fn labels_are_resolved_with_crowsnest_winning_over_wud() {
    let watcher = test_watcher(local_config()).await;
    let mut cleanup = Cleanup::default();
    let id = cleanup.container(
        IMAGE_1_0,
        &[
            ("crowsnest.tag.include", r"^1\.\d+$"),
            ("wud.tag.include", "^ignored$"),
            ("wud.tag.exclude", "rc"),
            ("wud.strategy", "semver"),
            ("crowsnest.tag.transform", r"^(\d+)\.(\d+)$ => $1.$2.0"),
            ("crowsnest.strategy.regex", r"^(\d+)\.(\d+)$"),
            ("wud.watch.digest", "true"),
            ("crowsnest.registry.lookup.image", "library/busybox"),
            ("crowsnest.link.template", "https://example.test/${major}"),
            ("crowsnest.display.name", "Pretty Name"),
            ("wud.display.name", "Wud Name"),
            ("crowsnest.trigger.include", "ntfy.home"),
            ("wud.trigger.exclude", "slack"),
            ("unrelated", "kept"),
        ],
        true,
    );

    let containers = watcher.discover().await.unwrap();
    let container = find(&containers, &id).expect("started container is listed");

    assert_eq!(container.error, None);
    assert_eq!(container.watcher, "local");
    assert!(
        container.name.starts_with("crowsnest-discovery-"),
        "{}",
        container.name
    );
    assert_eq!(container.status, "running");
    assert!(container.watched);
    let options = &container.options;
    assert_eq!(options.tag_include.as_deref(), Some(r"^1\.\d+$"));
    assert_eq!(options.tag_exclude.as_deref(), Some("rc"));
    assert_eq!(options.strategy.as_deref(), Some("semver"));
    assert_eq!(options.strategy_regex.as_deref(), Some(r"^(\d+)\.(\d+)$"));
    assert_eq!(
        options.tag_transform.as_deref(),
        Some(r"^(\d+)\.(\d+)$ => $1.$2.0")
    );
    assert_eq!(options.watch_digest, Some(true));
    assert_eq!(options.watch, None);
    assert_eq!(
        options.registry_lookup_image.as_deref(),
        Some("library/busybox")
    );
    assert_eq!(
        options.link_template.as_deref(),
        Some("https://example.test/${major}")
    );
    assert_eq!(options.trigger_include.as_deref(), Some("ntfy.home"));
    assert_eq!(options.trigger_exclude.as_deref(), Some("slack"));
    assert_eq!(container.display_name(), "Pretty Name");
    assert_eq!(
        container.labels.get("unrelated").map(String::as_str),
        Some("kept")
    );
    assert_eq!(
        container.labels.get("crowsnest-test").map(String::as_str),
        Some("1")
    );

    // Image details come from the image inspection.
    assert_eq!(container.image_reference, IMAGE_1_0);
    assert_eq!(container.resolved_image_reference(), Some(IMAGE_1_0));
    let expected_image_id = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE_1_0]);
    assert_eq!(container.image_id, expected_image_id);
    assert!(
        container.repo_tags.iter().any(|tag| tag == IMAGE_1_0),
        "{:?}",
        container.repo_tags
    );
    assert_eq!(container.os.as_deref(), Some("linux"));
    let expected_arch = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        IMAGE_1_0,
    ]);
    assert_eq!(
        container.architecture.as_deref(),
        Some(expected_arch.as_str())
    );
    assert!(container
        .image_created
        .as_deref()
        .is_some_and(|created| created.starts_with("20")));

    // A single-container rediscovery sees the same thing.
    let single = watcher.discover_one(&id).await.unwrap();
    assert_eq!(&single, container);
}

#[tokio::test]
async fn watch_label_opts_out_and_in() {
    let mut cleanup = Cleanup::default();
    let opted_out = cleanup.container(IMAGE_1_0, &[("crowsnest.watch", "false")], true);
    let wud_out_crowsnest_in = cleanup.container(
        IMAGE_1_0,
        &[("wud.watch", "false"), ("crowsnest.watch", "true")],
        true,
    );
    let unlabelled = cleanup.container(IMAGE_1_0, &[], true);
    let wud_in = cleanup.container(IMAGE_1_0, &[("wud.watch", "true")], true);
    let garbage = cleanup.container(IMAGE_1_0, &[("crowsnest.watch", "perhaps")], true);

    let watcher = test_watcher(local_config()).await;
    let containers = watcher.discover().await.unwrap();
    let watched = |id: &str| find(&containers, id).expect("listed").watched;
    assert!(!watched(&opted_out));
    assert!(watched(&wud_out_crowsnest_in));
    assert!(watched(&unlabelled));
    assert!(watched(&wud_in));
    let garbage_container = find(&containers, &garbage).expect("listed");
    assert!(
        garbage_container
            .error
            .as_deref()
            .is_some_and(|error| error.contains("crowsnest.watch") && error.contains("perhaps")),
        "{:?}",
        garbage_container.error
    );

    let opt_in_only = test_watcher(WatcherConfig {
        watch_by_default: false,
        ..local_config()
    })
    .await;
    let containers = opt_in_only.discover().await.unwrap();
    let watched = |id: &str| find(&containers, id).expect("listed").watched;
    assert!(!watched(&opted_out));
    assert!(watched(&wud_out_crowsnest_in));
    assert!(!watched(&unlabelled));
    assert!(watched(&wud_in));
}

#[tokio::test]
async fn stopped_containers_need_watch_all() {
    let watcher = test_watcher(local_config()).await;
    let mut cleanup = Cleanup::default();
    let created = cleanup.container(IMAGE_1_0, &[], false);
    let exited = cleanup.container(IMAGE_1_0, &[], true);
    docker(&["stop", "--time", "0", &exited]);
    let running = cleanup.container(IMAGE_1_0, &[], true);

    let containers = watcher.discover().await.unwrap();
    assert!(find(&containers, &running).is_some());
    assert!(find(&containers, &created).is_none());
    assert!(find(&containers, &exited).is_none());

    let all = test_watcher(WatcherConfig {
        watch_all: true,
        ..local_config()
    })
    .await;
    let containers = all.discover().await.unwrap();
    assert_eq!(
        find(&containers, &running).expect("running").status,
        "running"
    );
    assert_eq!(
        find(&containers, &created).expect("created").status,
        "created"
    );
    assert_eq!(find(&containers, &exited).expect("exited").status, "exited");
}

#[tokio::test]
async fn container_created_from_an_image_id_resolves_to_its_tag() {
    let watcher = test_watcher(local_config()).await;
    let mut cleanup = Cleanup::default();
    let image_id = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE_2_0]);
    let short_id = image_id.trim_start_matches("sha256:")[..12].to_owned();
    let from_full_id = cleanup.container(&image_id, &[], true);
    let from_short_id = cleanup.container(&short_id, &[], true);

    let containers = watcher.discover().await.unwrap();
    for (id, deployed) in [(&from_full_id, &image_id), (&from_short_id, &short_id)] {
        let container = find(&containers, id).expect("listed");
        assert_eq!(&container.image_reference, deployed);
        assert_eq!(container.image_id, image_id);
        assert_eq!(container.resolved_image_reference(), Some(IMAGE_2_0));
    }
}

#[tokio::test]
async fn unreachable_daemon_fails_only_its_watcher() {
    let missing = WatcherConfig {
        socket: Some(PathBuf::from("/nonexistent/crowsnest/docker.sock")),
        ..Default::default()
    };
    let error = DockerWatcher::connect("ghost", missing.clone())
        .await
        .expect_err("a missing socket cannot connect");
    assert!(
        matches!(error, DiscoveryError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("ghost"), "{message}");
    assert!(
        message.contains("/nonexistent/crowsnest/docker.sock"),
        "{message}"
    );

    // Nothing listens on port 1 of loopback: refused connection, same error kind.
    let refused = WatcherConfig {
        host: Some("tcp://127.0.0.1:1".into()),
        ..Default::default()
    };
    let error = DockerWatcher::connect("refused", refused.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, DiscoveryError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("tcp://127.0.0.1:1"), "{error}");

    test_watcher(local_config()).await;
    let watchers = BTreeMap::from([
        ("ghost".to_owned(), missing),
        ("local".to_owned(), local_config()),
        ("refused".to_owned(), refused),
    ]);
    let outcomes = discover_all(&watchers).await;
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        match outcome.watcher.as_str() {
            "local" => assert!(outcome.containers.is_ok(), "{:?}", outcome.containers),
            _ => assert!(outcome.containers.is_err()),
        }
    }
}

/// Forwards loopback TCP connections to the Docker socket, so the plain-TCP
/// client path is exercised against the real engine.
async fn tcp_to_socket_proxy() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::UnixStream::connect(socket_path()).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn tcp_watcher_discovers_the_same_containers() {
    test_watcher(local_config()).await;
    let mut cleanup = Cleanup::default();
    let id = cleanup.container(IMAGE_1_0, &[("crowsnest.strategy", "calver")], true);
    let address = tcp_to_socket_proxy().await;
    let remote = DockerWatcher::connect(
        "remote",
        WatcherConfig {
            host: Some(format!("tcp://{address}")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let containers = remote.discover().await.unwrap();
    let container = find(&containers, &id).expect("listed over TCP");
    assert_eq!(container.watcher, "remote");
    assert_eq!(container.options.strategy.as_deref(), Some("calver"));
    assert_eq!(container.image_reference, IMAGE_1_0);
}

#[tokio::test]
async fn container_events_report_lifecycle() {
    let watcher = test_watcher(local_config()).await;
    // Replaying from a second before the actions makes the test independent of
    // when the subscription reaches the engine.
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut cleanup = Cleanup::default();
    let id = cleanup.container(IMAGE_1_0, &[], true);
    docker(&["rm", "--force", &id]);
    let mut events = Box::pin(watcher.container_events(Some(since)));

    let mut seen = Vec::new();
    let wanted = [
        ContainerAction::Create,
        ContainerAction::Start,
        ContainerAction::Die,
        ContainerAction::Destroy,
    ];
    let collect = async {
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            if event.container_id == id {
                seen.push(event.action);
                if wanted.iter().all(|action| seen.contains(action)) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .unwrap_or_else(|_| panic!("events for {id} incomplete after 20s"));
    assert_eq!(seen, wanted);
}

/// A throw-away CNCF distribution registry on a free loopback port.
struct LocalRegistry {
    child: Child,
    address: SocketAddr,
    _storage: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> Self {
        let storage = tempfile::tempdir().unwrap();
        let port = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start docker-registry (apt-get install -y docker-registry): {error}")
            });
        let registry = Self {
            child,
            address,
            _storage: storage,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(address).is_ok() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not listen on {address} within 10s");
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn repo_digests_are_reported_after_a_pull() {
    let watcher = test_watcher(local_config()).await;
    let registry = LocalRegistry::start();
    let mut cleanup = Cleanup::default();
    let repository = format!(
        "{}/crowsnest-test/discovery-{}",
        registry.address,
        std::process::id()
    );
    let reference = format!("{repository}:1.0");

    // Docker treats 127.0.0.0/8 registries as insecure (plain HTTP) out of the box.
    docker(&["tag", IMAGE_1_0, &reference]);
    cleanup.image_tags.push(reference.clone());
    docker(&["push", "--quiet", &reference]);
    docker(&["rmi", &reference]);
    docker(&["pull", "--quiet", &reference]);
    let id = cleanup.container(&reference, &[], true);

    let containers = watcher.discover().await.unwrap();
    let container = find(&containers, &id).expect("listed");
    assert_eq!(container.image_reference, reference);
    assert_eq!(container.error, None);
    let digest_prefix = format!("{repository}@sha256:");
    assert!(
        container
            .repo_digests
            .iter()
            .any(|digest| digest.starts_with(&digest_prefix)),
        "{:?}",
        container.repo_digests
    );
    assert!(
        container.repo_tags.contains(&reference),
        "{:?}",
        container.repo_tags
    );
}
