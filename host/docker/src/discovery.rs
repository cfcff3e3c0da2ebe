//! Discovery: list a watcher's containers and resolve, for each, the image it
//! runs and the options carried by its labels.
//!
//! Failures are scoped as tightly as possible: an unreachable engine fails only
//! its own watcher, and a container that cannot be inspected stays in the list
//! with its error instead of vanishing (or, worse, looking up to date).

use std::collections::{BTreeMap, HashSet};

use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::ListContainersOptions;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::images::ImageFactsById;
use crate::labels::ContainerOptions;
use crate::watcher::WatcherConfig;
use crate::{DiscoveryError, DockerWatcher};

/// How many container inspections run at once against one engine.
const INSPECT_CONCURRENCY: usize = 8;

/// How many engines are discovered at once.
const ENGINE_CONCURRENCY: usize = 16;

/// What a discovered workload is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkloadKind {
    /// A container.
    #[default]
    Container,
    /// A Swarm service (a watcher with `swarm = true`).
    Service,
    /// A container of a Kubernetes Pod (a watcher with `kind = "kubernetes"`).
    Pod,
}

impl WorkloadKind {
    /// Whether this is a container (the default, not written in JSON).
    pub fn is_container(&self) -> bool {
        *self == Self::Container
    }

    /// The kind as written in JSON: `container`, `service` or `pod`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Service => "service",
            Self::Pod => "pod",
        }
    }
}

/// A container found on a watcher, with its image and options resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredContainer {
    /// Full container id.
    pub id: String,
    /// Container name without the leading `/`.
    pub name: String,
    /// Docker state: `running`, `exited`, `created`, `paused`, …
    pub status: String,
    /// Name of the watcher that found it.
    pub watcher: String,
    /// A container, or a Swarm service.
    #[serde(default, skip_serializing_if = "WorkloadKind::is_container")]
    pub kind: WorkloadKind,
    /// Image reference as deployed (`Config.Image`): a name, name:tag, name@digest or an image id.
    pub image_reference: String,
    /// Local image id (`sha256:…`).
    pub image_id: String,
    /// `RepoDigests` of the local image (`name@sha256:…`), empty for never-pushed/pulled images.
    pub repo_digests: Vec<String>,
    /// `RepoTags` of the local image (`name:tag`).
    pub repo_tags: Vec<String>,
    /// Image CPU architecture, e.g. `amd64`.
    pub architecture: Option<String>,
    /// Image operating system, e.g. `linux`.
    pub os: Option<String>,
    /// Image architecture variant, e.g. `v8`.
    pub variant: Option<String>,
    /// Image creation time as reported by Docker (RFC 3339).
    pub image_created: Option<String>,
    /// All container labels.
    pub labels: BTreeMap<String, String>,
    /// crowsnest options resolved from the labels.
    pub options: ContainerOptions,
    /// Whether crowsnest should check this container for updates.
    pub watched: bool,
    /// Why this container could not be fully discovered (inspect failure, bad label).
    pub error: Option<String>,
    /// The workload that owns it, `Kind/name` (a Pod's Deployment,
    /// StatefulSet, DaemonSet or bare ReplicaSet/Job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Registry credentials the engine gave this container's workload, by
    /// registry host (a Pod's image pull secrets); never serialised.
    #[serde(skip)]
    pub pull_auth: BTreeMap<String, crowsnest_oci::Auth>,
}

impl DiscoveredContainer {
    /// The image reference to check for updates. A container created from a bare
    /// image id (`docker run 1a2b3c…`) has no name in `Config.Image`; it resolves to
    /// one of the image's `RepoTags` (a versioned tag in preference to `latest`).
    /// `None` when the container runs an untagged image known only by its id.
    pub fn resolved_image_reference(&self) -> Option<&str> {
        if !is_image_id_reference(&self.image_reference, &self.image_id) {
            return Some(&self.image_reference);
        }
        self.repo_tags
            .iter()
            .find(|tag| !tag.ends_with(":latest"))
            .or_else(|| self.repo_tags.first())
            .map(String::as_str)
    }

