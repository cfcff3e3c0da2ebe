//! Docker discovery: connects to each configured Docker engine (watcher) with
//! bollard, lists its containers and resolves, for every container, the image it
//! runs and the crowsnest options carried by its labels.
//!
//! Failures are scoped as tightly as possible: an unreachable engine fails only
//! its own watcher, and a container that cannot be inspected stays in the list
//! with its error instead of vanishing (or, worse, looking up to date).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerInspectResponse, ContainerSummary, ImageInspect};
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

/// Socket used by a watcher that names neither `socket` nor `host`.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Name of the watcher used when the configuration defines none.
pub const DEFAULT_WATCHER_NAME: &str = "local";

/// Seconds a single Docker API request may take before it is abandoned.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// How many container/image inspections run at once against one engine.
const INSPECT_CONCURRENCY: usize = 8;

/// Prefix of the labels crowsnest reads.
const LABEL_PREFIX: &str = "crowsnest.";

/// Prefix of What's Up Docker's labels, accepted as lower-priority twins.
const WUD_LABEL_PREFIX: &str = "wud.";

/// One Docker engine to watch, as written in the configuration (`[watchers.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    /// Unix socket of the engine, e.g. `/var/run/docker.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Remote engine, `tcp://host:port` or `https://host:port` (`unix://PATH` is accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// CA certificate (PEM) that signed the engine's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Watch containers that carry no `crowsnest.watch` label.
    #[serde(default = "default_true")]
    pub watch_by_default: bool,
    /// Include stopped containers, not only running ones.
    #[serde(default)]
    pub watch_all: bool,
    /// Cron expression for periodic scans of this watcher (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Random delay, in seconds, added before each scheduled scan (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
}

fn default_true() -> bool {
    true
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self {
            socket: None,
            host: None,
            ca: None,
            cert: None,
            key: None,
            watch_by_default: true,
            watch_all: false,
            schedule: None,
            jitter: None,
        }
    }
}

impl WatcherConfig {
    /// Works out how to reach the engine, validating the combination of fields.
    pub fn endpoint(&self, watcher: &str) -> Result<Endpoint, DiscoveryError> {
        let invalid = |reason: String| DiscoveryError::InvalidConfig {
            watcher: watcher.to_owned(),
            reason,
        };
        let tls_files = [&self.ca, &self.cert, &self.key];
        let any_tls_file = tls_files.iter().any(|file| file.is_some());
        match (&self.socket, &self.host) {
            (Some(_), Some(_)) => Err(invalid("set either `socket` or `host`, not both".into())),
            (socket, None) => {
                if any_tls_file {
                    return Err(invalid(
                        "`ca`/`cert`/`key` only apply to a `host` watcher".into(),
                    ));
                }
                let socket = socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
                Ok(Endpoint::Unix(socket))
            }
            (None, Some(host)) => {
                if let Some(path) = host.strip_prefix("unix://") {
                    if any_tls_file {
                        return Err(invalid("`ca`/`cert`/`key` do not apply to unix://".into()));
                    }
                    return Ok(Endpoint::Unix(PathBuf::from(path)));
                }
                let (scheme, authority) = host.split_once("://").ok_or_else(|| {
                    invalid(format!(
                        "`host` must start with tcp://, https:// or unix://, got `{host}`"
                    ))
                })?;
                if authority.is_empty() {
                    return Err(invalid(format!("`host` has no address: `{host}`")));
                }
                let wants_tls = match scheme {
                    "https" => true,
                    "tcp" | "http" => any_tls_file,
                    other => {
                        return Err(invalid(format!(
                            "unsupported scheme `{other}://` in `host` (use tcp, https or unix)"
                        )))
                    }
                };
                if !wants_tls {
                    return Ok(Endpoint::Tcp(format!("tcp://{authority}")));
                }
                match (&self.ca, &self.cert, &self.key) {
                    (Some(ca), Some(cert), Some(key)) => Ok(Endpoint::Tls {
                        address: format!("tcp://{authority}"),
                        ca: ca.clone(),
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => Err(invalid(
                        "TLS needs all three of `ca`, `cert` and `key`".into(),
                    )),
                }
            }
        }
    }
}

/// The configured watchers, or the single `local` socket watcher when none is configured.
pub fn watchers_or_default(
    configured: &BTreeMap<String, WatcherConfig>,
) -> BTreeMap<String, WatcherConfig> {
    if configured.is_empty() {
        BTreeMap::from([(DEFAULT_WATCHER_NAME.to_owned(), WatcherConfig::default())])
    } else {
        configured.clone()
    }
}

/// Where a Docker engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local unix socket.
    Unix(PathBuf),
    /// Plain, unauthenticated TCP (`tcp://host:port`).
    Tcp(String),
    /// TCP with TLS and a client certificate.
    Tls {
        /// `tcp://host:port`.
        address: String,
        /// CA certificate file.
        ca: PathBuf,
        /// Client certificate file.
        cert: PathBuf,
        /// Client key file.
        key: PathBuf,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(address) => f.write_str(address),
            Endpoint::Tls { address, .. } => write!(f, "{address} (TLS)"),
        }
    }
}

