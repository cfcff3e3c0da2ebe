//! Acting on an update: pull the new image with the registry's credentials,
//! then replace a container by one with exactly the same configuration on the
//! new image, proven running (and healthy) before the old one is removed, and
//! rolled back when it is not. Swarm services are updated through the
//! engine's own `service update` ([`swarm`]); a compose file's `image:` line
//! can follow ([`compose`]).
//!
//! The safety model, step by step (see [`DockerWatcher::replace_container`]):
//! containers sharing the old one's network (`network_mode: container:…`) or
//! linking to it are stopped first; the old container is stopped and renamed
//! aside (never removed until its replacement is proven); the replacement is
//! created under the old name, attached to every network with the same
//! aliases and addresses, started, and must be running — healthy when it has
//! a health check — within the timeout; dependents are then recreated against
//! it. Any failure undoes every step in reverse: the old container runs again
//! under its own name, with its own id. Only then are the old containers (and,
//! when asked, the old image) removed; volumes are never removed.
//!
//! This is a host capability: it is never lent to a plugin. Policy (which
//! container, when, with which threshold) belongs to the engine.

pub mod compose;
mod handover;
mod spec;
pub mod swarm;
mod wait;

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::{ContainerInspectResponse, ContainerSummary, ImageConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    RemoveContainerOptions, RemoveImageOptions, RenameContainerOptions, StartContainerOptions,
    StopContainerOptions, TagImageOptions,
};
use bollard::Docker;
use crowsnest_oci::Auth;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub use handover::{own_container_id, CONTAINER_ID_ENV, SELF_REPLACES_LABEL};
pub use spec::{network_container, replacement, ReplacementSpec};

use crate::DockerWatcher;

/// Label of the Swarm service a task container belongs to: such a container
/// is the service's to replace, never ours.
pub const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.id";

/// How long one pull, stop or start request may take (the client's default of
/// 30 seconds is too short for a large image).
const LONG_REQUEST: Duration = Duration::from_secs(30 * 60);

/// The `X-Registry-Auth` credentials of `auth` (the registry plugin's, as
/// the OCI client takes them) for `server`, the registry host as the engine
/// names it; `None` when anonymous.
pub fn docker_credentials(auth: &Auth, server: &str) -> Option<DockerCredentials> {
    match auth {
        Auth::Anonymous => None,
        Auth::Basic { username, password } => Some(DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }),
        Auth::Bearer(token) => Some(DockerCredentials {
            registrytoken: Some(token.clone()),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }),
    }
}

/// The image to pull and the reference the replacement is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePull {
    /// Repository as the container writes it (`nginx`, `127.0.0.1:5000/team/app`).
    pub repository: String,
    /// The tag the image carries afterwards (`None`: digest only).
    pub tag: Option<String>,
    /// The digest the pull is pinned to (what the registry offered).
    pub digest: Option<String>,
    /// The registry host the credentials are for (`docker.io`, `127.0.0.1:5000`).
    pub server: String,
    /// The reference the replacement container names (`app:1.1`, `app@sha256:…`).
    pub reference: String,
}

/// How a replacement is made and proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceOptions {
    /// Longest wait for the replacement to run (and be healthy).
    pub timeout: Duration,
    /// Without a health check: how long the replacement must run without a restart.
    pub settle: Duration,
    /// Grace period of `docker stop` (None: the container's own, else 10 seconds).
    pub stop_timeout: Option<Duration>,
    /// Remove the old image afterwards when no container uses it any more.
    pub remove_old_image: bool,
    /// Describe what would be done, and touch nothing.
    pub dry_run: bool,
    /// The id of the container crowsnest runs in, if it does: that one is
    /// replaced by the self-update path (the replacement stops it).
    pub own_container: Option<String>,
}

impl Default for ReplaceOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            settle: Duration::from_secs(5),
            stop_timeout: None,
            remove_old_image: false,
            dry_run: false,
            own_container: None,
        }
    }
}

/// How a replacement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplaceStatus {
    /// The replacement runs; the old container is gone.
    Updated,
    /// Nothing was touched; `changes` says what would be done.
    DryRun,
    /// crowsnest's own container: the replacement runs and stops this one.
    HandedOver,
    /// The replacement failed; the old container runs again as it was.
    RolledBack,
    /// It failed before anything was changed, or the rollback itself failed.
    Failed,
}

