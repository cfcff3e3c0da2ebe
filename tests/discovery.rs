//! Docker discovery against a real Docker engine.
//!
//! Needs a daemon on the socket (`scripts/dockerd.sh start`); the local test
//! images are built on demand with `scripts/dockerd.sh build-images`. The test
//! world is set up with the `docker` CLI, independently of the code under test;
//! every container runs with `--network none`, carries `crowsnest-test=1` and is
//! removed by a drop guard.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crowsnest::docker::{
    discover_all, ContainerAction, DiscoveredContainer, DiscoveryError, DockerWatcher,
    WatcherConfig,
};
use crowsnest_testkit::containers::Containers;
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::registry::PrivateRegistry;
use futures::StreamExt;

const IMAGE_1_0: &str = "crowsnest-test/busybox:1.0";
/// Only tag of its image, so a container created from its id resolves to it.
const IMAGE_2_0: &str = "crowsnest-test/busybox:2.0";

fn engine() -> &'static Engine {
    Engine::shared()
}

fn local_config() -> WatcherConfig {
    WatcherConfig {
        socket: Some(engine().socket().to_path_buf()),
        ..Default::default()
    }
}

/// Connects to the test engine (whose test images the kit made sure of).
async fn test_watcher(config: WatcherConfig) -> DockerWatcher {
    engine();
    match DockerWatcher::connect("local", config).await {
        Ok(watcher) => watcher,
        Err(error) => panic!(
            "Docker is not reachable ({error}).\n\
             Start the test engine first: run scripts/dockerd.sh start"
        ),
    }
}

/// This test's containers: `--network none`, named `crowsnest-discovery-…`,
/// labelled `crowsnest-test=1`, removed on drop.
fn containers() -> Containers {
    Containers::new(engine(), "crowsnest-discovery").with_label("crowsnest-test", "1")
}

fn find<'a>(containers: &'a [DiscoveredContainer], id: &str) -> Option<&'a DiscoveredContainer> {
    containers.iter().find(|container| container.id == id)
}

#[tokio::test]
async fn labels_are_resolved_with_crowsnest_winning_over_wud() {
    let watcher = test_watcher(local_config()).await;
    let cleanup = containers();
    let id = cleanup
        .run(
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
        )
        .id;

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
    let expected_image_id = engine().inspect_image(IMAGE_1_0, "{{.Id}}");
    assert_eq!(container.image_id, expected_image_id);
    assert!(
        container.repo_tags.iter().any(|tag| tag == IMAGE_1_0),
        "{:?}",
        container.repo_tags
    );
    assert_eq!(container.os.as_deref(), Some("linux"));
    let expected_arch = engine().inspect_image(IMAGE_1_0, "{{.Architecture}}");
    assert_eq!(
        container.architecture.as_deref(),
        Some(expected_arch.as_str())
    );
    assert!(container
        .image_created
        .as_deref()
        .is_some_and(|created| created.starts_with("20")));

    // A single-container rediscovery sees the same thing. The image's names
    // are left out of the comparison: another test (a pull) tags the same
    // image for a moment, and either discovery may see that tag.
    let single = watcher.discover_one(&id).await.unwrap();
    let without_names = |found: &DiscoveredContainer| DiscoveredContainer {
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        ..found.clone()
    };
    assert_eq!(without_names(&single), without_names(container));
    assert!(single.repo_tags.iter().any(|tag| tag == IMAGE_1_0));
}