/// Errors of one watcher. Each names the watcher so a multi-host report stays readable.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The watcher's configuration is inconsistent.
    #[error("watcher `{watcher}`: invalid configuration: {reason}")]
    InvalidConfig {
        /// Watcher name.
        watcher: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine could not be reached or did not answer the version handshake.
    #[error("watcher `{watcher}`: Docker engine at {endpoint} is unreachable: {source}")]
    Unreachable {
        /// Watcher name.
        watcher: String,
        /// Where it was looked for.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing containers failed after the engine had answered.
    #[error("watcher `{watcher}`: listing containers at {endpoint} failed: {source}")]
    ListContainers {
        /// Watcher name.
        watcher: String,
        /// Engine address.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Inspecting one container failed.
    #[error("watcher `{watcher}`: inspecting container {container} failed: {source}")]
    InspectContainer {
        /// Watcher name.
        watcher: String,
        /// Container id or name that was asked for.
        container: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The event stream broke.
    #[error("watcher `{watcher}`: Docker event stream from {endpoint} failed: {source}")]
    Events {
        /// Watcher name.
        watcher: String,
        /// Engine address.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
}

/// crowsnest options a container carries in its labels (`crowsnest.*`, or the `wud.*` twin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOptions {
    /// `crowsnest.watch`: explicit opt-in / opt-out.
    pub watch: Option<bool>,
    /// `crowsnest.watch.digest`: also compare digests for this container.
    pub watch_digest: Option<bool>,
    /// `crowsnest.tag.include`: regex a candidate tag must match.
    pub tag_include: Option<String>,
    /// `crowsnest.tag.exclude`: regex a candidate tag must not match.
    pub tag_exclude: Option<String>,
    /// `crowsnest.tag.transform`: `REGEX => $1.$2` rewrite before comparing.
    pub tag_transform: Option<String>,
    /// `crowsnest.strategy`: name of the versioning strategy plugin.
    pub strategy: Option<String>,
    /// `crowsnest.strategy.regex`: parameter of the regex strategy.
    pub strategy_regex: Option<String>,
    /// `crowsnest.registry.lookup.image`: image to look up instead of the deployed one.
    pub registry_lookup_image: Option<String>,
    /// `crowsnest.link.template`: template of the release-notes link.
    pub link_template: Option<String>,
    /// `crowsnest.display.name`: name shown instead of the container name.
    pub display_name: Option<String>,
    /// `crowsnest.trigger.include`: triggers allowed for this container.
    pub trigger_include: Option<String>,
    /// `crowsnest.trigger.exclude`: triggers never run for this container.
    pub trigger_exclude: Option<String>,
}

impl ContainerOptions {
    /// Reads the options from a container's labels. The `crowsnest.*` label wins
    /// over its `wud.*` twin. Returns the options and one message per label whose
    /// value could not be understood (that option is then left unset).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let text = |suffix: &str| label_value(labels, suffix).map(|(_, value)| value.to_owned());
        let mut flag = |suffix: &str| {
            let (key, value) = label_value(labels, suffix)?;
            let parsed = parse_bool(value);
            if parsed.is_none() {
                problems.push(format!(
                    "label `{key}`: expected true or false, got `{value}`"
                ));
            }
            parsed
        };
        let watch = flag("watch");
        let watch_digest = flag("watch.digest");
        let options = Self {
            watch,
            watch_digest,
            tag_include: text("tag.include"),
            tag_exclude: text("tag.exclude"),
            tag_transform: text("tag.transform"),
            strategy: text("strategy"),
            strategy_regex: text("strategy.regex"),
            registry_lookup_image: text("registry.lookup.image"),
            link_template: text("link.template"),
            display_name: text("display.name"),
            trigger_include: text("trigger.include"),
            trigger_exclude: text("trigger.exclude"),
        };
        (options, problems)
    }
}

/// The label (key, value) for `suffix`: `crowsnest.SUFFIX` if present, else `wud.SUFFIX`.
fn label_value<'a>(
    labels: &'a BTreeMap<String, String>,
    suffix: &str,
) -> Option<(&'a str, &'a str)> {
    [LABEL_PREFIX, WUD_LABEL_PREFIX].iter().find_map(|prefix| {
        labels
            .get_key_value(&format!("{prefix}{suffix}"))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
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

/// Container lifecycle events that change what a watcher should scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerAction {
    /// Container created.
    Create,
    /// Container started.
    Start,
    /// Container removed.
    Destroy,
    /// Container process exited.
    Die,
    /// Container renamed.
    Rename,
}

impl ContainerAction {
    const ALL: [ContainerAction; 5] = [
        ContainerAction::Create,
        ContainerAction::Start,
        ContainerAction::Destroy,
        ContainerAction::Die,
        ContainerAction::Rename,
    ];

    /// The Docker event action name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerAction::Create => "create",
            ContainerAction::Start => "start",
            ContainerAction::Destroy => "destroy",
            ContainerAction::Die => "die",
            ContainerAction::Rename => "rename",
        }
    }

    fn parse(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == action)
    }
}

