//! Discovery: list a watcher's Pods (every namespace, or the configured
//! ones, filtered by the label selector, page by page) and turn each of
//! their containers into a [`DiscoveredContainer`] with its image, the digest
//! the node pulled (`status.containerStatuses[].imageID`), the workload that
//! owns the Pod, and the credentials of its image pull secrets.
//!
//! Failures are scoped like Docker discovery's: a refused listing fails only
//! this watcher; an owner or a secret that cannot be read is logged and the
//! containers are still checked (anonymously, or with the ReplicaSet as owner).

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams};

use crowsnest_docker::{ContainerOptions, DiscoveredContainer, WorkloadKind};

use crate::pull_secrets::{self, PullCredentials};
use crate::{KubernetesError, KubernetesWatcher, KubernetesWatcherConfig};

/// Pods asked for per page of a listing (`limit`, then `continue`).
const PAGE_SIZE: u32 = 500;

/// How many watchers are discovered at once.
const WATCHER_CONCURRENCY: usize = 16;

/// What discovery found on one Kubernetes watcher.
#[derive(Debug)]
pub struct KubernetesDiscovery {
    /// Watcher name.
    pub watcher: String,
    /// Its containers, or why the whole watcher failed.
    pub containers: Result<Vec<DiscoveredContainer>, KubernetesError>,
}

/// Connects to every Kubernetes watcher and discovers their containers, a
/// bounded number at once; one watcher's failure never affects another's.
pub async fn discover_all(
    watchers: &BTreeMap<String, KubernetesWatcherConfig>,
) -> Vec<KubernetesDiscovery> {
    let discoveries: Vec<_> = watchers
        .iter()
        .map(|(name, config)| async move {
            let containers = match KubernetesWatcher::connect(name.clone(), config.clone()).await {
                Ok(watcher) => watcher.discover().await,
                Err(error) => Err(error),
            };
            if let Err(error) = &containers {
                tracing::warn!(watcher = %name, %error, "kubernetes watcher failed");
            }
            KubernetesDiscovery {
                watcher: name.clone(),
                containers,
            }
        })
        .collect();
    futures::stream::iter(discoveries)
        .buffered(WATCHER_CONCURRENCY)
        .collect()
        .await
}

impl KubernetesWatcher {
    /// Lists the Pods and returns the containers of each (see the module doc).
    pub async fn discover(&self) -> Result<Vec<DiscoveredContainer>, KubernetesError> {
        let pods = self.list_pods().await?;
        let mut resolver = Resolver::new(self.clone());
        let mut found = Vec::new();
        for pod in &pods {
            found.extend(resolver.containers_of(pod).await);
        }
        Ok(found)
    }

    /// The Pod APIs to list: one per configured namespace, or the cluster-wide one.
    pub(crate) fn pod_apis(&self) -> Vec<(String, Api<Pod>)> {
        if self.config.namespaces.is_empty() {
            return vec![("every namespace".to_owned(), Api::all(self.client.clone()))];
        }
        self.config
            .namespaces
            .iter()
            .map(|namespace| {
                (
                    format!("namespace {namespace}"),
                    Api::namespaced(self.client.clone(), namespace),
                )
            })
            .collect()
    }