#[tokio::test]
async fn watch_label_opts_out_and_in() {
    let cleanup = containers();
    let opted_out = cleanup.run(IMAGE_1_0, &[("crowsnest.watch", "false")]).id;
    let wud_out_crowsnest_in = cleanup
        .run(
            IMAGE_1_0,
            &[("wud.watch", "false"), ("crowsnest.watch", "true")],
        )
        .id;
    let unlabelled = cleanup.run(IMAGE_1_0, &[]).id;
    let wud_in = cleanup.run(IMAGE_1_0, &[("wud.watch", "true")]).id;
    let garbage = cleanup.run(IMAGE_1_0, &[("crowsnest.watch", "perhaps")]).id;

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
    let cleanup = containers();
    let created = cleanup.create(IMAGE_1_0, &[]).id;
    let exited = cleanup.run(IMAGE_1_0, &[]).id;
    cleanup.stop(&exited);
    let running = cleanup.run(IMAGE_1_0, &[]).id;

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
    let cleanup = containers();
    let image_id = engine().inspect_image(IMAGE_2_0, "{{.Id}}");
    let short_id = image_id.trim_start_matches("sha256:")[..12].to_owned();
    let from_full_id = cleanup.run(&image_id, &[]).id;
    let from_short_id = cleanup.run(&short_id, &[]).id;

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
                if let Ok(mut outbound) = tokio::net::UnixStream::connect(engine().socket()).await {
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
    let cleanup = containers();
    let id = cleanup
        .run(IMAGE_1_0, &[("crowsnest.strategy", "calver")])
        .id;
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
    let cleanup = containers();
    let id = cleanup.run(IMAGE_1_0, &[]).id;
    cleanup.remove(&id);
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

#[tokio::test]
async fn repo_digests_are_reported_after_a_pull() {
    let watcher = test_watcher(local_config()).await;
    let registry = PrivateRegistry::start(engine());
    let cleanup = containers();
    let path = format!("crowsnest-test/discovery-{}", std::process::id());
    let repository = format!("{}/{path}", registry.host());

    // Docker treats 127.0.0.0/8 registries as insecure (plain HTTP) out of the box.
    let reference = registry.push(&path, &["1.0"]).remove(0);
    assert_eq!(reference, format!("{repository}:1.0"));
    engine().docker(&["rmi", &reference]);
    engine().docker(&["pull", "--quiet", &reference]);
    let id = cleanup.run(&reference, &[]).id;

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

/// Docker API requests a [`counting_proxy`] forwarded, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct DockerRequests {
    container_listings: usize,
    image_listings: usize,
    image_inspections: usize,
    other: usize,
}

/// Like [`tcp_to_socket_proxy`], counting the requests it forwards (request
/// lines of the client's stream: every Docker API request discovery sends
/// is a bodiless GET).
async fn counting_proxy() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<DockerRequests>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let counts = std::sync::Arc::new(std::sync::Mutex::new(DockerRequests::default()));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let counting = counts.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let counts = counting.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::UnixStream::connect(engine().socket()).await else {
                    return;
                };
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let upstream = async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(read) = in_read.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                        for line in text.split("\r\n").filter(|l| l.ends_with("HTTP/1.1")) {
                            let path = line.split(' ').nth(1).unwrap_or_default();
                            let path = path.split('?').next().unwrap_or_default();
                            let mut counts = counts.lock().unwrap();
                            if path.ends_with("/containers/json") {
                                counts.container_listings += 1;
                            } else if path.ends_with("/images/json") {
                                counts.image_listings += 1;
                            } else if path.contains("/images/") {
                                counts.image_inspections += 1;
                            } else {
                                counts.other += 1;
                            }
                        }
                        if out_write.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                };
                let downstream = async move {
                    let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                };
                tokio::join!(upstream, downstream);
            });
        }
    });
    (address, counts)
}

#[tokio::test]
async fn a_rescan_costs_one_container_listing_and_one_image_listing() {
    test_watcher(local_config()).await;
    let cleanup = containers();
    let first = cleanup.create(IMAGE_1_0, &[]).id;
    let second = cleanup.create(IMAGE_1_0, &[]).id;
    let third = cleanup.create(IMAGE_2_0, &[]).id;
    let (address, counts) = counting_proxy().await;
    let watchers = BTreeMap::from([(
        "counted".to_owned(),
        WatcherConfig {
            host: Some(format!("tcp://{address}")),
            watch_all: true,
            ..Default::default()
        },
    )]);
    // The first discovery may inspect images this process has not seen yet.
    let outcome = discover_all(&watchers).await.remove(0);
    outcome.containers.expect("first discovery");
    *counts.lock().unwrap() = DockerRequests::default();

    let outcome = discover_all(&watchers).await.remove(0);
    let found = outcome.containers.expect("rescan");
    let seen = counts.lock().unwrap().clone();
    assert_eq!(seen.container_listings, 1, "{seen:?}");
    assert_eq!(seen.image_listings, 1, "{seen:?}");
    assert_eq!(
        seen.image_inspections, 0,
        "image facts are cached by id: {seen:?}"
    );
    for id in [&first, &second, &third] {
        let container = find(&found, id).expect("discovered");
        assert!(container.error.is_none(), "{:?}", container.error);
        assert!(container.architecture.is_some() && container.os.is_some());
        assert!(container.image_created.is_some());
        assert!(!container.repo_tags.is_empty(), "names from the listing");
    }
    assert_eq!(
        find(&found, &third).unwrap().repo_tags,
        [IMAGE_2_0.to_string()]
    );
}
