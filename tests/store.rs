//! The SQLite store on a real file in a temporary directory.

use std::time::Duration;

use crowsnest::store::{Store, StoreError, UpdateRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A container object shaped like the contract (docs/contracts.md): the fields the store indexes plus some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    id: String,
    name: String,
    watcher: String,
    update_available: bool,
    result: Option<serde_json::Value>,
}

fn container(id: &str, watcher: &str, name: &str, update_available: bool) -> Container {
    Container {
        id: id.to_owned(),
        name: name.to_owned(),
        watcher: watcher.to_owned(),
        update_available,
        result: update_available.then(|| json!({"tag": "1.26.0"})),
    }
}

fn update(container_id: &str, remote: &str) -> UpdateRecord {
    UpdateRecord {
        container_id: container_id.to_owned(),
        image: "docker.io/library/nginx".to_owned(),
        kind: "tag".to_owned(),
        local_value: "1.25.3".to_owned(),
        remote_value: remote.to_owned(),
    }
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state/crowsnest.db");
    let tags = vec!["1.25.3".to_owned(), "1.26.0".to_owned()];
    {
        let store = Store::open(&path).await.unwrap();
        store
            .upsert_containers(&[
                container("c1", "local", "web", true),
                container("c2", "local", "db", false),
                container("c3", "remote", "cache", false),
            ])
            .await
            .unwrap();
        assert!(store.record_update(&update("c1", "1.26.0")).await.unwrap());
        store
            .put_tags("registry-1.docker.io", "library/nginx", &tags)
            .await
            .unwrap();
        assert!(store
            .mark_notified("ntfy", "c1", "tag:1.26.0")
            .await
            .unwrap());
    }

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(store.schema_version().await.unwrap(), 2);
    let all: Vec<Container> = store.list_containers().await.unwrap();
    assert_eq!(
        all,
        vec![
            container("c2", "local", "db", false),
            container("c1", "local", "web", true),
            container("c3", "remote", "cache", false),
        ]
    );
    let web: Option<Container> = store.get_container("c1").await.unwrap();
    assert_eq!(web, Some(container("c1", "local", "web", true)));
    let history = store.update_history("c1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].update, update("c1", "1.26.0"));
    let cached = store
        .cached_tags(
            "registry-1.docker.io",
            "library/nginx",
            Duration::from_secs(3600),
        )
        .await
        .unwrap()
        .expect("tags cached before the restart");
    assert_eq!(cached.tags, tags);
    assert!(store
        .was_notified("ntfy", "c1", "tag:1.26.0")
        .await
        .unwrap());
    drop(store);

    // The file is in WAL mode (a persistent property of the database file).
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
}

#[tokio::test]
async fn upsert_replaces_and_rejects_objects_without_keys_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).await.unwrap();
    store
        .upsert_container(&container("c1", "local", "web", false))
        .await
        .unwrap();
    store
        .upsert_container(&container("c1", "local", "web-renamed", true))
        .await
        .unwrap();
    let all: Vec<Container> = store.list_containers().await.unwrap();
    assert_eq!(all, vec![container("c1", "local", "web-renamed", true)]);

    // One bad object fails the whole batch: nothing of it is written.
    let batch = vec![
        json!({"id": "c2", "watcher": "local", "name": "ok"}),
        json!({"watcher": "local", "name": "no-id"}),
    ];
    let error = store.upsert_containers(&batch).await.unwrap_err();
    assert!(matches!(error, StoreError::MissingField("id")), "{error}");
    assert_eq!(
        store
            .get_container::<serde_json::Value>("c2")
            .await
            .unwrap(),
        None
    );

    // Objects are stored verbatim, extra fields included.
    let rich = json!({"id": "c3", "watcher": "local", "name": "rich", "labels": {"a": "b"}});
    store.upsert_container(&rich).await.unwrap();
    assert_eq!(
        store
            .get_container::<serde_json::Value>("c3")
            .await
            .unwrap(),
        Some(rich)
    );
    assert!(store.delete_container("c3").await.unwrap());
    assert!(!store.delete_container("c3").await.unwrap());
}