impl ReplaceStatus {
    /// The status as written in JSON, metrics and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::DryRun => "dry-run",
            Self::HandedOver => "handed-over",
            Self::RolledBack => "rolled-back",
            Self::Failed => "failed",
        }
    }
}

/// What happened to one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceReport {
    /// How it ended.
    pub status: ReplaceStatus,
    /// The old container's id.
    pub old_id: String,
    /// The replacement's id, when one runs.
    pub new_id: Option<String>,
    /// Container name.
    pub name: String,
    /// The image reference it ran.
    pub from_image: String,
    /// The image reference it runs (or would run).
    pub to_image: String,
    /// Containers recreated with it (shared network, links).
    pub dependents: Vec<String>,
    /// What was (or would be) done, step by step.
    pub steps: Vec<String>,
    /// Why it failed or rolled back, and anything worth knowing.
    pub message: Option<String>,
}

impl ReplaceReport {
    /// A failed report on `id` moving to `image`, before anything is known.
    pub(crate) fn failed(id: &str, image: &str) -> Self {
        Self {
            status: ReplaceStatus::Failed,
            old_id: id.to_owned(),
            new_id: None,
            name: id.to_owned(),
            from_image: String::new(),
            to_image: image.to_owned(),
            dependents: Vec::new(),
            steps: Vec::new(),
            message: None,
        }
    }
}

/// A container sharing the network of, or linking to, the one replaced.
#[derive(Debug, Clone)]
struct Dependent {
    inspected: ContainerInspectResponse,
    image: Option<ImageConfig>,
    id: String,
    name: String,
    running: bool,
    /// Shares the replaced container's network (else: links to it).
    shares_network: bool,
}

/// Everything known before the first change.
struct Prepared {
    old: ContainerInspectResponse,
    old_image: Option<ImageConfig>,
    old_id: String,
    old_image_id: String,
    name: String,
    running: bool,
    dependents: Vec<Dependent>,
}

/// One step to undo, in reverse order, when a replacement fails.
#[derive(Debug, Clone)]
enum Undo {
    /// Start a container that was stopped.
    Start(String),
    /// Give a container renamed aside its name back.
    Rename { id: String, name: String },
    /// Remove a container that was created.
    Remove(String),
}

/// A failure during a replacement: what failed.
type StepResult<T> = Result<T, String>;

impl DockerWatcher {
    /// The client for requests that may take long (pulls, stops).
    fn patient(&self) -> Docker {
        self.docker.clone().with_timeout(LONG_REQUEST)
    }

