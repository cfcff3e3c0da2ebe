//! The configured Kubernetes watchers as a [`ContainerSource`]: each scan
//! lists their Pods from the API server (owners and pull secrets resolved
//! once per discovery), and the ids a watcher listed are what the store is
//! pruned by at the scan's end — a second listing would read every page and
//! secret again for a cluster whose changes the Pod watch reports anyway.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;

use crowsnest_kubernetes::KubernetesWatcherConfig;

use super::sources::{is_wanted, ContainerSource, ListedIds, SourceListing};

/// The configured Kubernetes watchers and what each listed last.
pub(crate) struct KubernetesSource {
    watchers: BTreeMap<String, KubernetesWatcherConfig>,
    last_listed: Mutex<HashMap<String, ListedIds>>,
}

impl KubernetesSource {
    /// A source for `watchers`.
    pub(crate) fn new(watchers: BTreeMap<String, KubernetesWatcherConfig>) -> Self {
        Self {
            watchers,
            last_listed: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, watcher: &str, ids: ListedIds) {
        self.last_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(watcher.to_owned(), ids);
    }
}

impl ContainerSource for KubernetesSource {
    fn list<'a>(&'a self, wanted: &'a [String]) -> BoxFuture<'a, Vec<SourceListing>> {
        Box::pin(async move {
            let watchers: BTreeMap<String, KubernetesWatcherConfig> = self
                .watchers
                .iter()
                .filter(|(name, _)| is_wanted(wanted, name))
                .map(|(name, config)| (name.clone(), config.clone()))
                .collect();
            let mut listings = Vec::new();
            for found in crowsnest_kubernetes::discover_all(&watchers).await {
                let containers = found.containers.map_err(|err| err.to_string());
                self.remember(
                    &found.watcher,
                    containers
                        .as_ref()
                        .map(|containers| containers.iter().map(|c| c.id.clone()).collect())
                        .map_err(Clone::clone),
                );
                listings.push(SourceListing {
                    watcher: found.watcher,
                    containers,
                });
            }
            listings
        })
    }

    fn listed_now<'a>(&'a self, watcher: &'a str) -> BoxFuture<'a, Option<ListedIds>> {
        Box::pin(async move {
            if !self.watchers.contains_key(watcher) {
                return None;
            }
            let remembered = self
                .last_listed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(watcher)
                .cloned();
            // A scan lists a watcher before it asks this.
            Some(
                remembered
                    .unwrap_or_else(|| Err(format!("watcher `{watcher}` was not listed yet"))),
            )
        })
    }
}
