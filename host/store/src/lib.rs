//! crowsnest-store: persistent state in SQLite — the containers and their
//! latest result, the history of detected updates, the registry tag-list cache,
//! the memory of which trigger already fired for which result (`once`
//! triggers), and what update actions did to each container.
//!
//! Must not depend on any other crowsnest crate: rows are stored as the JSON
//! of whatever serialisable type the caller hands in.
//!
//! SQLite is blocking, so every call runs on tokio's blocking pool; the public
//! API is async. Writes go through one connection behind a mutex; reads take
//! a read-only connection of their own from a small pool, so with WAL a reader
//! (the API) never waits on the scanner's writes. The schema is versioned with
//! `PRAGMA user_version`. The update history and the trigger deliveries are
//! kept for `[store] retention_days` and at most `retention_rows` rows per
//! container ([`Store::prune_retained`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Database file used when `[store] path` is not set.
pub const DEFAULT_STORE_PATH: &str = "./crowsnest.db";

/// How long a writer waits for a lock held by another connection (another process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read-only connections kept open (more are opened while busy).
const IDLE_READERS: usize = 4;

/// Schema migrations; entry `i` moves the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE containers (
        id               TEXT PRIMARY KEY NOT NULL,
        watcher          TEXT NOT NULL,
        name             TEXT NOT NULL,
        update_available INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL, -- unix milliseconds
        object           TEXT NOT NULL     -- the container object, JSON
    );
    CREATE INDEX containers_by_watcher ON containers (watcher);
    CREATE INDEX containers_by_name ON containers (name);
    CREATE INDEX containers_by_update ON containers (update_available);

    CREATE TABLE update_history (
        container_id TEXT NOT NULL,
        image        TEXT NOT NULL,
        kind         TEXT NOT NULL,
        local_value  TEXT NOT NULL,
        remote_value TEXT NOT NULL,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        PRIMARY KEY (container_id, image, kind, local_value, remote_value)
    );
    CREATE INDEX update_history_by_last_seen ON update_history (last_seen);

    CREATE TABLE tag_cache (
        registry   TEXT NOT NULL,
        repository TEXT NOT NULL,
        tags       TEXT NOT NULL, -- JSON array of strings
        fetched_at INTEGER NOT NULL,
        PRIMARY KEY (registry, repository)
    );

    CREATE TABLE trigger_deliveries (
        trigger_name TEXT NOT NULL,
        container_id TEXT NOT NULL,
        result_key   TEXT NOT NULL,
        notified_at  INTEGER NOT NULL,
        PRIMARY KEY (trigger_name, container_id, result_key)
    );
    ",
    // Version 2: what update actions did, per container name (the id changes
    // with each replacement).
    "
    CREATE TABLE update_attempts (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        watcher          TEXT NOT NULL,
        name             TEXT NOT NULL,
        container_id     TEXT NOT NULL,
        new_container_id TEXT,
        status           TEXT NOT NULL,
        recorded_at      INTEGER NOT NULL, -- unix milliseconds
        outcome          TEXT NOT NULL     -- the update outcome, JSON
    );
    CREATE INDEX update_attempts_by_container ON update_attempts (watcher, name, seq);
    ",
];

/// The `[store]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file; created with its parent directory when missing.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Seconds a repository's tag list is reused before the registry is asked again (0 = never reuse).
    #[serde(default = "default_tag_cache_ttl")]
    pub tag_cache_ttl: u64,
    /// Days update-history and trigger-delivery rows are kept after they were
    /// last seen (0 = forever).
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
    /// Update-history and trigger-delivery rows kept per container, newest
    /// first (0 = no limit).
    #[serde(default = "default_retention_rows")]
    pub retention_rows: u64,
}

fn default_retention_days() -> u64 {
    90
}

fn default_retention_rows() -> u64 {
    10_000
}

fn default_tag_cache_ttl() -> u64 {
    60
}

