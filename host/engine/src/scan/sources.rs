//! Container sources besides the configured Docker watchers: connected
//! agents, cluster watchers. A scan takes containers from the Docker watchers
//! and from every source added to the scanner, then groups them all by
//! repository, so a fleet's registries are asked once.

use std::sync::Arc;

use futures::future::BoxFuture;

use crowsnest_docker::DiscoveredContainer;

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

/// A feed of discovered containers the scan engine reads at the start of a
/// scan (what to check) and at its end (what to prune the store by). It should
/// answer from memory: it is asked at every scan and single-container refresh.
pub trait ContainerSource: Send + Sync + 'static {
    /// Every watcher this source feeds, with its containers or its failure.
    fn list(&self) -> BoxFuture<'_, Vec<SourceListing>>;
}

/// The sources a scanner reads, added while the daemon starts.
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

    /// What every source lists now.
    pub(crate) async fn list(&self) -> Vec<SourceListing> {
        let sources: Vec<Arc<dyn ContainerSource>> = match self.sources.read() {
            Ok(sources) => sources.clone(),
            Err(_) => return Vec::new(),
        };
        let mut listings = Vec::new();
        for source in sources {
            listings.extend(source.list().await);
        }
        listings
    }

    /// What the source feeding `watcher` lists for it now; `None` when no source feeds it.
    pub(crate) async fn listing(&self, watcher: &str) -> Option<SourceListing> {
        self.list()
            .await
            .into_iter()
            .find(|listing| listing.watcher == watcher)
    }
}