    /// Name to show: the `crowsnest.display.name` label, else the container name.
    pub fn display_name(&self) -> &str {
        self.options.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// True when `reference` is the image id itself (full, `sha256:`-prefixed, or a short prefix).
fn is_image_id_reference(reference: &str, image_id: &str) -> bool {
    let candidate = reference.strip_prefix("sha256:").unwrap_or(reference);
    let full_id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    candidate.len() >= 12
        && candidate.chars().all(|c| c.is_ascii_hexdigit())
        && full_id.starts_with(&candidate.to_ascii_lowercase())
}

impl DockerWatcher {
    /// Lists the containers (running only, or all with `watch_all`) and inspects
    /// each container and each distinct image, a bounded number at a time. Only a
    /// failure to list fails the call; per-container failures land in
    /// [`DiscoveredContainer::error`].
    pub async fn discover(&self) -> Result<Vec<DiscoveredContainer>, DiscoveryError> {
        let summaries = self.list_watched().await?;

        let inspections: Vec<(ContainerSummary, Result<Option<ContainerInspectResponse>, String>)> =
            futures::stream::iter(summaries)
                .map(|summary| async move {
                    if listing_is_complete(&summary) {
                        return (summary, Ok(None));
                    }
                    let id = summary.id.clone().unwrap_or_default();
                    let inspected = self
                        .docker
                        .inspect_container(
                            &id,
                            None::<bollard::query_parameters::InspectContainerOptions>,
                        )
                        .await;
                    (summary, inspected.map(Some))
                })
                .buffered(INSPECT_CONCURRENCY)
                .filter_map(|(summary, inspected)| async move {
                    match inspected {
                        Ok(details) => Some((summary, Ok(details))),
                        // Removed between the listing and the inspection: it is
                        // gone, not broken, so it is not reported at all.
                        Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        }) => {
                            tracing::debug!(watcher = %self.name, container = ?summary.id, "container vanished during discovery");
                            None
                        }
                        Err(source) => {
                            let id = summary.id.clone().unwrap_or_default();
                            Some((summary, Err(self.inspect_error(&id, source).to_string())))
                        }
                    }
                })
                .collect()
                .await;

        let image_ids: HashSet<String> = inspections
            .iter()
            .filter_map(|(summary, inspected)| match inspected {
                Ok(Some(details)) => details.image.clone(),
                Ok(None) | Err(_) => summary.image_id.clone(),
            })
            .collect();
        let images = self.image_facts(image_ids).await;

        let mut found: Vec<DiscoveredContainer> = inspections
            .into_iter()
            .map(|(summary, inspected)| self.assemble(summary, inspected, &images))
            .collect();
        if self.config.swarm {
            // A service's tasks are the service's: it is listed, they are not.
            found.retain(|container| {
                !container
                    .labels
                    .contains_key(crate::update::SWARM_SERVICE_LABEL)
            });
            found.extend(self.discover_services().await?);
        }
        Ok(found)
    }

    /// The engine's listing of the containers this watcher watches (running
    /// only, or all with `watch_all`).
    async fn list_watched(&self) -> Result<Vec<ContainerSummary>, DiscoveryError> {
        let options = ListContainersOptions {
            all: self.config.watch_all,
            ..Default::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|source| self.list_error(source))
    }

    /// The ids of the containers a full discovery would list now (running
    /// only, or all with `watch_all`), without inspecting them: what a scan
    /// prunes the store by once it has finished.
    pub async fn container_ids(&self) -> Result<HashSet<String>, DiscoveryError> {
        let summaries = self.list_watched().await?;
        Ok(summaries.into_iter().filter_map(|s| s.id).collect())
    }

    /// Whether a full discovery would list `container` (a stopped container
    /// is listed only with `watch_all`): an event refresh follows the same rule.
    pub fn lists(&self, container: &DiscoveredContainer) -> bool {
        self.config.watch_all || !container.kind.is_container() || container.status == "running"
    }