    /// Every Pod the watcher watches, page by page.
    async fn list_pods(&self) -> Result<Vec<Pod>, KubernetesError> {
        let mut pods = Vec::new();
        for (scope, api) in self.pod_apis() {
            let mut params = ListParams::default().limit(PAGE_SIZE);
            if let Some(selector) = &self.config.label_selector {
                params = params.labels(selector);
            }
            loop {
                let page = api
                    .list(&params)
                    .await
                    .map_err(|err| self.api_error(format!("listing pods in {scope}"), &err))?;
                let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
                pods.extend(page.items);
                match next {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
        }
        Ok(pods)
    }
}

/// Resolves owners and pull secrets for the Pods of one discovery, reading
/// each ReplicaSet, Deployment, service account and secret once.
pub(crate) struct Resolver {
    watcher: KubernetesWatcher,
    owners: HashMap<(String, String), Option<String>>,
    accounts: HashMap<(String, String), Vec<String>>,
    secrets: HashMap<(String, String), PullCredentials>,
}

impl Resolver {
    /// A resolver with empty caches.
    pub(crate) fn new(watcher: KubernetesWatcher) -> Self {
        Self {
            watcher,
            owners: HashMap::new(),
            accounts: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// Forgets what was read, so a relist reads owners and secrets afresh.
    pub(crate) fn clear(&mut self) {
        self.owners.clear();
        self.accounts.clear();
        self.secrets.clear();
    }

    /// The containers of `pod` (its init containers are not updated images
    /// anyone runs for long, so they are left out).
    pub(crate) async fn containers_of(&mut self, pod: &Pod) -> Vec<DiscoveredContainer> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let owner = self.owner_of(&namespace, pod).await;
        let pull_auth = self.pull_credentials(&namespace, pod).await;
        let mut labels: BTreeMap<String, String> =
            pod.metadata.annotations.clone().unwrap_or_default();
        labels.extend(pod.metadata.labels.clone().unwrap_or_default());
        let (options, problems) = ContainerOptions::from_labels(&labels);
        let watched = options
            .watch
            .unwrap_or(self.watcher.config.watch_by_default);
        let status = pod.status.as_ref();
        let phase = status
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Unknown")
            .to_ascii_lowercase();
        let Some(spec) = &pod.spec else {
            return Vec::new();
        };
        spec.containers
            .iter()
            .map(|container| {
                let container_status = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|all| all.iter().find(|c| c.name == container.name));
                let state = container_status
                    .and_then(|c| c.state.as_ref())
                    .and_then(|state| {
                        if state.running.is_some() {
                            Some("running")
                        } else if state.waiting.is_some() {
                            Some("waiting")
                        } else if state.terminated.is_some() {
                            Some("terminated")
                        } else {
                            None
                        }
                    })
                    .map(str::to_owned)
                    .unwrap_or_else(|| phase.clone());
                let (image_id, repo_digests) =
                    pulled_image(container_status.map(|c| c.image_id.as_str()).unwrap_or(""));
                DiscoveredContainer {
                    id: container_id(&uid, &container.name),
                    name: format!("{namespace}/{pod_name}/{}", container.name),
                    status: state,
                    watcher: self.watcher.name.clone(),
                    kind: WorkloadKind::Pod,
                    image_reference: container.image.clone().unwrap_or_default(),
                    image_id,
                    repo_digests,
                    repo_tags: Vec::new(),
                    architecture: None,
                    os: None,
                    variant: None,
                    image_created: None,
                    labels: labels.clone(),
                    options: options.clone(),
                    watched,
                    error: (!problems.is_empty()).then(|| problems.join("; ")),
                    owner: owner.clone(),
                    pull_auth: pull_auth.clone(),
                }
            })
            .collect()
    }

    /// `Kind/name` of the workload that controls `pod`: a Deployment through
    /// its ReplicaSet, else the controller itself (StatefulSet, DaemonSet,
    /// Job, a bare ReplicaSet); `None` for a Pod nobody controls.
    async fn owner_of(&mut self, namespace: &str, pod: &Pod) -> Option<String> {
        let controller = controller_of(pod.metadata.owner_references.as_deref())?;
        if controller.kind != "ReplicaSet" {
            return Some(format!("{}/{}", controller.kind, controller.name));
        }
        let key = (namespace.to_owned(), controller.name.clone());
        if let Some(known) = self.owners.get(&key) {
            return known.clone();
        }
        let owner = self.replica_set_owner(namespace, &controller.name).await;
        self.owners.insert(key, owner.clone());
        owner
    }

    /// The Deployment of ReplicaSet `name` (read, then the Deployment read
    /// too, so a ReplicaSet left behind by a deleted Deployment shows as itself).
    async fn replica_set_owner(&self, namespace: &str, name: &str) -> Option<String> {
        let client = self.watcher.client.clone();
        let itself = Some(format!("ReplicaSet/{name}"));
        let replica_set = match Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .get(name)
            .await
        {
            Ok(replica_set) => replica_set,
            Err(err) => {
                tracing::warn!(watcher = %self.watcher.name, "{}", self.watcher.api_error(format!("reading replicaset {namespace}/{name}"), &err));
                return itself;
            }
        };
        let Some(deployment) = controller_of(replica_set.metadata.owner_references.as_deref())
            .filter(|owner| owner.kind == "Deployment")
        else {
            return itself;
        };
        match Api::<Deployment>::namespaced(client, namespace)
            .get(&deployment.name)
            .await
        {
            Ok(found) => Some(format!(
                "Deployment/{}",
                found
                    .metadata
                    .name
                    .unwrap_or_else(|| deployment.name.clone())
            )),
            Err(err) => {
                tracing::warn!(watcher = %self.watcher.name, "{}", self.watcher.api_error(format!("reading deployment {namespace}/{}", deployment.name), &err));
                itself
            }
        }
    }

    /// The registry credentials of the Pod's image pull secrets and of its
    /// service account's, the Pod's own first (as the kubelet tries them).
    async fn pull_credentials(&mut self, namespace: &str, pod: &Pod) -> PullCredentials {
        let spec = pod.spec.as_ref();
        let mut names: Vec<String> = spec
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|reference| reference.name.clone())
            .collect();
        let account = spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        names.extend(self.account_secrets(namespace, &account).await);
        let mut credentials = PullCredentials::new();
        for name in names {
            for (registry, auth) in self.secret(namespace, &name).await {
                credentials.entry(registry).or_insert(auth);
            }
        }
        credentials
    }

    /// The image pull secret names of service account `account`.
    async fn account_secrets(&mut self, namespace: &str, account: &str) -> Vec<String> {
        let key = (namespace.to_owned(), account.to_owned());
        if let Some(known) = self.accounts.get(&key) {
            return known.clone();
        }
        let api = Api::<ServiceAccount>::namespaced(self.watcher.client.clone(), namespace);
        let names = match api.get_opt(account).await {
            Ok(found) => found
                .and_then(|account| account.image_pull_secrets)
                .unwrap_or_default()
                .into_iter()
                .map(|reference| reference.name)
                .collect(),
            Err(err) => {
                tracing::warn!(watcher = %self.watcher.name, "{}", self.watcher.api_error(format!("reading serviceaccount {namespace}/{account}"), &err));
                Vec::new()
            }
        };
        self.accounts.insert(key, names.clone());
        names
    }

    /// The credentials held by pull secret `name` (empty when it cannot be read).
    async fn secret(&mut self, namespace: &str, name: &str) -> PullCredentials {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(known) = self.secrets.get(&key) {
            return known.clone();
        }
        let api = Api::<Secret>::namespaced(self.watcher.client.clone(), namespace);
        let credentials = match api.get(name).await {
            Ok(secret) => {
                let secret_type = secret.type_.unwrap_or_default();
                let field = match secret_type.as_str() {
                    pull_secrets::DOCKER_CFG => ".dockercfg",
                    _ => ".dockerconfigjson",
                };
                let data = secret
                    .data
                    .unwrap_or_default()
                    .remove(field)
                    .map(|bytes| bytes.0)
                    .unwrap_or_default();
                pull_secrets::parse(&secret_type, &data).unwrap_or_else(|why| {
                    tracing::warn!(watcher = %self.watcher.name, "pull secret {namespace}/{name}: {why}");
                    PullCredentials::new()
                })
            }
            Err(err) => {
                tracing::warn!(watcher = %self.watcher.name, "{}", self.watcher.api_error(format!("reading secret {namespace}/{name}"), &err));
                PullCredentials::new()
            }
        };
        self.secrets.insert(key, credentials.clone());
        credentials
    }
}

/// The owner reference marked `controller: true`.
fn controller_of(owners: Option<&[OwnerReference]>) -> Option<&OwnerReference> {
    owners?
        .iter()
        .find(|owner| owner.controller.unwrap_or(false))
}

/// The id of container `name` of the Pod with `uid`: unique in the cluster
/// and stable for the Pod's life (a Pod's containers are fixed).
pub fn container_id(uid: &str, name: &str) -> String {
    format!("{uid}.{name}")
}

/// The image id and repo digests of a container status's `imageID`, which
/// runtimes write as `docker-pullable://repo@sha256:…`, `repo@sha256:…` or a
/// bare `sha256:…` image id (an image never pulled from a registry).
fn pulled_image(image_id: &str) -> (String, Vec<String>) {
    let without_scheme = image_id
        .split_once("://")
        .map_or(image_id, |(_, rest)| rest);
    match without_scheme.split_once('@') {
        Some((_, digest)) => (digest.to_owned(), vec![without_scheme.to_owned()]),
        None => (without_scheme.to_owned(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_of_every_runtime() {
        assert_eq!(
            pulled_image("docker-pullable://127.0.0.1:5000/app@sha256:ab"),
            (
                "sha256:ab".into(),
                vec!["127.0.0.1:5000/app@sha256:ab".into()]
            )
        );
        assert_eq!(
            pulled_image("docker.io/library/nginx@sha256:cd"),
            (
                "sha256:cd".into(),
                vec!["docker.io/library/nginx@sha256:cd".into()]
            )
        );
        assert_eq!(pulled_image("sha256:ef"), ("sha256:ef".into(), vec![]));
        assert_eq!(pulled_image(""), (String::new(), vec![]));
    }

    #[test]
    fn the_controller_is_the_owner() {
        let reference = |kind: &str, controller| OwnerReference {
            kind: kind.into(),
            name: "x".into(),
            controller,
            ..Default::default()
        };
        let owners = [
            reference("ConfigMap", None),
            reference("StatefulSet", Some(true)),
        ];
        assert_eq!(
            controller_of(Some(&owners)).map(|o| o.kind.as_str()),
            Some("StatefulSet")
        );
        assert!(controller_of(Some(&owners[..1])).is_none());
    }
}