/// One container lifecycle event from a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// What happened.
    pub action: ContainerAction,
    /// Full id of the container it happened to.
    pub container_id: String,
}

/// A connected Docker engine.
#[derive(Debug, Clone)]
pub struct DockerWatcher {
    name: String,
    config: WatcherConfig,
    endpoint: Endpoint,
    docker: Docker,
}

impl DockerWatcher {
    /// Connects to the engine and negotiates the API version (so an engine older
    /// than bollard's default API, e.g. 20.10 speaking 1.41, works). Fails with
    /// [`DiscoveryError::Unreachable`] when nothing answers.
    pub async fn connect(
        name: impl Into<String>,
        config: WatcherConfig,
    ) -> Result<Self, DiscoveryError> {
        let name = name.into();
        let endpoint = config.endpoint(&name)?;
        let unreachable = |source| DiscoveryError::Unreachable {
            watcher: name.clone(),
            endpoint: endpoint.to_string(),
            source,
        };
        let client = match &endpoint {
            Endpoint::Unix(path) => Docker::connect_with_socket(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp(address) => {
                Docker::connect_with_http(address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            Endpoint::Tls {
                address,
                ca,
                cert,
                key,
            } => Docker::connect_with_ssl(
                address,
                key,
                cert,
                ca,
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
        }
        .map_err(unreachable)?;
        let docker = client.negotiate_version().await.map_err(unreachable)?;
        tracing::debug!(watcher = %name, %endpoint, api = %docker.client_version(), "connected to Docker");
        Ok(Self {
            name,
            config,
            endpoint,
            docker,
        })
    }

    /// Watcher name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Watcher configuration.
    pub fn config(&self) -> &WatcherConfig {
        &self.config
    }

    /// Where the engine listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The underlying client, for host capabilities that act on Docker (pull, recreate).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Lists the containers (running only, or all with `watch_all`) and inspects
    /// each container and each distinct image, a bounded number at a time. Only a
    /// failure to list fails the call; per-container failures land in
    /// [`DiscoveredContainer::error`].
    pub async fn discover(&self) -> Result<Vec<DiscoveredContainer>, DiscoveryError> {
        let options = ListContainersOptions {
            all: self.config.watch_all,
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|source| DiscoveryError::ListContainers {
                watcher: self.name.clone(),
                endpoint: self.endpoint.to_string(),
                source,
            })?;

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
        let images = self.inspect_images(image_ids).await;

        Ok(inspections
            .into_iter()
            .map(|(summary, inspected)| self.assemble(summary, inspected, &images))
            .collect())
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
        let images = self
            .inspect_images(details.image.iter().cloned().collect())
            .await;
        Ok(self.assemble(summary, Ok(Some(details)), &images))
    }

    /// Stream of container lifecycle events (create, start, destroy, die, rename).
    /// With `since`, the engine first replays the events from that time on (use
    /// it to resume after a reconnect without a gap). The request is sent when
    /// the stream is first polled. The stream ends after yielding an error when
    /// the connection breaks; the caller decides whether to reconnect.
    pub fn container_events(
        &self,
        since: Option<SystemTime>,
    ) -> impl Stream<Item = Result<ContainerEvent, DiscoveryError>> + Send + 'static {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                ContainerAction::ALL
                    .iter()
                    .map(|action| action.as_str().to_owned())
                    .collect(),
            ),
        ]);
        let since = since.map(|time| {
            let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            format!(
                "{}.{:09}",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            )
        });
        let options = EventsOptions {
            filters: Some(filters),
            since,
            ..Default::default()
        };
        let watcher = self.name.clone();
        let endpoint = self.endpoint.to_string();
        self.docker
            .events(Some(options))
            .map_err(move |source| DiscoveryError::Events {
                watcher: watcher.clone(),
                endpoint: endpoint.clone(),
                source,
            })
            .try_filter_map(|message| async move {
                let action = message
                    .action
                    .as_deref()
                    // Some engines suffix actions with details ("exec_start: sh"); not ours.
                    .and_then(ContainerAction::parse);
                let container_id = message.actor.and_then(|actor| actor.id);
                Ok(action
                    .zip(container_id)
                    .map(|(action, container_id)| ContainerEvent {
                        action,
                        container_id,
                    }))
            })
    }