    /// Discovers one container by id or name (for a single-container rescan).
    pub async fn discover_one(&self, id: &str) -> Result<DiscoveredContainer, DiscoveryError> {
        let details = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|source| self.inspect_error(id, source))?;
        let summary = ContainerSummary {
            id: details.id.clone(),
            names: details.name.clone().map(|name| vec![name]),
            image: details
                .config
                .as_ref()
                .and_then(|config| config.image.clone()),
            image_id: details.image.clone(),
            labels: details
                .config
                .as_ref()
                .and_then(|config| config.labels.clone()),
            ..Default::default()
        };
        let images = self.inspect_images(details.image.iter().cloned()).await;
        Ok(self.assemble(summary, Ok(Some(details)), &images))
    }

    fn assemble(
        &self,
        summary: ContainerSummary,
        inspected: Result<Option<ContainerInspectResponse>, String>,
        images: &ImageFactsById,
    ) -> DiscoveredContainer {
        let mut errors = Vec::new();
        let summary_name = summary
            .names
            .as_ref()
            .and_then(|names| names.first())
            .cloned();
        let summary_status = summary.state.map(|state| state.to_string());
        // Without inspection details (listing complete, or inspection failed) the summary serves.
        let details = inspected.unwrap_or_else(|message| {
            errors.push(message);
            None
        });
        let (id, name, status, image_reference, image_id, labels) = match details {
            Some(details) => {
                let config = details.config.unwrap_or_default();
                (
                    details.id.or(summary.id),
                    details.name.or(summary_name),
                    details
                        .state
                        .and_then(|state| state.status)
                        .map(|status| status.to_string())
                        .or(summary_status),
                    config.image.or(summary.image),
                    details.image.or(summary.image_id),
                    config.labels.or(summary.labels),
                )
            }
            None => (
                summary.id,
                summary_name,
                summary_status,
                summary.image,
                summary.image_id,
                summary.labels,
            ),
        };
        let image_id = image_id.unwrap_or_default();
        let labels: BTreeMap<String, String> = labels.unwrap_or_default().into_iter().collect();
        let (options, label_problems) = ContainerOptions::from_labels(&labels);
        errors.extend(label_problems);
        let watched = options.watch.unwrap_or(self.config.watch_by_default);

        let mut container = DiscoveredContainer {
            id: id.unwrap_or_default(),
            name: name
                .map(|name| name.trim_start_matches('/').to_owned())
                .unwrap_or_default(),
            status: status.unwrap_or_default(),
            watcher: self.name.clone(),
            kind: WorkloadKind::Container,
            image_reference: image_reference.unwrap_or_default(),
            image_id: image_id.clone(),
            repo_digests: Vec::new(),
            repo_tags: Vec::new(),
            architecture: None,
            os: None,
            variant: None,
            image_created: None,
            labels,
            options,
            watched,
            error: None,
            owner: None,
            pull_auth: BTreeMap::new(),
        };
        match images.get(&image_id) {
            Some(Ok(image)) => {
                container.repo_digests = image.repo_digests.clone();
                container.repo_tags = image.repo_tags.clone();
                container.architecture = image.architecture.clone();
                container.os = image.os.clone();
                container.variant = image.variant.clone();
                container.image_created = image.created.clone();
            }
            Some(Err(message)) => errors.push(message.clone()),
            None => errors.push(format!(
                "watcher `{}`: container {} reports no image id",
                self.name, container.id
            )),
        }
        if !errors.is_empty() {
            tracing::warn!(watcher = %self.name, container = %container.id, errors = ?errors, "container discovered with errors");
            container.error = Some(errors.join("; "));
        }
        container
    }
}

/// Whether a container listing already says everything discovery needs, so
/// that the per-container inspection (the bulk of a large host's discovery
/// time) can be skipped. The listing shows the image reference the container
/// was created with unless that reference has since moved to another image;
/// the engine then lists the image id, and only an inspection tells the
/// original reference.
fn listing_is_complete(summary: &ContainerSummary) -> bool {
    let listed_image = summary.image.as_deref().unwrap_or_default();
    summary.id.is_some()
        && summary.image_id.is_some()
        && summary.state.is_some()
        && !listed_image.is_empty()
        && !listed_image.starts_with("sha256:")
        && summary.image_id.as_deref() != Some(listed_image)
}