fn default_store_path() -> PathBuf {
    PathBuf::from(DEFAULT_STORE_PATH)
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            tag_cache_ttl: default_tag_cache_ttl(),
            retention_days: default_retention_days(),
            retention_rows: default_retention_rows(),
        }
    }
}

/// How long the update history and trigger deliveries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rows last seen longer ago are pruned; `None` keeps them forever.
    pub max_age: Option<Duration>,
    /// Rows kept per container, newest first; `None` for no limit.
    pub max_rows_per_container: Option<u64>,
}

impl Retention {
    /// The retention of a `[store]` section.
    pub fn of(config: &StoreConfig) -> Self {
        Self {
            max_age: (config.retention_days > 0)
                .then(|| Duration::from_secs(config.retention_days.saturating_mul(86_400))),
            max_rows_per_container: (config.retention_rows > 0).then_some(config.retention_rows),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::of(&StoreConfig::default())
    }
}

/// Rows [`Store::prune_retained`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Update-history rows.
    pub history: usize,
    /// Trigger-delivery rows.
    pub deliveries: usize,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("opening store {path}: {source}")]
    Open {
        /// Database file.
        path: PathBuf,
        /// SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database's parent directory could not be created.
    #[error("creating store directory {path}: {source}")]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer crowsnest.
    #[error("store schema version {found} is newer than this crowsnest supports ({supported}); upgrade crowsnest or use another [store] path")]
    SchemaTooNew {
        /// Version found in the file.
        found: u32,
        /// Latest version this build knows.
        supported: u32,
    },
    /// A migration step failed (the step is rolled back).
    #[error("migrating store to schema version {version}: {source}")]
    Migrate {
        /// Version being migrated to.
        version: u32,
        /// SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("store query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored or given object is not the expected JSON.
    #[error("store JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A container object lacks a field the store indexes.
    #[error("container object has no {0} field")]
    MissingField(&'static str),
    /// The blocking worker panicked or was cancelled.
    #[error("store worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// An earlier call panicked while holding the connection.
    #[error("store connection is unusable after an earlier panic")]
    Poisoned,
}

/// One detected update (the key of the update history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRecord {
    /// Container id.
    pub container_id: String,
    /// Image (repository) the update is for.
    pub image: String,
    /// `tag`, `digest` or `unknown`.
    pub kind: String,
    /// What runs now (tag or digest).
    pub local_value: String,
    /// What the registry offers.
    pub remote_value: String,
}

/// An update history row: the update and when it was first and last detected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateHistoryEntry {
    /// The update.
    #[serde(flatten)]
    pub update: UpdateRecord,
    /// First detection.
    pub first_seen: SystemTime,
    /// Latest detection.
    pub last_seen: SystemTime,
}

/// A cached tag list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTags {
    /// The tags, as the registry listed them.
    pub tags: Vec<String>,
    /// When they were fetched.
    pub fetched_at: SystemTime,
}

