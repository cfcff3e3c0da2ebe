//! The Kubernetes watcher end to end, against the kit's emulation of the API
//! server's list/watch protocol (no real API server can run on the test
//! machines; see `crowsnest_testkit::services::kubernetes`) and the real
//! loopback registries: Pods' images are pushed there, scanned, and their
//! updates found; the watch follows additions, deletions, bookmarks and a
//! `410 Gone`; selectors and namespaces filter; a refused token fails only
//! its watcher; a Pod's image pull secret opens an htpasswd registry.
//!
//! Needs `scripts/dockerd.sh start` (images are pushed with Docker) and
//! `scripts/registries.sh start`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crowsnest::model::ScanRequest;
use crowsnest_kubernetes::{KubernetesWatcher, KubernetesWatcherConfig, PodChange};
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1, E2E_2_0};
use crowsnest_testkit::scans::{assert_tag_update, container};
use crowsnest_testkit::services::kubernetes::{
    owned_object, pod, pull_secret, KubeApiServer, KubeRequest,
};
use crowsnest_testkit::world::TestWorld;
use futures::{Stream, StreamExt};

const TOKEN: &str = "emulator-token-1";

/// The emulator and a kubeconfig file pointing at it.
async fn cluster(world: &TestWorld) -> (KubeApiServer, PathBuf) {
    let server = KubeApiServer::start(TOKEN).await;
    let kubeconfig = world.dir().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig(TOKEN)).expect("write the kubeconfig");
    (server, kubeconfig)
}

/// `[watchers.NAME]` of kind kubernetes with `extra` keys.
fn watcher(name: &str, kubeconfig: &std::path::Path, extra: &str) -> String {
    format!(
        "[watchers.{name}]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\n{extra}\n",
        kubeconfig.display()
    )
}

/// The tags of `app` the tests push (the Pods run one of them).
const APP_TAGS: [(&str, &str); 3] = [("1.0", E2E_1_0), ("1.1", E2E_1_1), ("2.0", E2E_2_0)];

/// A test's cluster and the image its Pods run.
struct AppCluster {
    server: KubeApiServer,
    kubeconfig: PathBuf,
    /// `repository:tag` as a Pod's spec names it.
    image: String,
    /// `repository@digest` of the first tag pushed, as the node reports it pulled.
    image_id: String,
}

impl AppCluster {
    /// The emulator, a kubeconfig for it, and `repository` pushed with `tags`
    /// (Pods run `repository:run_tag`).
    async fn start(
        world: &TestWorld,
        repository: &str,
        tags: &[(&str, &str)],
        run_tag: &str,
    ) -> Self {
        let digests = world.push_tags(repository, tags);
        let (server, kubeconfig) = cluster(world).await;
        Self {
            server,
            kubeconfig,
            image: format!("{repository}:{run_tag}"),
            image_id: format!("{repository}@{}", digests[0]),
        }
    }

    /// The image `app` on the plain registry with [`APP_TAGS`]; Pods run `run_tag`.
    async fn with_app(world: &TestWorld, run_tag: &str) -> Self {
        Self::start(world, &world.plain_image("app"), &APP_TAGS, run_tag).await
    }