    fn inspect_error(&self, container: &str, source: bollard::errors::Error) -> DiscoveryError {
        DiscoveryError::InspectContainer {
            watcher: self.name.clone(),
            container: container.to_owned(),
            source,
        }
    }

    async fn inspect_images(
        &self,
        image_ids: HashSet<String>,
    ) -> HashMap<String, Result<ImageInspect, String>> {
        futures::stream::iter(image_ids)
            .map(|image_id| async move {
                let inspected = self.docker.inspect_image(&image_id).await.map_err(|error| {
                    format!(
                        "watcher `{}`: inspecting image {image_id} failed: {error}",
                        self.name
                    )
                });
                (image_id, inspected)
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await
    }

    fn assemble(
        &self,
        summary: ContainerSummary,
        inspected: Result<Option<ContainerInspectResponse>, String>,
        images: &HashMap<String, Result<ImageInspect, String>>,
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
        };
        match images.get(&image_id) {
            Some(Ok(image)) => {
                container.repo_digests = image.repo_digests.clone().unwrap_or_default();
                container.repo_tags = image.repo_tags.clone().unwrap_or_default();
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

/// Connects to every watcher and discovers their containers concurrently. One
/// watcher's failure never affects another's result.
pub async fn discover_all(watchers: &BTreeMap<String, WatcherConfig>) -> Vec<WatcherDiscovery> {
    futures::future::join_all(watchers.iter().map(|(name, config)| async move {
        let containers = match DockerWatcher::connect(name.clone(), config.clone()).await {
            Ok(watcher) => watcher.discover().await,
            Err(error) => Err(error),
        };
        if let Err(error) = &containers {
            tracing::warn!(watcher = %name, %error, "watcher failed");
        }
        WatcherDiscovery {
            watcher: name.clone(),
            containers,
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn crowsnest_label_wins_over_wud_twin() {
        let (options, problems) = ContainerOptions::from_labels(&labels(&[
            ("wud.tag.include", "^wud$"),
            ("crowsnest.tag.include", "^cn$"),
            ("wud.tag.exclude", "rc"),
            ("wud.watch", "false"),
        ]));
        assert!(problems.is_empty());
        assert_eq!(options.tag_include.as_deref(), Some("^cn$"));
        assert_eq!(options.tag_exclude.as_deref(), Some("rc"));
        assert_eq!(options.watch, Some(false));
        assert_eq!(options.strategy, None);
    }

    #[test]
    fn bad_boolean_label_is_reported_and_ignored() {
        let (options, problems) =
            ContainerOptions::from_labels(&labels(&[("crowsnest.watch.digest", "perhaps")]));
        assert_eq!(options.watch_digest, None);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("crowsnest.watch.digest"),
            "{problems:?}"
        );
    }

    #[test]
    fn endpoint_defaults_to_local_socket() {
        let endpoint = WatcherConfig::default().endpoint("local").unwrap();
        assert_eq!(endpoint, Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)));
        let defaults = watchers_or_default(&BTreeMap::new());
        assert_eq!(defaults.keys().collect::<Vec<_>>(), vec!["local"]);
    }

    #[test]
    fn endpoint_parses_hosts() {
        let tcp = WatcherConfig {
            host: Some("tcp://10.0.0.1:2375".into()),
            ..Default::default()
        };
        assert_eq!(
            tcp.endpoint("w").unwrap(),
            Endpoint::Tcp("tcp://10.0.0.1:2375".into())
        );

        let tls = WatcherConfig {
            host: Some("https://h:2376".into()),
            ca: Some("ca.pem".into()),
            cert: Some("cert.pem".into()),
            key: Some("key.pem".into()),
            ..Default::default()
        };
        assert!(
            matches!(tls.endpoint("w").unwrap(), Endpoint::Tls { address, .. } if address == "tcp://h:2376")
        );

        let half_tls = WatcherConfig {
            host: Some("https://h:2376".into()),
            ca: Some("ca.pem".into()),
            ..Default::default()
        };
        let error = half_tls.endpoint("remote").unwrap_err().to_string();
        assert!(
            error.contains("remote") && error.contains("`key`"),
            "{error}"
        );

        let both = WatcherConfig {
            socket: Some("/s".into()),
            host: Some("tcp://h:1".into()),
            ..Default::default()
        };
        assert!(both.endpoint("w").is_err());

        let bad_scheme = WatcherConfig {
            host: Some("ftp://h".into()),
            ..Default::default()
        };
        assert!(bad_scheme.endpoint("w").is_err());
    }

    #[test]
    fn watcher_config_rejects_unknown_fields_and_defaults() {
        let config: WatcherConfig = toml::from_str("socket = \"/run/docker.sock\"").unwrap();
        assert!(config.watch_by_default);
        assert!(!config.watch_all);
        assert!(toml::from_str::<WatcherConfig>("sockett = \"/x\"").is_err());
    }

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