    /// Pulls `pull` (pinned to its digest when it has one, then tagged) with
    /// `auth`; returns the local image id.
    pub async fn pull_image(&self, pull: &ImagePull, auth: &Auth) -> Result<String, String> {
        let docker = self.patient();
        let reference = match (&pull.digest, &pull.tag) {
            (Some(digest), _) => digest.clone(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        };
        let options = CreateImageOptions {
            from_image: Some(pull.repository.clone()),
            tag: Some(reference.clone()),
            ..Default::default()
        };
        let mut progress =
            docker.create_image(Some(options), None, docker_credentials(auth, &pull.server));
        while let Some(item) = progress.next().await {
            if let Err(error) = item {
                return Err(format!(
                    "pulling {}{}{reference} failed: {error}",
                    pull.repository,
                    if pull.digest.is_some() { "@" } else { ":" }
                ));
            }
        }
        let pulled = match &pull.digest {
            Some(digest) => format!("{}@{digest}", pull.repository),
            None => format!("{}:{reference}", pull.repository),
        };
        if let (Some(_), Some(tag)) = (&pull.digest, &pull.tag) {
            let options = TagImageOptions {
                repo: Some(pull.repository.clone()),
                tag: Some(tag.clone()),
            };
            docker
                .tag_image(&pulled, Some(options))
                .await
                .map_err(|error| format!("tagging {pulled} as {tag} failed: {error}"))?;
        }
        let image = docker
            .inspect_image(&pull.reference)
            .await
            .map_err(|error| {
                format!("the pulled image {} is not there: {error}", pull.reference)
            })?;
        Ok(image.id.unwrap_or_default())
    }

    /// Replaces container `id` by one with the same configuration on `image`
    /// (present locally: see [`DockerWatcher::pull_image`]), proven running
    /// (and healthy) before the old one goes; rolled back otherwise. Never
    /// fails: the report says how it ended.
    pub async fn replace_container(
        &self,
        id: &str,
        image: &str,
        options: &ReplaceOptions,
    ) -> ReplaceReport {
        let mut report = ReplaceReport::failed(id, image);
        let prepared = match self.prepare(id).await {
            Ok(prepared) => prepared,
            Err(message) => {
                report.message = Some(message);
                return report;
            }
        };
        report.old_id = prepared.old_id.clone();
        report.name = prepared.name.clone();
        report.from_image = prepared
            .old
            .config
            .as_ref()
            .and_then(|config| config.image.clone())
            .unwrap_or_default();
        report.dependents = prepared
            .dependents
            .iter()
            .map(|dependent| dependent.name.clone())
            .collect();
        let own = options.own_container.as_deref() == Some(prepared.old_id.as_str());
        if options.dry_run {
            report.status = ReplaceStatus::DryRun;
            report.steps = self.planned_steps(&prepared, image, options, own);
            return report;
        }
        let mut undo = Vec::new();
        let outcome = if own {
            self.hand_over(&prepared, image, &mut undo, &mut report.steps)
                .await
        } else {
            self.replace(&prepared, image, options, &mut undo, &mut report.steps)
                .await
        };
        match outcome {
            Ok(new_id) => {
                report.new_id = Some(new_id);
                if own {
                    report.status = ReplaceStatus::HandedOver;
                    report.message = Some(
                        "crowsnest's own container: the replacement stops and removes this one when it starts"
                            .into(),
                    );
                } else {
                    report.status = ReplaceStatus::Updated;
                    report.message = self
                        .clean_up(&prepared, image, options, &mut report.steps)
                        .await;
                }
            }
            Err(failure) => {
                let rollback_errors = self.undo(undo, &mut report.steps).await;
                if rollback_errors.is_empty() {
                    report.status = ReplaceStatus::RolledBack;
                    report.message = Some(failure);
                } else {
                    report.status = ReplaceStatus::Failed;
                    report.message = Some(format!(
                        "{failure}; the rollback did not complete: {}",
                        rollback_errors.join("; ")
                    ));
                }
            }
        }
        tracing::info!(watcher = %self.name, container = %report.name, status = report.status.as_str(), message = ?report.message, "container update finished");
        report
    }

    /// Reads everything needed before the first change, and refuses what
    /// cannot be replaced safely.
    async fn prepare(&self, id: &str) -> StepResult<Prepared> {
        let old = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|error| format!("inspecting container {id} failed: {error}"))?;
        let old_id = old.id.clone().unwrap_or_else(|| id.to_owned());
        let name = old
            .name
            .as_deref()
            .unwrap_or(id)
            .trim_start_matches('/')
            .to_owned();
        let host = old.host_config.clone().unwrap_or_default();
        if host.auto_remove == Some(true) {
            return Err(format!(
                "container `{name}` was started with --rm: stopping it would delete it, so it could not be kept for a rollback; it is not updated"
            ));
        }
        let labels = old
            .config
            .as_ref()
            .and_then(|config| config.labels.clone())
            .unwrap_or_default();
        if let Some(service) = labels.get(SWARM_SERVICE_LABEL) {
            return Err(format!(
                "container `{name}` is a task of Swarm service {service}: the service is updated, not its tasks"
            ));
        }
        let old_image_id = old.image.clone().unwrap_or_default();
        let old_image = self.image_config(&old_image_id).await;
        let running = old
            .state
            .as_ref()
            .and_then(|state| state.running)
            .unwrap_or(false);
        let dependents = self.dependents(&old_id).await?;
        Ok(Prepared {
            old,
            old_image,
            old_id,
            old_image_id,
            name,
            running,
            dependents,
        })
    }

    /// The configuration image `id` contributes to its containers (None when
    /// the image is gone).
    async fn image_config(&self, id: &str) -> Option<ImageConfig> {
        match self.docker.inspect_image(id).await {
            Ok(image) => image.config,
            Err(error) => {
                tracing::warn!(watcher = %self.name, image = %id, %error, "the old image cannot be inspected; its defaults are copied as configuration");
                None
            }
        }
    }