#[tokio::test]
async fn prune_only_touches_the_given_watcher() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .upsert_containers(&[
            container("a1", "alpha", "one", false),
            container("a2", "alpha", "two", false),
            container("a3", "alpha", "three", false),
            container("b1", "beta", "one", false),
        ])
        .await
        .unwrap();
    let pruned = store.prune_containers("alpha", ["a2"]).await.unwrap();
    assert_eq!(pruned, 2);
    let ids: Vec<String> = store
        .list_containers::<Container>()
        .await
        .unwrap()
        .into_iter()
        .map(|container| container.id)
        .collect();
    assert_eq!(ids, vec!["a2", "b1"]);
    let beta: Vec<Container> = store.list_watcher_containers("beta").await.unwrap();
    assert_eq!(beta, vec![container("b1", "beta", "one", false)]);
    // An empty keep-set empties the watcher.
    assert_eq!(
        store
            .prune_containers("beta", Vec::<String>::new())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn repeated_detections_update_last_seen_only() {
    let store = Store::open_in_memory().await.unwrap();
    assert!(store.record_update(&update("c1", "1.26.0")).await.unwrap());
    let first = store.update_history("c1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!store.record_update(&update("c1", "1.26.0")).await.unwrap());
    let again = store.update_history("c1").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].first_seen, first[0].first_seen);
    assert!(again[0].last_seen > first[0].last_seen);

    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.record_update(&update("c1", "1.27.0")).await.unwrap());
    let history = store.update_history("c1").await.unwrap();
    let remotes: Vec<&str> = history
        .iter()
        .map(|entry| entry.update.remote_value.as_str())
        .collect();
    assert_eq!(
        remotes,
        vec!["1.27.0", "1.26.0"],
        "most recently seen first"
    );
    assert!(store.update_history("other").await.unwrap().is_empty());
}

#[tokio::test]
async fn tag_cache_honours_the_ttl() {
    let store = Store::open_in_memory().await.unwrap();
    let ttl = Duration::from_millis(150);
    assert_eq!(
        store.cached_tags("ghcr.io", "org/app", ttl).await.unwrap(),
        None
    );
    store
        .put_tags("ghcr.io", "org/app", &["1".to_owned()])
        .await
        .unwrap();
    let fresh = store.cached_tags("ghcr.io", "org/app", ttl).await.unwrap();
    assert_eq!(fresh.map(|cached| cached.tags), Some(vec!["1".to_owned()]));
    // Same repository on another registry is a different entry.
    assert_eq!(
        store.cached_tags("quay.io", "org/app", ttl).await.unwrap(),
        None
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.cached_tags("ghcr.io", "org/app", ttl).await.unwrap(),
        None
    );
    // A refresh replaces the list and restarts the clock.
    store
        .put_tags("ghcr.io", "org/app", &["1".to_owned(), "2".to_owned()])
        .await
        .unwrap();
    let refreshed = store.cached_tags("ghcr.io", "org/app", ttl).await.unwrap();
    assert_eq!(refreshed.map(|cached| cached.tags.len()), Some(2));
}

#[tokio::test]
async fn once_triggers_remember_deliveries() {
    let store = Store::open_in_memory().await.unwrap();
    assert!(!store.was_notified("slack", "c1", "tag:2.0").await.unwrap());
    assert!(store.mark_notified("slack", "c1", "tag:2.0").await.unwrap());
    assert!(!store.mark_notified("slack", "c1", "tag:2.0").await.unwrap());
    assert!(store.was_notified("slack", "c1", "tag:2.0").await.unwrap());
    assert!(!store.was_notified("slack", "c1", "tag:2.1").await.unwrap());
    assert!(!store.was_notified("ntfy", "c1", "tag:2.0").await.unwrap());
    assert!(!store.was_notified("slack", "c2", "tag:2.0").await.unwrap());
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Store::open(&path).await.unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = Store::open(&path).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 2
            }
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).await.unwrap();
    let writers: Vec<_> = (0..16)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("c{index:02}");
                store
                    .upsert_container(&container(&id, "local", &id, index % 2 == 0))
                    .await
                    .unwrap();
                store.record_update(&update(&id, "9.9")).await.unwrap();
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let all: Vec<Container> = store.list_containers().await.unwrap();
    assert_eq!(all.len(), 16);
    assert_eq!(
        all.iter()
            .filter(|container| container.update_available)
            .count(),
        8
    );
}