/// Handle on the database; cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    /// Idle read-only connections of a file store (none in memory: reads
    /// then share the writer's connection).
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Option<PathBuf>,
    retention: Retention,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, enables WAL and
    /// brings the schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let opened_path = path.clone();
        let connection = tokio::task::spawn_blocking(move || open_file(&opened_path)).await??;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            readers: Arc::default(),
            path: Some(path),
            retention: Retention::default(),
        })
    }

    /// Opens the database named by the `[store]` configuration, with its retention.
    pub async fn open_config(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self::open(&config.path)
            .await?
            .with_retention(Retention::of(config)))
    }

    /// The same store, pruning with `retention`.
    pub fn with_retention(self, retention: Retention) -> Self {
        Self { retention, ..self }
    }

    /// A private in-memory database (for tests and `--no-store` style runs).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let connection = tokio::task::spawn_blocking(|| {
            let mut connection =
                Connection::open_in_memory().map_err(|source| StoreError::Open {
                    path: PathBuf::from(":memory:"),
                    source,
                })?;
            migrate(&mut connection)?;
            Ok::<_, StoreError>(connection)
        })
        .await??;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            readers: Arc::default(),
            path: None,
            retention: Retention::default(),
        })
    }

    /// The database file, `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|connection| Ok(user_version(connection)?)).await
    }

    /// Inserts or replaces one container object (see [`Store::upsert_containers`]).
    pub async fn upsert_container<T: Serialize>(&self, container: &T) -> Result<(), StoreError> {
        self.upsert_containers(std::slice::from_ref(container))
            .await
    }

    /// Inserts or replaces container objects in one transaction. Each object is
    /// the container JSON of docs/contracts.md: `id`, `watcher` and `name` strings are
    /// required, `updateAvailable` is read when present.
    pub async fn upsert_containers<T: Serialize>(
        &self,
        containers: &[T],
    ) -> Result<(), StoreError> {
        let rows = containers
            .iter()
            .map(ContainerRow::from_object)
            .collect::<Result<Vec<_>, _>>()?;
        let now = unix_millis(SystemTime::now());
        self.run(move |connection| {
            let transaction = connection.transaction()?;
            {
                let mut statement = transaction.prepare_cached(
                    "INSERT INTO containers (id, watcher, name, update_available, updated_at, object)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET
                        watcher = excluded.watcher, name = excluded.name,
                        update_available = excluded.update_available,
                        updated_at = excluded.updated_at, object = excluded.object",
                )?;
                for row in &rows {
                    statement.execute(params![
                        row.id,
                        row.watcher,
                        row.name,
                        row.update_available,
                        now,
                        row.json
                    ])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    /// Deletes the containers of `watcher` whose id is not in `keep_ids` (they
    /// no longer exist on that engine). Returns how many were deleted.
    pub async fn prune_containers<I, S>(
        &self,
        watcher: &str,
        keep_ids: I,
    ) -> Result<usize, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keep: HashSet<String> = keep_ids.into_iter().map(Into::into).collect();
        let watcher = watcher.to_owned();
        self.run(move |connection| {
            let transaction = connection.transaction()?;
            let stale: Vec<String> = {
                let mut statement =
                    transaction.prepare_cached("SELECT id FROM containers WHERE watcher = ?1")?;
                let ids = statement
                    .query_map([&watcher], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                ids.into_iter().filter(|id| !keep.contains(id)).collect()
            };
            {
                let mut delete =
                    transaction.prepare_cached("DELETE FROM containers WHERE id = ?1")?;
                for id in &stale {
                    delete.execute([id])?;
                }
            }
            transaction.commit()?;
            Ok(stale.len())
        })
        .await
    }

    /// Deletes one container; returns whether it existed.
    pub async fn delete_container(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |connection| {
            Ok(connection.execute("DELETE FROM containers WHERE id = ?1", [&id])? > 0)
        })
        .await
    }

    /// Every stored container object, ordered by watcher then name.
    pub async fn list_containers<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.container_objects(
            "SELECT object FROM containers ORDER BY watcher, name, id",
            None,
        )
        .await
    }

    /// The stored container objects of one watcher, ordered by name.
    pub async fn list_watcher_containers<T: DeserializeOwned>(
        &self,
        watcher: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.container_objects(
            "SELECT object FROM containers WHERE watcher = ?1 ORDER BY name, id",
            Some(watcher.to_owned()),
        )
        .await
    }

    /// One container object by id.
    pub async fn get_container<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        // `id` is the primary key, so the query yields at most one object.
        let objects = self
            .container_objects(
                "SELECT object FROM containers WHERE id = ?1",
                Some(id.to_owned()),
            )
            .await?;
        Ok(objects.into_iter().next())
    }

    /// Runs `sql`, a query selecting the `object` column of `containers` with at
    /// most one parameter (`?1`), and decodes each object's JSON.
    async fn container_objects<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        parameter: Option<String>,
    ) -> Result<Vec<T>, StoreError> {
        self.json_objects(sql, parameter.into_iter().map(Into::into).collect())
            .await
    }

    /// Runs `sql`, a query selecting one JSON text column with `parameters`
    /// (`?1`, `?2`, …), and decodes each row's JSON.
    async fn json_objects<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        parameters: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<T>, StoreError> {
        let objects = self
            .read(move |connection| {
                let mut statement = connection.prepare_cached(sql)?;
                let objects = statement
                    .query_map(params_from_iter(parameters), |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(objects)
            })
            .await?;
        objects
            .iter()
            .map(|json| serde_json::from_str(json).map_err(StoreError::from))
            .collect()
    }

    /// Records a detected update. A repeat detection of the same update only
    /// moves `last_seen`. Returns `true` when the update was seen for the first time.
    pub async fn record_update(&self, update: &UpdateRecord) -> Result<bool, StoreError> {
        let update = update.clone();
        let now = unix_millis(SystemTime::now());
        self.run(move |connection| {
            let transaction = connection.transaction()?;
            // The six values bind `?1`..`?6` of both statements.
            let values = params![
                update.container_id,
                update.image,
                update.kind,
                update.local_value,
                update.remote_value,
                now
            ];
            let inserted = transaction.execute(
                "INSERT INTO update_history
                    (container_id, image, kind, local_value, remote_value, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (container_id, image, kind, local_value, remote_value) DO NOTHING",
                values,
            )?;
            if inserted == 0 {
                transaction.execute(
                    "UPDATE update_history SET last_seen = ?6
                     WHERE container_id = ?1 AND image = ?2 AND kind = ?3
                       AND local_value = ?4 AND remote_value = ?5",
                    values,
                )?;
            }
            transaction.commit()?;
            Ok(inserted > 0)
        })
        .await
    }

    /// The update history of one container, most recently seen first.
    pub async fn update_history(
        &self,
        container_id: &str,
    ) -> Result<Vec<UpdateHistoryEntry>, StoreError> {
        let container_id = container_id.to_owned();
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT container_id, image, kind, local_value, remote_value, first_seen, last_seen
                 FROM update_history WHERE container_id = ?1
                 ORDER BY last_seen DESC, first_seen DESC",
            )?;
            let entries = statement
                .query_map([&container_id], |row| {
                    Ok(UpdateHistoryEntry {
                        update: UpdateRecord {
                            container_id: row.get(0)?,
                            image: row.get(1)?,
                            kind: row.get(2)?,
                            local_value: row.get(3)?,
                            remote_value: row.get(4)?,
                        },
                        first_seen: system_time(row.get(5)?),
                        last_seen: system_time(row.get(6)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(entries)
        })
        .await
    }

    /// Records what an update action did to a container: `outcome` is the
    /// JSON of the update outcome of docs/contracts.md (`watcher`, `name`,
    /// `containerId` and `status` strings are required, `newContainerId` read
    /// when present).
    pub async fn record_update_attempt<T: Serialize>(&self, outcome: &T) -> Result<(), StoreError> {
        let value = serde_json::to_value(outcome)?;
        let text = |field| required_text(&value, field);
        let (watcher, name, container_id, status) = (
            text("watcher")?,
            text("name")?,
            text("containerId")?,
            text("status")?,
        );
        let new_container_id = text("newContainerId").ok();
        let json = serde_json::to_string(&value)?;
        let now = unix_millis(SystemTime::now());
        self.run(move |connection| {
            connection.execute(
                "INSERT INTO update_attempts
                    (watcher, name, container_id, new_container_id, status, recorded_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    watcher,
                    name,
                    container_id,
                    new_container_id,
                    status,
                    now,
                    json
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The update attempts recorded for container `name` of `watcher`, most
    /// recent first, at most `limit`.
    pub async fn update_attempts<T: DeserializeOwned>(
        &self,
        watcher: &str,
        name: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.json_objects(
            "SELECT outcome FROM update_attempts WHERE watcher = ?1 AND name = ?2
             ORDER BY seq DESC LIMIT ?3",
            vec![
                watcher.to_owned().into(),
                name.to_owned().into(),
                limit.into(),
            ],
        )
        .await
    }

    /// The cached tag list of `registry`/`repository` if it was fetched less than `ttl` ago.
    pub async fn cached_tags(
        &self,
        registry: &str,
        repository: &str,
        ttl: Duration,
    ) -> Result<Option<CachedTags>, StoreError> {
        let (registry, repository) = (registry.to_owned(), repository.to_owned());
        let row = self
            .read(move |connection| {
                Ok(connection
                    .query_row(
                        "SELECT tags, fetched_at FROM tag_cache WHERE registry = ?1 AND repository = ?2",
                        [&registry, &repository],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
                    )
                    .optional()?)
            })
            .await?;
        let Some((tags_json, fetched_at)) = row else {
            return Ok(None);
        };
        let fetched_at = system_time(fetched_at);
        // A fetch time in the future (clock moved back) counts as age zero.
        let age = SystemTime::now()
            .duration_since(fetched_at)
            .unwrap_or(Duration::ZERO);
        if age >= ttl {
            return Ok(None);
        }
        Ok(Some(CachedTags {
            tags: serde_json::from_str(&tags_json)?,
            fetched_at,
        }))
    }

    /// Stores (replacing) the tag list of `registry`/`repository`, fetched now.
    pub async fn put_tags(
        &self,
        registry: &str,
        repository: &str,
        tags: &[String],
    ) -> Result<(), StoreError> {
        let (registry, repository) = (registry.to_owned(), repository.to_owned());
        let tags_json = serde_json::to_string(tags)?;
        let now = unix_millis(SystemTime::now());
        self.run(move |connection| {
            connection.execute(
                "INSERT INTO tag_cache (registry, repository, tags, fetched_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (registry, repository) DO UPDATE SET
                    tags = excluded.tags, fetched_at = excluded.fetched_at",
                params![registry, repository, tags_json, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Remembers that `trigger` fired for `container_id` with result `result_key`.
    /// Returns `true` when this is the first time (the trigger should fire).
    pub async fn mark_notified(
        &self,
        trigger: &str,
        container_id: &str,
        result_key: &str,
    ) -> Result<bool, StoreError> {
        let key = delivery_key(trigger, container_id, result_key);
        let now = unix_millis(SystemTime::now());
        self.run(move |connection| {
            let inserted = connection.execute(
                "INSERT INTO trigger_deliveries (trigger_name, container_id, result_key, notified_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (trigger_name, container_id, result_key) DO NOTHING",
                params![key.0, key.1, key.2, now],
            )?;
            Ok(inserted > 0)
        })
        .await
    }

    /// Whether `trigger` already fired for `container_id` with result `result_key`.
    pub async fn was_notified(
        &self,
        trigger: &str,
        container_id: &str,
        result_key: &str,
    ) -> Result<bool, StoreError> {
        let key = delivery_key(trigger, container_id, result_key);
        self.read(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT 1 FROM trigger_deliveries
                     WHERE trigger_name = ?1 AND container_id = ?2 AND result_key = ?3",
                    params![key.0, key.1, key.2],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
        .await
    }

    /// Deletes update-history and trigger-delivery rows beyond the retention
    /// (run after each full scan): rows last seen before the retention age,
    /// and per container all but the newest `retention_rows`. A delivery of
    /// a container still stored is never pruned by age (it keeps a `once`
    /// trigger from firing again for a result that is still current).
    pub async fn prune_retained(&self) -> Result<Pruned, StoreError> {
        self.prune_retained_at(SystemTime::now()).await
    }

    /// [`Store::prune_retained`] as if it were `now`.
    async fn prune_retained_at(&self, now: SystemTime) -> Result<Pruned, StoreError> {
        let retention = self.retention;
        let cutoff = retention
            .max_age
            .map(|age| unix_millis(now.checked_sub(age).unwrap_or(UNIX_EPOCH)));
        let keep = retention
            .max_rows_per_container
            .map(|rows| i64::try_from(rows).unwrap_or(i64::MAX));
        self.run(move |connection| {
            let transaction = connection.transaction()?;
            let mut pruned = Pruned::default();
            if let Some(cutoff) = cutoff {
                pruned.history += transaction
                    .execute("DELETE FROM update_history WHERE last_seen < ?1", [cutoff])?;
                pruned.deliveries += transaction.execute(
                    "DELETE FROM trigger_deliveries WHERE notified_at < ?1
                     AND container_id NOT IN (SELECT id FROM containers)",
                    [cutoff],
                )?;
            }
            if let Some(keep) = keep {
                pruned.history += transaction.execute(
                    "DELETE FROM update_history WHERE rowid IN (
                        SELECT rowid FROM (
                            SELECT rowid, ROW_NUMBER() OVER (
                                PARTITION BY container_id
                                ORDER BY last_seen DESC, first_seen DESC) AS rank
                            FROM update_history)
                        WHERE rank > ?1)",
                    [keep],
                )?;
                pruned.deliveries += transaction.execute(
                    "DELETE FROM trigger_deliveries WHERE rowid IN (
                        SELECT rowid FROM (
                            SELECT rowid, ROW_NUMBER() OVER (
                                PARTITION BY container_id
                                ORDER BY notified_at DESC) AS rank
                            FROM trigger_deliveries)
                        WHERE rank > ?1)",
                    [keep],
                )?;
            }
            transaction.commit()?;
            Ok(pruned)
        })
        .await
    }

    /// Runs the read-only `work` on the blocking pool on a read-only
    /// connection of its own (WAL: it never waits on the writer); in memory,
    /// on the one connection.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(path) = self.path.clone() else {
            return self.run(work).await;
        };
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
            let mut connection = match idle {
                Some(connection) => connection,
                None => open_reader(&path)?,
            };
            let result = work(&mut connection);
            let mut idle = readers.lock().map_err(|_| StoreError::Poisoned)?;
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
            result
        })
        .await?
    }

    /// Runs `work` on the blocking pool with exclusive use of the connection.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().map_err(|_| StoreError::Poisoned)?;
            work(&mut guard)
        })
        .await?
    }
}

/// The indexed columns of a container object, plus its JSON text.
struct ContainerRow {
    id: String,
    watcher: String,
    name: String,
    update_available: bool,
    json: String,
}

impl ContainerRow {
    fn from_object<T: Serialize>(container: &T) -> Result<Self, StoreError> {
        let value = serde_json::to_value(container)?;
        let text = |field| required_text(&value, field);
        Ok(Self {
            id: text("id")?,
            watcher: text("watcher")?,
            name: text("name")?,
            update_available: value
                .get("updateAvailable")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            json: serde_json::to_string(&value)?,
        })
    }
}

/// The string `field` of a JSON object the store indexes.
fn required_text(value: &serde_json::Value, field: &'static str) -> Result<String, StoreError> {
    value
        .get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or(StoreError::MissingField(field))
}

fn open_file(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut connection = Connection::open(path).map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %journal_mode, "store could not switch to WAL");
    }
    // WAL makes NORMAL durable across application crashes; only power loss can drop the tail.
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// A read-only connection to the (already migrated, WAL) database at `path`.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(connection)
}

fn user_version(connection: &Connection) -> Result<u32, rusqlite::Error> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the missing migrations, each in its own transaction with its version bump.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as u32;
    let found = user_version(connection)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let step = |transaction: &Transaction<'_>| {
            transaction.execute_batch(sql)?;
            transaction.pragma_update(None, "user_version", version)
        };
        let transaction = connection
            .transaction()
            .map_err(|source| StoreError::Migrate { version, source })?;
        step(&transaction).map_err(|source| StoreError::Migrate { version, source })?;
        transaction
            .commit()
            .map_err(|source| StoreError::Migrate { version, source })?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(())
}

/// (trigger, container, result key), owned for a blocking call.
fn delivery_key(trigger: &str, container_id: &str, result_key: &str) -> (String, String, String) {
    (
        trigger.to_owned(),
        container_id.to_owned(),
        result_key.to_owned(),
    )
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn system_time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_store_is_migrated() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(
            store.schema_version().await.unwrap(),
            MIGRATIONS.len() as u32
        );
        assert!(store.path().is_none());
    }

    #[tokio::test]
    async fn object_without_id_is_rejected() {
        let store = Store::open_in_memory().await.unwrap();
        let error = store
            .upsert_container(&serde_json::json!({"watcher": "local", "name": "x"}))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::MissingField("id")), "{error}");
    }

    #[tokio::test]
    async fn container_queries_order_filter_and_find_by_id() {
        let store = Store::open_in_memory().await.unwrap();
        for (id, watcher, name) in [
            ("c", "remote", "alpha"),
            ("b", "local", "zulu"),
            ("a", "local", "mike"),
        ] {
            store
                .upsert_container(&serde_json::json!({"id": id, "watcher": watcher, "name": name}))
                .await
                .unwrap();
        }
        let ids = |objects: Vec<serde_json::Value>| -> Vec<String> {
            objects
                .iter()
                .map(|object| object["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(store.list_containers().await.unwrap()), ["a", "b", "c"]);
        assert_eq!(
            ids(store.list_watcher_containers("local").await.unwrap()),
            ["a", "b"]
        );
        assert!(store
            .list_watcher_containers::<serde_json::Value>("none")
            .await
            .unwrap()
            .is_empty());
        let found: Option<serde_json::Value> = store.get_container("b").await.unwrap();
        assert_eq!(found.unwrap()["name"], "zulu");
        assert!(store
            .get_container::<serde_json::Value>("x")
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_repeated_update_only_moves_last_seen() {
        let store = Store::open_in_memory().await.unwrap();
        let update = UpdateRecord {
            container_id: "c1".into(),
            image: "nginx".into(),
            kind: "tag".into(),
            local_value: "1.0".into(),
            remote_value: "1.1".into(),
        };
        assert!(store.record_update(&update).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!store.record_update(&update).await.unwrap());
        let history = store.update_history("c1").await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].update, update);
        assert!(history[0].last_seen > history[0].first_seen);
    }

    #[tokio::test]
    async fn update_attempts_are_listed_per_container_most_recent_first() {
        let store = Store::open_in_memory().await.unwrap();
        for (name, id, status) in [
            ("web", "a", "rolled-back"),
            ("db", "b", "updated"),
            ("web", "c", "updated"),
        ] {
            store
                .record_update_attempt(&serde_json::json!({
                    "watcher": "local", "name": name, "containerId": id,
                    "newContainerId": "n", "status": status,
                }))
                .await
                .unwrap();
        }
        let web: Vec<serde_json::Value> = store.update_attempts("local", "web", 10).await.unwrap();
        let ids: Vec<&str> = web
            .iter()
            .map(|o| o["containerId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["c", "a"]);
        let latest: Vec<serde_json::Value> =
            store.update_attempts("local", "web", 1).await.unwrap();
        assert_eq!(latest.len(), 1);
        let missing = store
            .record_update_attempt(&serde_json::json!({"watcher": "local", "name": "x"}))
            .await
            .unwrap_err();
        assert!(
            matches!(missing, StoreError::MissingField("containerId")),
            "{missing}"
        );
    }

    fn update(container_id: &str, remote_value: &str) -> UpdateRecord {
        UpdateRecord {
            container_id: container_id.into(),
            image: "nginx".into(),
            kind: "tag".into(),
            local_value: "1.0".into(),
            remote_value: remote_value.into(),
        }
    }

    #[tokio::test]
    async fn retention_keeps_the_newest_rows_per_container_and_drops_old_ones() {
        let store = Store::open_in_memory()
            .await
            .unwrap()
            .with_retention(Retention {
                max_age: Some(Duration::from_secs(90 * 86_400)),
                max_rows_per_container: Some(2),
            });
        for remote in ["1.1", "1.2", "1.3"] {
            store.record_update(&update("c1", remote)).await.unwrap();
            store.mark_notified("mail", "c1", remote).await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        store.record_update(&update("c2", "2.0")).await.unwrap();
        store.mark_notified("mail", "gone", "2.0").await.unwrap();
        store
            .upsert_container(&serde_json::json!({"id": "c1", "watcher": "local", "name": "web"}))
            .await
            .unwrap();

        // Per container, the newest two rows stay.
        let pruned = store.prune_retained().await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                history: 1,
                deliveries: 1
            }
        );
        let remotes: Vec<String> = store
            .update_history("c1")
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.update.remote_value)
            .collect();
        assert_eq!(remotes, ["1.3", "1.2"]);
        assert!(!store.was_notified("mail", "c1", "1.1").await.unwrap());
        assert!(store.was_notified("mail", "c1", "1.3").await.unwrap());

        // 91 days on: the history is gone; the deliveries of the stored
        // container stay (its `once` triggers must not fire again), the
        // forgotten container's go.
        let later = SystemTime::now() + Duration::from_secs(91 * 86_400);
        let pruned = store.prune_retained_at(later).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                history: 3,
                deliveries: 1
            }
        );
        assert!(store.update_history("c1").await.unwrap().is_empty());
        assert!(store.update_history("c2").await.unwrap().is_empty());
        assert!(store.was_notified("mail", "c1", "1.3").await.unwrap());
        assert!(!store.was_notified("mail", "gone", "2.0").await.unwrap());
    }

    #[tokio::test]
    async fn zero_retention_keeps_everything() {
        let config = StoreConfig {
            retention_days: 0,
            retention_rows: 0,
            ..StoreConfig::default()
        };
        let store = Store::open_in_memory()
            .await
            .unwrap()
            .with_retention(Retention::of(&config));
        for remote in ["1.1", "1.2", "1.3"] {
            store.record_update(&update("c1", remote)).await.unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(10_000 * 86_400);
        assert_eq!(
            store.prune_retained_at(later).await.unwrap(),
            Pruned::default()
        );
        assert_eq!(store.update_history("c1").await.unwrap().len(), 3);
        assert_eq!(Retention::default().max_rows_per_container, Some(10_000));
    }

    #[tokio::test]
    async fn a_reader_never_waits_on_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store.db")).await.unwrap();
        let object = |id: &str| serde_json::json!({"id": id, "watcher": "local", "name": id});
        store.upsert_container(&object("a")).await.unwrap();

        // A write transaction holds the writer's connection until released.
        let (written, wait_written) = tokio::sync::oneshot::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let b = object("b").to_string();
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .run(move |connection| {
                        let transaction = connection.transaction()?;
                        transaction.execute(
                            "INSERT INTO containers (id, watcher, name, update_available, updated_at, object)
                             VALUES ('b', 'local', 'b', 0, 0, ?1)",
                            [b],
                        )?;
                        let _ = written.send(());
                        let _ = wait_release.recv();
                        transaction.commit()?;
                        Ok(())
                    })
                    .await
            }
        });
        wait_written.await.unwrap();
        let ids = |objects: Vec<serde_json::Value>| -> Vec<String> {
            objects
                .iter()
                .map(|object| object["id"].as_str().unwrap().to_owned())
                .collect()
        };
        // Answered while the writer still holds its transaction: the
        // committed state, without the uncommitted row.
        assert_eq!(ids(store.list_containers().await.unwrap()), ["a"]);
        assert!(!writer.is_finished());
        release.send(()).unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(ids(store.list_containers().await.unwrap()), ["a", "b"]);
    }

    #[test]
    fn time_round_trips_at_millisecond_precision() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(system_time(unix_millis(time)), time);
    }
}
