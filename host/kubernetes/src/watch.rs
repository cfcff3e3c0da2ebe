//! A live list/watch of a watcher's Pods with kube-runtime's watcher: a
//! list (paged), then a watch from its `resourceVersion` that follows
//! bookmarks, and relists when the API server answers `410 Gone` for an
//! expired version. Each change comes out as the containers it concerns.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crowsnest_docker::DiscoveredContainer;

use crate::discovery::{container_id, Resolver};
use crate::{KubernetesError, KubernetesWatcher};

/// One change seen by the watch.
#[derive(Debug, Clone)]
pub enum PodChange {
    /// A Pod was added or modified: its containers as they are now.
    Applied(Vec<DiscoveredContainer>),
    /// A Pod was deleted: the ids of its containers.
    Deleted(Vec<String>),
    /// A (re)list completed for `scope` (a namespace, or every namespace):
    /// these are all its containers; any other of that scope is gone.
    Relisted {
        /// `namespace NAME` or `every namespace`.
        scope: String,
        /// Every container listed.
        containers: Vec<DiscoveredContainer>,
    },
}

/// The state one scope's watch carries between events.
struct ScopeWatch {
    scope: String,
    watcher_name: String,
    events: BoxStream<'static, watcher::Result<Event<Pod>>>,
    resolver: Resolver,
    listing: Vec<DiscoveredContainer>,
}

impl KubernetesWatcher {
    /// Watches the Pods of every configured namespace (or all) matching the
    /// label selector. Errors (a refused token, a dropped connection, a
    /// `410 Gone`) are yielded and the watch goes on after a backoff,
    /// relisting where it must.
    pub fn watch(&self) -> impl Stream<Item = Result<PodChange, KubernetesError>> + Send + 'static {
        let scopes: Vec<_> = self
            .pod_apis()
            .into_iter()
            .map(|(scope, api)| {
                let mut config = watcher::Config::default().page_size(500);
                if let Some(selector) = &self.config.label_selector {
                    config = config.labels(selector);
                }
                let state = ScopeWatch {
                    scope,
                    watcher_name: self.name.clone(),
                    events: watcher::watcher(api, config).default_backoff().boxed(),
                    resolver: Resolver::new(self.clone()),
                    listing: Vec::new(),
                };
                futures::stream::unfold(state, next_change).boxed()
            })
            .collect();
        futures::stream::select_all(scopes)
    }
}

/// The next change of one scope's watch (`None` when the stream ends).
async fn next_change(
    mut state: ScopeWatch,
) -> Option<(Result<PodChange, KubernetesError>, ScopeWatch)> {
    loop {
        let change = match state.events.next().await? {
            Ok(Event::Apply(pod)) => PodChange::Applied(state.resolver.containers_of(&pod).await),
            Ok(Event::Delete(pod)) => PodChange::Deleted(containers_ids(&pod)),
            Ok(Event::Init) => {
                state.listing.clear();
                state.resolver.clear();
                continue;
            }
            Ok(Event::InitApply(pod)) => {
                let containers = state.resolver.containers_of(&pod).await;
                state.listing.extend(containers);
                continue;
            }
            Ok(Event::InitDone) => PodChange::Relisted {
                scope: state.scope.clone(),
                containers: std::mem::take(&mut state.listing),
            },
            Err(err) => {
                let error = KubernetesError::Api {
                    watcher: state.watcher_name.clone(),
                    action: format!("watching pods in {}", state.scope),
                    reason: watch_error_reason(&err),
                };
                return Some((Err(error), state));
            }
        };
        return Some((Ok(change), state));
    }
}

/// The API server's status in a watch error, when it sent one.
fn watch_error_reason(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        watcher::Error::WatchError(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// The container ids of `pod` (for a deletion, nothing else needs reading).
fn containers_ids(pod: &Pod) -> Vec<String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .map(|container| container_id(uid, &container.name))
        .collect()
}