    /// The containers sharing `old_id`'s network or linking to it.
    async fn dependents(&self, old_id: &str) -> StepResult<Vec<Dependent>> {
        let all: Vec<ContainerSummary> = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|error| format!("listing containers failed: {error}"))?;
        let shared = format!("container:{old_id}");
        // A container linked to by others carries a name `/OTHER/ALIAS` per link.
        let linkers: Vec<String> = all
            .iter()
            .filter(|summary| summary.id.as_deref() == Some(old_id))
            .flat_map(|summary| summary.names.clone().unwrap_or_default())
            .filter_map(|name| {
                let mut parts = name.trim_start_matches('/').split('/');
                match (parts.next(), parts.next()) {
                    (Some(linker), Some(_alias)) => Some(linker.to_owned()),
                    _ => None,
                }
            })
            .collect();
        let mut dependents = Vec::new();
        for summary in &all {
            let id = summary.id.clone().unwrap_or_default();
            let shares_network = summary
                .host_config
                .as_ref()
                .and_then(|host| host.network_mode.as_deref())
                == Some(shared.as_str());
            let links = summary.names.iter().flatten().any(|name| {
                linkers
                    .iter()
                    .any(|linker| name.trim_start_matches('/') == linker)
            });
            if id == old_id || !(shares_network || links) {
                continue;
            }
            let inspected = self
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .map_err(|error| format!("inspecting dependent container {id} failed: {error}"))?;
            if inspected
                .host_config
                .as_ref()
                .is_some_and(|host| host.auto_remove == Some(true))
            {
                return Err(format!(
                    "dependent container {} was started with --rm and could not be kept for a rollback",
                    inspected.name.as_deref().unwrap_or(&id)
                ));
            }
            let image = self
                .image_config(inspected.image.as_deref().unwrap_or_default())
                .await;
            dependents.push(Dependent {
                name: inspected
                    .name
                    .as_deref()
                    .unwrap_or(&id)
                    .trim_start_matches('/')
                    .to_owned(),
                running: inspected
                    .state
                    .as_ref()
                    .and_then(|state| state.running)
                    .unwrap_or(false),
                image,
                inspected,
                id,
                shares_network,
            });
        }
        dependents.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(dependents)
    }

    /// What a dry run reports.
    fn planned_steps(
        &self,
        prepared: &Prepared,
        image: &str,
        options: &ReplaceOptions,
        own: bool,
    ) -> Vec<String> {
        let spec = replacement(&prepared.old, prepared.old_image.as_ref(), image, None);
        let mut steps = Vec::new();
        for dependent in prepared.dependents.iter().filter(|d| d.running) {
            steps.push(format!("stop dependent container {}", dependent.name));
        }
        if own {
            steps.push(format!(
                "crowsnest's own container: rename {} aside, start its replacement on {image}, which then stops and removes the old one",
                prepared.name
            ));
            return steps;
        }
        if prepared.running {
            steps.push(format!("stop {}", prepared.name));
        }
        steps.push(format!(
            "rename {} to {}",
            prepared.name,
            aside_name(&prepared.name, &prepared.old_id)
        ));
        let networks: Vec<&str> = spec
            .body
            .networking_config
            .iter()
            .flat_map(|networking| networking.endpoints_config.iter().flatten())
            .map(|(name, _)| name.as_str())
            .chain(spec.extra_networks.iter().map(|(name, _)| name.as_str()))
            .collect();
        steps.push(format!(
            "create {} on {image} with the same configuration (network mode {}, networks [{}], {} mounts, {} environment variables, {} labels of its own)",
            prepared.name,
            spec.body
                .host_config
                .as_ref()
                .and_then(|host| host.network_mode.as_deref())
                .unwrap_or("default"),
            networks.join(", "),
            spec.body
                .host_config
                .as_ref()
                .map(|host| host.binds.iter().flatten().count() + host.mounts.iter().flatten().count())
                .unwrap_or_default(),
            spec.body.env.iter().flatten().count(),
            spec.body.labels.iter().flatten().count(),
        ));
        if prepared.running {
            steps.push(format!(
                "start it and wait up to {}s for it to run{}",
                options.timeout.as_secs(),
                if has_healthcheck(&prepared.old) {
                    " and be healthy"
                } else {
                    ""
                }
            ));
        }
        for dependent in &prepared.dependents {
            steps.push(format!(
                "recreate dependent container {} against it",
                dependent.name
            ));
        }
        steps.push(format!(
            "remove the old container {}",
            aside_name(&prepared.name, &prepared.old_id)
        ));
        if options.remove_old_image {
            steps.push(format!(
                "remove the old image {} if no container uses it",
                prepared.old_image_id
            ));
        }
        steps
    }

    /// The replacement proper; every change is recorded in `undo`.
    async fn replace(
        &self,
        prepared: &Prepared,
        image: &str,
        options: &ReplaceOptions,
        undo: &mut Vec<Undo>,
        steps: &mut Vec<String>,
    ) -> StepResult<String> {
        for dependent in prepared.dependents.iter().filter(|d| d.running) {
            self.stop(&dependent.id, options).await?;
            undo.push(Undo::Start(dependent.id.clone()));
            steps.push(format!("stopped dependent container {}", dependent.name));
        }
        if prepared.running {
            self.stop(&prepared.old_id, options).await?;
            undo.push(Undo::Start(prepared.old_id.clone()));
            steps.push(format!("stopped {}", prepared.name));
        }
        self.set_aside(&prepared.old_id, &prepared.name, undo, steps)
            .await?;
        let spec = replacement(&prepared.old, prepared.old_image.as_ref(), image, None);
        let new_id = self.create(&prepared.name, spec, undo).await?;
        steps.push(format!(
            "created {} ({}) on {image}",
            prepared.name,
            short(&new_id)
        ));
        if prepared.running {
            self.start(&new_id).await?;
            wait::until_proven(&self.docker, &new_id, options.timeout, options.settle).await?;
            steps.push(format!("started {} and it is proven", prepared.name));
        }
        for dependent in &prepared.dependents {
            self.set_aside(&dependent.id, &dependent.name, undo, steps)
                .await?;
            let own_image = dependent
                .inspected
                .config
                .as_ref()
                .and_then(|config| config.image.clone())
                .unwrap_or_default();
            let owner = dependent.shares_network.then_some(new_id.as_str());
            let spec = replacement(
                &dependent.inspected,
                dependent.image.as_ref(),
                &own_image,
                owner,
            );
            let dependent_id = self.create(&dependent.name, spec, undo).await?;
            if dependent.running {
                self.start(&dependent_id).await?;
                wait::until_proven(&self.docker, &dependent_id, options.timeout, options.settle)
                    .await
                    .map_err(|message| format!("dependent {}: {message}", dependent.name))?;
            }
            steps.push(format!("recreated dependent container {}", dependent.name));
        }
        Ok(new_id)
    }

    /// The self-update path: crowsnest cannot stop its own container and go
    /// on, so the replacement is started beside it, carrying
    /// [`SELF_REPLACES_LABEL`], and stops it ([`DockerWatcher::finish_handover`]).
    async fn hand_over(
        &self,
        prepared: &Prepared,
        image: &str,
        undo: &mut Vec<Undo>,
        steps: &mut Vec<String>,
    ) -> StepResult<String> {
        self.set_aside(&prepared.old_id, &prepared.name, undo, steps)
            .await?;
        let mut spec = replacement(&prepared.old, prepared.old_image.as_ref(), image, None);
        spec.body
            .labels
            .get_or_insert_with(HashMap::new)
            .insert(SELF_REPLACES_LABEL.to_owned(), prepared.old_id.clone());
        let new_id = self.create(&prepared.name, spec, undo).await?;
        self.start(&new_id).await?;
        steps.push(format!(
            "started the replacement {} ({}) on {image}; it stops this one",
            prepared.name,
            short(&new_id)
        ));
        Ok(new_id)
    }

    /// Renames container `id` (named `name`) aside until its replacement is proven.
    async fn set_aside(
        &self,
        id: &str,
        name: &str,
        undo: &mut Vec<Undo>,
        steps: &mut Vec<String>,
    ) -> StepResult<()> {
        let aside = aside_name(name, id);
        self.rename(id, &aside).await?;
        undo.push(Undo::Rename {
            id: id.to_owned(),
            name: name.to_owned(),
        });
        steps.push(format!("renamed {name} to {aside}"));
        Ok(())
    }

    /// Creates `name` from `spec` and attaches its further networks.
    async fn create(
        &self,
        name: &str,
        spec: ReplacementSpec,
        undo: &mut Vec<Undo>,
    ) -> StepResult<String> {
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_owned()),
                    ..Default::default()
                }),
                spec.body,
            )
            .await
            .map_err(|error| format!("creating the new {name} failed: {error}"))?;
        undo.push(Undo::Remove(created.id.clone()));
        for (network, endpoint) in spec.extra_networks {
            self.docker
                .connect_network(
                    &network,
                    bollard::models::NetworkConnectRequest {
                        container: Some(created.id.clone()),
                        endpoint_config: Some(endpoint),
                    },
                )
                .await
                .map_err(|error| {
                    format!("attaching the new {name} to network {network} failed: {error}")
                })?;
        }
        Ok(created.id)
    }

    async fn stop(&self, id: &str, options: &ReplaceOptions) -> StepResult<()> {
        let stop = StopContainerOptions {
            t: options
                .stop_timeout
                .map(|grace| i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        self.patient()
            .stop_container(id, Some(stop))
            .await
            .map_err(|error| format!("stopping {} failed: {error}", short(id)))
    }

    async fn start(&self, id: &str) -> StepResult<()> {
        self.patient()
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|error| format!("starting the new container {} failed: {error}", short(id)))
    }

    async fn rename(&self, id: &str, name: &str) -> StepResult<()> {
        self.docker
            .rename_container(
                id,
                RenameContainerOptions {
                    name: name.to_owned(),
                },
            )
            .await
            .map_err(|error| format!("renaming {} to {name} failed: {error}", short(id)))
    }

    /// Removes container `id`, never its volumes.
    pub(crate) async fn remove(&self, id: &str) -> StepResult<()> {
        self.docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
            .map_err(|error| format!("removing {} failed: {error}", short(id)))
    }

    /// Undoes `undo` in reverse order; returns what could not be undone.
    async fn undo(&self, undo: Vec<Undo>, steps: &mut Vec<String>) -> Vec<String> {
        let mut errors = Vec::new();
        for step in undo.into_iter().rev() {
            let (done, outcome) = match &step {
                Undo::Remove(id) => (
                    format!("removed the new container {}", short(id)),
                    self.remove(id).await,
                ),
                Undo::Rename { id, name } => (
                    format!("renamed {} back to {name}", short(id)),
                    self.rename(id, name).await,
                ),
                Undo::Start(id) => (
                    format!("started {} again", short(id)),
                    self.patient()
                        .start_container(id, None::<StartContainerOptions>)
                        .await
                        .map_err(|error| format!("starting {} again failed: {error}", short(id))),
                ),
            };
            match outcome {
                Ok(()) => steps.push(format!("rollback: {done}")),
                Err(error) => {
                    tracing::error!(watcher = %self.name, ?step, %error, "rollback step failed");
                    errors.push(error);
                }
            }
        }
        errors
    }

    /// After a proven replacement: remove the old containers (never their
    /// volumes) and, when asked, the old image. Returns a note about what
    /// could not be removed.
    async fn clean_up(
        &self,
        prepared: &Prepared,
        image: &str,
        options: &ReplaceOptions,
        steps: &mut Vec<String>,
    ) -> Option<String> {
        let mut notes = Vec::new();
        let old_ids =
            std::iter::once(&prepared.old_id).chain(prepared.dependents.iter().map(|d| &d.id));
        for id in old_ids {
            match self.remove(id).await {
                Ok(()) => steps.push(format!("removed the old container {}", short(id))),
                Err(error) => notes.push(error),
            }
        }
        if options.remove_old_image {
            let new_image_id = self
                .docker
                .inspect_image(image)
                .await
                .ok()
                .and_then(|inspected| inspected.id);
            if new_image_id.as_deref() != Some(prepared.old_image_id.as_str()) {
                match self
                    .docker
                    .remove_image(&prepared.old_image_id, None::<RemoveImageOptions>, None)
                    .await
                {
                    Ok(_) => steps.push(format!(
                        "removed the old image {}",
                        short(&prepared.old_image_id)
                    )),
                    Err(error) => notes.push(format!(
                        "the old image {} was kept: {error}",
                        short(&prepared.old_image_id)
                    )),
                }
            }
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// The name container `id`, named `name`, is renamed to until its
/// replacement is proven.
fn aside_name(name: &str, id: &str) -> String {
    format!("{name}-crowsnest-old-{}", short(id))
}

/// The first 12 characters of an id (after `sha256:`).
fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// Whether the container runs a health check.
fn has_healthcheck(container: &ContainerInspectResponse) -> bool {
    container
        .state
        .as_ref()
        .and_then(|state| state.health.as_ref())
        .is_some()
}