/// What discovery found on one watcher.
#[derive(Debug)]
pub struct WatcherDiscovery {
    /// Watcher name.
    pub watcher: String,
    /// Its containers, or why the whole watcher failed.
    pub containers: Result<Vec<DiscoveredContainer>, DiscoveryError>,
}

/// Connects to every watcher and discovers their containers, up to
/// [`ENGINE_CONCURRENCY`] engines at once. One watcher's failure never
/// affects another's result.
pub async fn discover_all(watchers: &BTreeMap<String, WatcherConfig>) -> Vec<WatcherDiscovery> {
    // Collected first: a lazily mapped iterator inside the stream makes the
    // future not `Send` for every lifetime, which spawned scans need.
    let discoveries: Vec<_> = watchers
        .iter()
        .map(|(name, config)| discover_watcher(name, config))
        .collect();
    futures::stream::iter(discoveries)
        .buffered(ENGINE_CONCURRENCY)
        .collect()
        .await
}

/// Connects to one watcher and discovers its containers.
async fn discover_watcher(name: &str, config: &WatcherConfig) -> WatcherDiscovery {
    let containers = match DockerWatcher::connect(name, config.clone()).await {
        Ok(watcher) => watcher.discover().await,
        Err(error) => Err(error),
    };
    if let Err(error) = &containers {
        tracing::warn!(watcher = %name, %error, "watcher failed");
    }
    WatcherDiscovery {
        watcher: name.to_string(),
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use bollard::{Docker, API_DEFAULT_VERSION};

    /// A watcher whose client never connects (nothing listens on port 1), for
    /// exercising the pure assembly logic.
    fn offline_watcher() -> DockerWatcher {
        let config = WatcherConfig {
            host: Some("tcp://127.0.0.1:1".into()),
            ..Default::default()
        };
        let endpoint = config.endpoint("offline").unwrap();
        let docker =
            Docker::connect_with_http("tcp://127.0.0.1:1", 1, API_DEFAULT_VERSION).unwrap();
        DockerWatcher {
            name: "offline".into(),
            config,
            endpoint,
            docker,
        }
    }

    #[test]
    fn inspect_failures_keep_the_container_with_its_error() {
        let watcher = offline_watcher();
        let summary = ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/web".into()]),
            image: Some("nginx:1.25".into()),
            image_id: Some("sha256:1111".into()),
            labels: Some(HashMap::from([(
                "wud.watch".to_owned(),
                "false".to_owned(),
            )])),
            ..Default::default()
        };
        let images = HashMap::from([(
            "sha256:1111".to_owned(),
            Err("inspecting image sha256:1111 failed: boom".to_owned()),
        )]);
        let container = watcher.assemble(
            summary,
            Err("inspecting container abc failed: timeout".into()),
            &images,
        );
        assert_eq!(container.id, "abc");
        assert_eq!(container.name, "web");
        assert_eq!(container.image_reference, "nginx:1.25");
        assert!(!container.watched, "labels come from the listing");
        let error = container.error.unwrap();
        assert!(
            error.contains("timeout") && error.contains("boom"),
            "{error}"
        );
    }

    #[test]
    fn image_id_references_resolve_to_a_tag() {
        let container = DiscoveredContainer {
            id: "c".into(),
            name: "n".into(),
            status: "running".into(),
            watcher: "local".into(),
            kind: WorkloadKind::Container,
            image_reference: "99d698dbffbc".into(),
            image_id: "sha256:99d698dbffbc0123456789".into(),
            repo_digests: vec![],
            repo_tags: vec!["app:latest".into(), "app:1.0".into()],
            architecture: None,
            os: None,
            variant: None,
            image_created: None,
            labels: BTreeMap::new(),
            options: ContainerOptions::default(),
            watched: true,
            error: None,
            owner: None,
            pull_auth: BTreeMap::new(),
        };
        assert_eq!(container.resolved_image_reference(), Some("app:1.0"));
        let named = DiscoveredContainer {
            image_reference: "app:1.0".into(),
            ..container.clone()
        };
        assert_eq!(named.resolved_image_reference(), Some("app:1.0"));
        let untagged = DiscoveredContainer {
            repo_tags: vec![],
            ..container
        };
        assert_eq!(untagged.resolved_image_reference(), None);
    }
}