    /// A scanner over the configuration `watchers`, and its first full scan,
    /// which must fail no watcher.
    async fn scan_cleanly(
        world: &TestWorld,
        config: &std::path::Path,
    ) -> (crowsnest::scan::Scanner, crowsnest::model::ScanReport) {
        let scanner = world.scanner(config).await;
        let report = scanner.scan(&ScanRequest::default()).await;
        assert!(
            report.watcher_errors.is_empty(),
            "{:?}",
            report.watcher_errors
        );
        (scanner, report)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_checked_against_a_real_registry_with_their_owners() {
    let world = TestWorld::new("k8s-scan");
    let AppCluster {
        server,
        kubeconfig,
        image,
        image_id,
    } = AppCluster::with_app(&world, "1.0").await;
    let digest = image_id
        .split_once('@')
        .map(|(_, digest)| digest.to_owned())
        .expect("a digest");
    let image_id = format!("docker-pullable://{image_id}");
    server.put_object(
        "replicasets",
        owned_object("shop", "web-5d9c", Some(("Deployment", "web"))),
    );
    server.put_object("deployments", owned_object("shop", "web", None));
    let web = server.apply_pod(pod(
        "shop",
        "web-5d9c-x1",
        &[("app", "web")],
        &[("app", &image, &image_id)],
        Some(("ReplicaSet", "web-5d9c")),
    ));
    let db = server.apply_pod(pod(
        "shop",
        "db-0",
        &[("app", "db")],
        &[("db", &image, &image_id)],
        Some(("StatefulSet", "db")),
    ));
    let bare = server.apply_pod(pod(
        "tools",
        "debug",
        &[],
        &[("shell", &image, &image_id)],
        None,
    ));

    let config = world.config(&watcher("cluster", &kubeconfig, ""));
    let (scanner, report) = AppCluster::scan_cleanly(&world, &config).await;
    assert_eq!(report.containers.len(), 3, "{:#?}", report.containers);
    for (uid, container_name, name, owner) in [
        (&web, "app", "shop/web-5d9c-x1/app", Some("Deployment/web")),
        (&db, "db", "shop/db-0/db", Some("StatefulSet/db")),
        (&bare, "shell", "tools/debug/shell", None),
    ] {
        let found = container(&report, &format!("{uid}.{container_name}"));
        assert_eq!(found.name, name);
        assert_eq!(found.watcher, "cluster");
        assert_eq!(found.kind.as_deref(), Some("pod"));
        assert_eq!(found.owner.as_deref(), owner, "{name}");
        assert_eq!(found.status, "running");
        assert_eq!(found.image.reference, image);
        assert_eq!(
            found.image.digest.value.as_deref(),
            Some(digest.as_str()),
            "the digest the node pulled, from status.containerStatuses[].imageID"
        );
        assert_tag_update(found, "1.0", "2.0", "major");
    }
    // The Deployment is found through the ReplicaSet, each read once.
    let reads = |path: &str| server.requests().iter().filter(|r| r.path == path).count();
    assert_eq!(
        reads("/apis/apps/v1/namespaces/shop/replicasets/web-5d9c"),
        1
    );
    assert_eq!(reads("/apis/apps/v1/namespaces/shop/deployments/web"), 1);

    // A Pod deleted between scans leaves the store with the next full scan.
    server.delete_pod("tools", "debug");
    let report = scanner.scan(&ScanRequest::default()).await;
    assert_eq!(report.containers.len(), 2);
    let stored: Vec<crowsnest::model::ContainerObject> = scanner
        .store()
        .list_watcher_containers("cluster")
        .await
        .expect("stored containers");
    assert_eq!(stored.len(), 2, "the deleted Pod's container is pruned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_namespaces_and_paging_filter_the_pods() {
    let world = TestWorld::new("k8s-filter");
    let AppCluster {
        server,
        kubeconfig,
        image,
        image_id,
    } = AppCluster::with_app(&world, "1.1").await;
    let containers = [("main", image.as_str(), image_id.as_str())];
    server.apply_pod(pod("shop", "web", &[("tier", "front")], &containers, None));
    server.apply_pod(pod(
        "shop",
        "cache",
        &[("tier", "cache")],
        &containers,
        None,
    ));
    server.apply_pod(pod("ops", "cache", &[("tier", "cache")], &containers, None));
    server.apply_pod(pod("ops", "agent", &[("tier", "node")], &containers, None));
    // More Pods than one page (500) in namespace `bulk`.
    for index in 0..520 {
        server.apply_pod(pod(
            "bulk",
            &format!("p{index:03}"),
            &[("tier", "bulk")],
            &containers,
            None,
        ));
    }
    let config = world.config(&format!(
        "{}{}{}",
        watcher("shop", &kubeconfig, "namespaces = [\"shop\"]"),
        watcher(
            "caches",
            &kubeconfig,
            "label_selector = \"tier in (cache, node),tier!=node\""
        ),
        watcher(
            "bulk",
            &kubeconfig,
            "namespaces = [\"bulk\"]\nwatch_by_default = true"
        ),
    ));
    let (_scanner, report) = AppCluster::scan_cleanly(&world, &config).await;
    let names = |watcher: &str| -> BTreeSet<String> {
        report
            .containers
            .iter()
            .filter(|c| c.watcher == watcher)
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(
        names("shop"),
        BTreeSet::from(["shop/web/main".into(), "shop/cache/main".into()])
    );
    assert_eq!(
        names("caches"),
        BTreeSet::from(["shop/cache/main".into(), "ops/cache/main".into()])
    );
    assert_eq!(names("bulk").len(), 520, "every page is read");
    let bulk_lists: Vec<KubeRequest> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces/bulk/pods")
        .collect();
    assert_eq!(bulk_lists.len(), 2, "two pages of at most 500");
    assert!(bulk_lists[1].query.contains_key("continue"));
    assert!(server.requests().iter().any(|r| r.path == "/api/v1/pods"
        && r.query.get("labelSelector").map(String::as_str)
            == Some("tier in (cache, node),tier!=node")));
    let one = report
        .containers
        .iter()
        .find(|c| c.watcher == "caches")
        .expect("a cache container");
    assert_tag_update(one, "1.1", "2.0", "major");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_fails_only_its_watcher() {
    let world = TestWorld::new("k8s-token");
    let AppCluster {
        server,
        kubeconfig,
        image,
        image_id,
    } = AppCluster::with_app(&world, "1.0").await;
    server.apply_pod(pod(
        "default",
        "web",
        &[],
        &[("web", &image, &image_id)],
        None,
    ));
    let config = world.config(&format!(
        "{}{}",
        watcher("good", &kubeconfig, ""),
        watcher("refused", &kubeconfig, "context = \"wrong-token\""),
    ));
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&ScanRequest::default()).await;
    assert_eq!(
        report.watcher_errors.len(),
        1,
        "{:?}",
        report.watcher_errors
    );
    let error = &report.watcher_errors[0];
    assert_eq!(error.watcher, "refused");
    assert!(
        error.message.contains("watcher `refused`")
            && error.message.contains("401")
            && error.message.contains("listing pods"),
        "{}",
        error.message
    );
    assert_eq!(report.containers.len(), 1);
    assert_eq!(report.containers[0].watcher, "good");
    assert_tag_update(&report.containers[0], "1.0", "2.0", "major");
    assert!(server.requests().iter().any(|r| !r.authorized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_secret_opens_an_htpasswd_registry() {
    let world = TestWorld::new("k8s-secret");
    let registries = world.registries.clone();
    let (user, password) = registries.basic_user.clone();
    world.login(&registries.basic, &user, &password);
    let app = format!("{}/{}", registries.basic, world.repository("app"));
    let AppCluster {
        server,
        kubeconfig,
        image,
        image_id,
    } = AppCluster::start(&world, &app, &APP_TAGS[..2], "1.0").await;
    // One Pod names the secret itself, one gets it from its service account,
    // one has none.
    server.put_object(
        "secrets",
        pull_secret("apps", "regcred", &registries.basic, &user, &password),
    );
    server.put_object(
        "serviceaccounts",
        serde_json::json!({"metadata": {"name": "builder", "namespace": "apps"},
            "imagePullSecrets": [{"name": "regcred"}]}),
    );
    let mut own = pod("apps", "own", &[], &[("app", &image, &image_id)], None);
    own["spec"]["imagePullSecrets"] = serde_json::json!([{"name": "regcred"}]);
    let own = server.apply_pod(own);
    let mut by_account = pod(
        "apps",
        "by-account",
        &[],
        &[("app", &image, &image_id)],
        None,
    );
    by_account["spec"]["serviceAccountName"] = serde_json::json!("builder");
    let by_account = server.apply_pod(by_account);
    let none = server.apply_pod(pod(
        "apps",
        "none",
        &[],
        &[("app", &image, &image_id)],
        None,
    ));

    let config = world.config(&watcher("cluster", &kubeconfig, ""));
    let (_scanner, report) = AppCluster::scan_cleanly(&world, &config).await;
    for uid in [&own, &by_account] {
        assert_tag_update(
            container(&report, &format!("{uid}.app")),
            "1.0",
            "1.1",
            "minor",
        );
    }
    let anonymous = container(&report, &format!("{none}.app"));
    let message = anonymous
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        !anonymous.update_available && message.contains("401"),
        "without a pull secret the registry refuses: {anonymous:#?}"
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/namespaces/apps/secrets/regcred")
            .count(),
        1,
        "a secret is read once per discovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_cache_never_lends_a_pull_secrets_listing_to_an_anonymous_pod() {
    let world = TestWorld::new("k8s-tag-cache");
    let registries = world.registries.clone();
    let (user, password) = registries.basic_user.clone();
    world.login(&registries.basic, &user, &password);
    let app = format!("{}/{}", registries.basic, world.repository("app"));
    let AppCluster {
        server,
        kubeconfig,
        image,
        image_id,
    } = AppCluster::start(&world, &app, &APP_TAGS[..2], "1.0").await;
    server.put_object(
        "secrets",
        pull_secret("apps", "regcred", &registries.basic, &user, &password),
    );
    let mut with_secret = pod("apps", "own", &[], &[("app", &image, &image_id)], None);
    with_secret["spec"]["imagePullSecrets"] = serde_json::json!([{"name": "regcred"}]);
    let with_secret = server.apply_pod(with_secret);
    // The tag cache on (the kit's configurations turn it off).
    let config = crowsnest_testkit::config::write(
        world.dir(),
        "config.toml",
        &format!(
            "[store]\npath = \"{}\"\ntag_cache_ttl = 600\n\n{}{}",
            world.dir().join("store.db").display(),
            crowsnest_testkit::config::hub(&registries),
            watcher("cluster", &kubeconfig, ""),
        ),
    );
    let (scanner, report) = AppCluster::scan_cleanly(&world, &config).await;
    assert_tag_update(
        container(&report, &format!("{with_secret}.app")),
        "1.0",
        "1.1",
        "minor",
    );
    assert_eq!(report.stats.tag_cache_hits, 0);

    // An anonymous Pod of the same repository arrives: its listing is not
    // the one the secret fetched (the registry refuses it), while the
    // secret's Pod is served from the cache.
    let anonymous = server.apply_pod(pod(
        "apps",
        "none",
        &[],
        &[("app", &image, &image_id)],
        None,
    ));
    let report = scanner.scan(&ScanRequest::default()).await;
    assert_eq!(report.stats.tag_cache_hits, 1, "{:?}", report.stats);
    assert_tag_update(
        container(&report, &format!("{with_secret}.app")),
        "1.0",
        "1.1",
        "minor",
    );
    let refused = container(&report, &format!("{anonymous}.app"));
    let message = refused
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        !refused.update_available && message.contains("401"),
        "an anonymous Pod never reuses a listing fetched with credentials: {refused:#?}"
    );
}

/// The next change of `changes`, skipping nothing; fails after 20 s.
async fn next<
    S: Stream<Item = Result<PodChange, crowsnest_kubernetes::KubernetesError>> + Unpin,
>(
    changes: &mut S,
) -> Result<PodChange, crowsnest_kubernetes::KubernetesError> {
    tokio::time::timeout(Duration::from_secs(20), changes.next())
        .await
        .expect("a change within 20 s")
        .expect("the watch goes on")
}

fn ids(containers: &[crowsnest_kubernetes::DiscoveredContainer]) -> Vec<String> {
    let mut ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

async fn connected(
    server: &KubeApiServer,
    world: &TestWorld,
    namespaces: &[&str],
) -> KubernetesWatcher {
    let kubeconfig = world.dir().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig(TOKEN)).expect("write the kubeconfig");
    let config = KubernetesWatcherConfig {
        kubeconfig: Some(kubeconfig),
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        watch_by_default: true,
        ..Default::default()
    };
    KubernetesWatcher::connect("live", config)
        .await
        .expect("a client for the emulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_follows_pods_bookmarks_and_a_410_gone() {
    let world = TestWorld::new("k8s-watch");
    let server = KubeApiServer::start(TOKEN).await;
    let containers = [("main", "127.0.0.1:1/app:1.0", "127.0.0.1:1/app@sha256:00")];
    let first = server.apply_pod(pod("shop", "first", &[], &containers, None));
    let watcher = connected(&server, &world, &["shop"]).await;
    // Driven by a task of its own, as serve drives it: the watch is polled
    // (and reconnects) whether or not the test is reading.
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut watch = Box::pin(watcher.watch());
    let driver = tokio::spawn(async move {
        while let Some(change) = watch.next().await {
            if sender.send(change).is_err() {
                break;
            }
        }
    });
    let mut changes = tokio_stream_of(receiver);

    // The initial list.
    match next(&mut changes).await.expect("listed") {
        PodChange::Relisted { scope, containers } => {
            assert_eq!(scope, "namespace shop");
            assert_eq!(ids(&containers), [format!("{first}.main")]);
        }
        other => panic!("expected the initial list, got {other:?}"),
    }
    wait_for(|| server.open_watches() == 1)
        .await
        .unwrap_or_else(|()| panic!("no watch opened: {:#?}", server.requests()));

    // A Pod added, then deleted, through the watch.
    let second = server.apply_pod(pod("shop", "second", &[], &containers, None));
    match next(&mut changes).await.expect("added") {
        PodChange::Applied(found) => assert_eq!(ids(&found), [format!("{second}.main")]),
        other => panic!("expected the added Pod, got {other:?}"),
    }
    server.delete_pod("shop", "second");
    match next(&mut changes).await.expect("deleted") {
        PodChange::Deleted(gone) => assert_eq!(gone, [format!("{second}.main")]),
        other => panic!("expected the deletion, got {other:?}"),
    }

    // Changes elsewhere move the cluster's version on without an event for
    // this watch; a bookmark tells it, and the next watch starts there.
    server.apply_pod(pod("elsewhere", "noise", &[], &containers, None));
    let bookmarked = server.resource_version();
    server.bookmark();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.end_watches();
    wait_for(|| {
        server.requests().iter().any(|r| {
            r.is_watch()
                && r.path == "/api/v1/namespaces/shop/pods"
                && r.query.get("resourceVersion") == Some(&bookmarked.to_string())
        })
    })
    .await
    .unwrap_or_else(|()| {
        panic!(
            "no watch from the bookmark's version {bookmarked}: {:#?}",
            server.requests()
        )
    });

    // A 410 Gone mid-watch: an error naming the watcher, then a relist that
    // has what changed meanwhile, nothing lost, nothing twice.
    wait_for(|| server.open_watches() == 1)
        .await
        .expect("watching again");
    let lists_before = list_requests(&server);
    server.expire_watches();
    let third = server.apply_pod(pod("shop", "third", &[], &containers, None));
    let error = next(&mut changes).await.expect_err("the 410 is reported");
    let message = error.to_string();
    assert!(
        message.contains("watcher `live`") && message.contains("410"),
        "{message}"
    );
    match next(&mut changes).await.expect("relisted") {
        PodChange::Relisted { containers, .. } => {
            assert_eq!(
                ids(&containers),
                [format!("{first}.main"), format!("{third}.main")]
            );
        }
        other => panic!("expected a relist after 410, got {other:?}"),
    }
    assert_eq!(list_requests(&server), lists_before + 1, "one relist");
    driver.abort();
}

/// The changes a driver task forwards, as a stream.
fn tokio_stream_of<T: Send + 'static>(
    receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Unpin {
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    ))
}

fn list_requests(server: &KubeApiServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| !r.is_watch() && r.path.ends_with("/pods"))
        .count()
}

/// Waits up to 10 s for `condition`; `Err` when it never held.
async fn wait_for(mut condition: impl FnMut() -> bool) -> Result<(), ()> {
    for _ in 0..200 {
        if condition() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(())
}
