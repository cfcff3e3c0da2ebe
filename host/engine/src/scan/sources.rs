//! Where a scan's containers come from: the configured Docker watchers, the
//! configured Kubernetes watchers, connected agents. Each is a
//! [`ContainerSource`]; a scan lists them all in one loop, groups their
//! containers by repository (so a fleet's registries are asked once), and
//! prunes and marks stale by one rule whatever the source.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;

use crowsnest_docker::{self as discovery, DiscoveredContainer, WatcherConfig};

/// What one watcher of a [`ContainerSource`] holds now.
#[derive(Debug, Clone)]
pub struct SourceListing {
    /// The watcher name its containers are stored under (unique across sources
    /// and configured watchers).
    pub watcher: String,
    /// Its containers, or why they cannot be read now (the stored ones are then
    /// marked stale, never deleted).
    pub containers: Result<Vec<DiscoveredContainer>, String>,
}

/// The container ids a watcher lists at the end of a scan (what the store is
/// pruned by), or why it cannot be read now.
pub type ListedIds = Result<HashSet<String>, String>;

/// A feed of discovered containers the scan engine reads at the start of a
/// scan (what to check) and at its end (what to prune the store by).
pub trait ContainerSource: Send + Sync + 'static {
    /// The watchers this source feeds that `wanted` names (every one when
    /// `wanted` is empty), each with its containers or its failure.
    fn list<'a>(&'a self, wanted: &'a [String]) -> BoxFuture<'a, Vec<SourceListing>>;

    /// The container ids `watcher` lists now, once a scan is done; `None` when
    /// this source does not feed `watcher`. By default a fresh [`list`](Self::list).
    fn listed_now<'a>(&'a self, watcher: &'a str) -> BoxFuture<'a, Option<ListedIds>> {
        Box::pin(async move {
            let wanted = [watcher.to_owned()];
            let listing = self
                .list(&wanted)
                .await
                .into_iter()
                .find(|listing| listing.watcher == watcher)?;
            Some(
                listing
                    .containers
                    .map(|containers| containers.into_iter().map(|c| c.id).collect()),
            )
        })
    }
}

/// Whether `watcher` is selected by `wanted` (every watcher when empty).
pub(crate) fn is_wanted(wanted: &[String], watcher: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|name| name == watcher)
}

/// The configured Docker watchers as a source: each scan lists every engine
/// (concurrently, bounded) and, at its end, asks each engine which
/// containers it still has.
pub(crate) struct DockerSource {
    watchers: BTreeMap<String, WatcherConfig>,
}

impl DockerSource {
    /// A source for `watchers`.
    pub(crate) fn new(watchers: BTreeMap<String, WatcherConfig>) -> Self {
        Self { watchers }
    }
}

impl ContainerSource for DockerSource {
    fn list<'a>(&'a self, wanted: &'a [String]) -> BoxFuture<'a, Vec<SourceListing>> {
        Box::pin(async move {
            let watchers: BTreeMap<String, WatcherConfig> = self
                .watchers
                .iter()
                .filter(|(name, _)| is_wanted(wanted, name))
                .map(|(name, config)| (name.clone(), config.clone()))
                .collect();
            discovery::discover_all(&watchers)
                .await
                .into_iter()
                .map(|found| SourceListing {
                    watcher: found.watcher,
                    containers: found.containers.map_err(|err| err.to_string()),
                })
                .collect()
        })
    }

    fn listed_now<'a>(&'a self, watcher: &'a str) -> BoxFuture<'a, Option<ListedIds>> {
        Box::pin(async move {
            let config = self.watchers.get(watcher)?.clone();
            let ids = match discovery::DockerWatcher::connect(watcher.to_owned(), config).await {
                Ok(docker) => docker.container_ids().await.map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            Some(ids)
        })
    }
}

/// The sources a scanner reads: its configured watchers' from the start,
/// others (agents) added while the daemon starts.
#[derive(Default)]
pub(crate) struct Sources {
    sources: std::sync::RwLock<Vec<Arc<dyn ContainerSource>>>,
}

impl Sources {
    /// Adds `source` to every later scan.
    pub(crate) fn add(&self, source: Arc<dyn ContainerSource>) {
        if let Ok(mut sources) = self.sources.write() {
            sources.push(source);
        }
    }

    fn all(&self) -> Vec<Arc<dyn ContainerSource>> {
        match self.sources.read() {
            Ok(sources) => sources.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// What every source (all at once) lists now for the watchers `wanted` names (all when empty).
    pub(crate) async fn list(&self, wanted: &[String]) -> Vec<SourceListing> {
        let sources = self.all();
        futures::future::join_all(sources.iter().map(|source| source.list(wanted)))
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// What the source feeding `watcher` lists for it now; `None` when no source feeds it.
    pub(crate) async fn listing(&self, watcher: &str) -> Option<SourceListing> {
        self.list(&[watcher.to_owned()])
            .await
            .into_iter()
            .find(|listing| listing.watcher == watcher)
    }

    /// The ids `watcher` lists once a scan is done; `None` when no source feeds it.
    pub(crate) async fn listed_now(&self, watcher: &str) -> Option<ListedIds> {
        for source in self.all() {
            if let Some(ids) = source.listed_now(watcher).await {
                return Some(ids);
            }
        }
        None
    }
}
