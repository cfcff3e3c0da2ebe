//! Running update actions on containers: prepare each one (lock, a fresh
//! look at the engine, the registry's digest and creation time, cooldown,
//! credentials), pull, replace, then record the outcome (store, metrics) and
//! refresh what the store knows of the container.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};

use crowsnest_config::Mode;
use crowsnest_docker::update::{compose, ImagePull, ReplaceOptions, ReplaceReport, ReplaceStatus};
use crowsnest_docker::{DiscoveredContainer, DockerWatcher, WatcherConfig};
use crowsnest_model::{ContainerObject, ScanRequest, UpdateOutcome, UpdateReport};
use crowsnest_oci::reference::ImageReference;
use crowsnest_oci::Auth;
use crowsnest_plugin_host::auth_from_wit;
use crowsnest_plugin_host::registry::{Location, Platform};

use super::{ConfiguredAction, RunOrigin, UpdateActions};

/// What a container renamed aside during an update is called: `NAME` + this + 12 hex digits.
const ASIDE_MARK: &str = "-crowsnest-old-";

/// Whether `name` is an old container renamed aside by an update in progress
/// (or left by one that was interrupted): it is never updated itself.
pub(crate) fn is_set_aside(name: &str) -> bool {
    name.rsplit_once(ASIDE_MARK)
        .is_some_and(|(_, id)| id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A container another update is working on: its key stays in the busy set
/// until this guard drops.
struct Lock<'a> {
    busy: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> Lock<'a> {
    fn take(busy: &'a Mutex<HashSet<String>>, key: String) -> Option<Self> {
        let newly_held = busy.lock().ok()?.insert(key.clone());
        // (The guard above is released before a refused lock is dropped.)
        newly_held.then(|| Self { busy, key })
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.busy.lock() {
            held.remove(&self.key);
        }
    }
}

/// A container ready to be pulled and replaced.
struct Ready<'a> {
    action: &'a ConfiguredAction,
    container: ContainerObject,
    /// Its id now (the stored one may be older).
    id: String,
    service: bool,
    watcher: DockerWatcher,
    pull: ImagePull,
    auth: Auth,
    started: Instant,
    started_at: DateTime<Utc>,
    _lock: Lock<'a>,
}

impl UpdateActions {
    /// Runs the actions in scope for `origin` on `containers` (the result of
    /// a scan) and answers after the work. Containers without an update are
    /// not listed; those with one that no action may take are `skipped`.
    pub async fn run(
        &self,
        containers: &[ContainerObject],
        origin: RunOrigin,
        dry_run: bool,
    ) -> UpdateReport {
        let now = Local::now();
        let in_scope: Vec<&ConfiguredAction> = self
            .actions
            .iter()
            .filter(|action| action.in_scope(origin, now))
            .collect();
        let mut report = UpdateReport::default();
        let Some(first) = in_scope.first() else {
            return report;
        };
        let mut work: BTreeMap<&str, (&ConfiguredAction, Vec<&ContainerObject>)> = BTreeMap::new();
        for container in containers
            .iter()
            .filter(|c| c.update_available || c.error.is_some())
        {
            match in_scope
                .iter()
                .find(|action| action.refusal(container, false).is_none())
            {
                Some(action) => work
                    .entry(&action.name)
                    .or_insert((action, Vec::new()))
                    .1
                    .push(container),
                None => {
                    if container.update_available {
                        let reason = first.refusal(container, false).unwrap_or_default();
                        report.push(skipped(first, container, reason));
                    }
                }
            }
        }
        for (action, containers) in work.into_values() {
            self.execute(action, &containers, dry_run, &mut report)
                .await;
        }
        report
    }

    /// Updates one container now, by the first action that admits it (its
    /// labels apply, the threshold and window do not). `None` when no action
    /// is configured.
    pub async fn update_one(
        &self,
        container: &ContainerObject,
        dry_run: bool,
    ) -> Option<UpdateOutcome> {
        let first = self.actions.first()?;
        let action = self
            .actions
            .iter()
            .find(|action| action.refusal(container, true).is_none());
        let Some(action) = action else {
            let reason = first.refusal(container, true).unwrap_or_default();
            return Some(skipped(first, container, reason));
        };
        let mut report = UpdateReport::default();
        self.execute(action, &[container], dry_run, &mut report)
            .await;
        let outcome = report.outcomes().next().cloned();
        outcome
    }

    /// Runs `action` on `containers`: each pulled and replaced in turn
    /// (`simple`), or every image pulled before the first replacement (`batch`).
    async fn execute(
        &self,
        action: &ConfiguredAction,
        containers: &[&ContainerObject],
        dry_run: bool,
        report: &mut UpdateReport,
    ) {
        let dry_run = dry_run || action.config.dry_run;
        let mut ready = Vec::new();
        for container in containers {
            match self.prepare(action, container).await {
                Ok(prepared) if action.config.mode == Mode::Batch || dry_run => {
                    ready.push(prepared)
                }
                Ok(prepared) => {
                    let outcome = self.finish(prepared, dry_run).await;
                    self.file(outcome, report).await;
                }
                Err(outcome) => self.file(*outcome, report).await,
            }
        }
        let mut pulled = Vec::new();
        for prepared in ready {
            if dry_run || prepared.service {
                pulled.push(prepared);
                continue;
            }
            match prepared
                .watcher
                .pull_image(&prepared.pull, &prepared.auth)
                .await
            {
                Ok(_) => pulled.push(prepared),
                Err(message) => {
                    let outcome = self.outcome(&prepared, "failed", Some(message), Vec::new());
                    self.file(outcome, report).await;
                }
            }
        }
        for prepared in pulled {
            let outcome = self.replace(prepared, dry_run).await;
            self.file(outcome, report).await;
        }
    }

    /// Pull then replace (simple mode).
    async fn finish(&self, prepared: Ready<'_>, dry_run: bool) -> UpdateOutcome {
        if !dry_run && !prepared.service {
            if let Err(message) = prepared
                .watcher
                .pull_image(&prepared.pull, &prepared.auth)
                .await
            {
                return self.outcome(&prepared, "failed", Some(message), Vec::new());
            }
        }
        self.replace(prepared, dry_run).await
    }

    /// Records `outcome` (store, metrics) and files it in `report`.
    async fn file(&self, outcome: UpdateOutcome, report: &mut UpdateReport) {
        if outcome.status != "skipped" {
            self.metrics.record_update(&outcome.action, &outcome.status);
            if let Err(error) = self.scanner.store().record_update_attempt(&outcome).await {
                tracing::error!(%error, "cannot record an update attempt");
            }
        }
        report.push(outcome);
    }

    /// Takes the lock, looks at the container afresh, and works out what to
    /// pull; a refusal is the outcome to report.
    async fn prepare<'a>(
        &'a self,
        action: &'a ConfiguredAction,
        container: &ContainerObject,
    ) -> Result<Ready<'a>, Box<UpdateOutcome>> {
        let refuse = |status: &str, message: String| {
            let mut outcome = skipped(action, container, message);
            outcome.status = status.to_owned();
            Box::new(outcome)
        };
        let Some(lock) = Lock::take(
            &self.busy,
            format!("{}/{}", container.watcher, container.name),
        ) else {
            return Err(refuse(
                "skipped",
                "an update of this container is already under way".into(),
            ));
        };
        let config: WatcherConfig = self
            .scanner
            .watchers()
            .get(&container.watcher)
            .cloned()
            .ok_or_else(|| {
                refuse(
                    "failed",
                    format!("no watcher named `{}`", container.watcher),
                )
            })?;
        let watcher = DockerWatcher::connect(container.watcher.clone(), config)
            .await
            .map_err(|error| refuse("failed", error.to_string()))?;
        let service = container.kind.as_deref() == Some("service");
        let fresh = fresh_look(&watcher, container, service)
            .await
            .map_err(|message| refuse("skipped", message))?;
        let id = fresh.id.clone();
        let platform = Platform {
            architecture: fresh.architecture.clone().unwrap_or_else(|| "amd64".into()),
            os: fresh.os.clone().unwrap_or_else(|| "linux".into()),
            variant: fresh.variant.clone(),
        };
        let (target, deployed, as_itself) = self
            .scanner
            .locate(fresh)
            .await
            .map_err(|message| refuse("failed", message))?;
        let tag = container
            .result
            .as_ref()
            .and_then(|result| result.tag.clone())
            .ok_or_else(|| refuse("failed", "the check offered no tag to pull".into()))?;
        let location = &target.location;
        let offered = target
            .instance
            .plugin
            .resolve(location, &tag, Some(&platform), true)
            .await
            .map_err(|error| {
                refuse(
                    "failed",
                    format!(
                        "registry `{}`: cannot resolve tag `{tag}`: {error}",
                        target.instance.name
                    ),
                )
            })?;
        if let Some(reason) = cooldown_refusal(
            action.config.cooldown_secs,
            offered.created.as_deref(),
            Utc::now(),
        ) {
            return Err(refuse("skipped", reason));
        }
        let auth = if credentials_apply(&deployed, location) {
            match target.instance.plugin.credentials(location).await {
                Ok(auth) => auth_from_wit(auth),
                Err(error) => {
                    return Err(refuse(
                        "failed",
                        format!(
                            "registry `{}`: no credentials for the pull: {error}",
                            target.instance.name
                        ),
                    ))
                }
            }
        } else {
            Auth::Anonymous
        };
        let pull = image_pull(
            &deployed,
            &tag,
            as_itself.then_some(offered.digest),
            service,
        );
        Ok(Ready {
            action,
            container: container.clone(),
            id,
            service,
            watcher,
            pull,
            auth,
            started: Instant::now(),
            started_at: Utc::now(),
            _lock: lock,
        })
    }

    /// Replaces the prepared container (or updates the service) and
    /// refreshes the store; the lock is released afterwards.
    async fn replace(&self, prepared: Ready<'_>, dry_run: bool) -> UpdateOutcome {
        let config = &prepared.action.config;
        let options = ReplaceOptions {
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
            settle: Duration::from_secs(config.settle_secs),
            stop_timeout: config.stop_timeout_secs.map(Duration::from_secs),
            remove_old_image: config.remove_old_image,
            dry_run,
            own_container: self.own_container.clone(),
        };
        let reference = prepared.pull.reference.clone();
        let result: ReplaceReport = if prepared.service {
            prepared
                .watcher
                .update_service(
                    &prepared.id,
                    &reference,
                    &prepared.auth,
                    &prepared.pull.server,
                    &options,
                )
                .await
        } else {
            prepared
                .watcher
                .replace_container(&prepared.id, &reference, &options)
                .await
        };
        let mut steps = result.steps.clone();
        if dry_run && !prepared.service && result.status == ReplaceStatus::DryRun {
            steps.insert(0, format!("pull {}", pulled_reference(&prepared.pull)));
        }
        let mut message = result.message.clone();
        let done = matches!(
            result.status,
            ReplaceStatus::Updated | ReplaceStatus::HandedOver
        );
        if done && config.compose_rewrite {
            if let Some(note) = rewrite_compose(&prepared.container, &reference) {
                message = Some(match message {
                    Some(earlier) => format!("{earlier}; {note}"),
                    None => note,
                });
            }
        }
        let mut outcome = self.outcome(&prepared, result.status.as_str(), message, steps);
        outcome.from_image = if result.from_image.is_empty() {
            outcome.from_image
        } else {
            result.from_image.clone()
        };
        outcome.container_id = result.old_id.clone();
        outcome.new_container_id = result.new_id.clone();
        outcome.dependents = result.dependents.clone();
        if done {
            self.refresh(&prepared, &result).await;
        }
        outcome
    }

    /// After an update: the store forgets the old container and checks its replacement.
    async fn refresh(&self, prepared: &Ready<'_>, result: &ReplaceReport) {
        let Some(new_id) = &result.new_id else {
            return;
        };
        let watcher = &prepared.container.watcher;
        if prepared.service {
            let request = ScanRequest {
                container_ids: vec![new_id.clone()],
                watchers: vec![watcher.clone()],
                ..ScanRequest::default()
            };
            self.scanner.scan(&request).await;
            return;
        }
        if new_id != &result.old_id {
            if let Err(error) = self.scanner.forget_container(&result.old_id).await {
                tracing::warn!(%error, "cannot drop the replaced container from the store");
            }
            if let Err(error) = self.scanner.forget_container(&prepared.container.id).await {
                tracing::warn!(%error, "cannot drop the replaced container from the store");
            }
        }
        if let Err(error) = self.scanner.refresh_container(watcher, new_id).await {
            tracing::warn!(%error, "cannot check the replacement container");
        }
    }

    /// The outcome of `prepared` with `status`.
    fn outcome(
        &self,
        prepared: &Ready<'_>,
        status: &str,
        message: Option<String>,
        steps: Vec<String>,
    ) -> UpdateOutcome {
        let mut outcome = skipped(
            prepared.action,
            &prepared.container,
            message.unwrap_or_default(),
        );
        outcome.status = status.to_owned();
        outcome.message = outcome.message.filter(|message| !message.is_empty());
        outcome.container_id = prepared.id.clone();
        outcome.to_image = prepared.pull.reference.clone();
        outcome.steps = steps;
        outcome.started_at = prepared.started_at.to_rfc3339();
        outcome.duration_ms =
            u64::try_from(prepared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }
}

/// A `skipped` outcome of `container` by `action`, with `reason`.
fn skipped(
    action: &ConfiguredAction,
    container: &ContainerObject,
    reason: String,
) -> UpdateOutcome {
    UpdateOutcome {
        action: action.name.clone(),
        watcher: container.watcher.clone(),
        name: container.name.clone(),
        kind: container.kind.clone(),
        container_id: container.id.clone(),
        new_container_id: None,
        from_image: container.image.reference.clone(),
        to_image: container
            .result
            .as_ref()
            .and_then(|result| result.tag.as_ref())
            .map(|tag| format!("tag {tag}"))
            .unwrap_or_default(),
        status: "skipped".to_owned(),
        message: Some(reason),
        dependents: Vec::new(),
        steps: Vec::new(),
        started_at: Utc::now().to_rfc3339(),
        duration_ms: 0,
    }
}

/// The container (or service) as the engine shows it now; an error says why
/// it is not updated (gone, or changed since its last check).
async fn fresh_look(
    watcher: &DockerWatcher,
    container: &ContainerObject,
    service: bool,
) -> Result<DiscoveredContainer, String> {
    if service {
        let services = watcher
            .discover_services()
            .await
            .map_err(|error| error.to_string())?;
        let found = services
            .into_iter()
            .find(|found| found.id == container.id)
            .ok_or_else(|| format!("service `{}` is gone", container.name))?;
        if found.image_reference != container.image.reference {
            return Err(format!(
                "service `{}` changed since its last check (it now runs {}): rescan first",
                container.name, found.image_reference
            ));
        }
        return Ok(found);
    }
    // By name: a container recreated earlier in this run (as a dependent) keeps it.
    let found = watcher
        .discover_one(&container.name)
        .await
        .map_err(|_| format!("container `{}` is gone", container.name))?;
    if found.image_id != container.image.id {
        return Err(format!(
            "container `{}` changed since its last check (it now runs image {}): rescan first",
            container.name, found.image_id
        ));
    }
    Ok(found)
}

/// Why the offered image is too young for a cooldown of `cooldown_secs`, if it is.
fn cooldown_refusal(
    cooldown_secs: u64,
    created: Option<&str>,
    now: DateTime<Utc>,
) -> Option<String> {
    if cooldown_secs == 0 {
        return None;
    }
    let Some(created) = created else {
        return Some("the registry does not say when the offered image was created, so its cooldown cannot be checked".into());
    };
    let Ok(created) = DateTime::parse_from_rfc3339(created) else {
        return Some(format!("the offered image's creation time `{created}` is not RFC 3339, so its cooldown cannot be checked"));
    };
    let age = now.signed_duration_since(created.with_timezone(&Utc));
    let needed = chrono::Duration::seconds(i64::try_from(cooldown_secs).unwrap_or(i64::MAX));
    (age < needed).then(|| {
        format!(
            "the offered image is {}s old; the cooldown asks for {cooldown_secs}s",
            age.num_seconds().max(0)
        )
    })
}

/// Whether credentials for `location` are for the registry the engine pulls
/// `deployed` from (not for a mirror the image is only looked up through).
fn credentials_apply(deployed: &ImageReference, location: &Location) -> bool {
    let Ok(url) = url::Url::parse(&location.registry_url) else {
        return false;
    };
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return false,
    };
    let domain = deployed.domain();
    host == domain || (domain == "docker.io" && host == "registry-1.docker.io")
}

/// What to pull for `deployed` moving to `tag` (pinned to `digest` when
/// known), and the reference the replacement names: written the way the
/// container wrote its image (with a digest when it had one; a service is
/// always pinned, as Swarm pins it).
fn image_pull(
    deployed: &ImageReference,
    tag: &str,
    digest: Option<String>,
    service: bool,
) -> ImagePull {
    let repository = match deployed.written_domain() {
        Some(domain) => format!("{domain}/{}", deployed.written_path()),
        None => deployed.written_path().to_owned(),
    };
    let tag_written = deployed.tag().is_some() || deployed.digest().is_none();
    let with_digest = deployed.digest().is_some() || service;
    let mut reference = repository.clone();
    if tag_written && (deployed.tag().is_some() || tag != "latest") {
        reference.push(':');
        reference.push_str(tag);
    }
    if let (true, Some(digest)) = (with_digest, &digest) {
        reference.push('@');
        reference.push_str(digest);
    }
    ImagePull {
        repository,
        tag: tag_written.then(|| tag.to_owned()),
        digest,
        server: deployed.domain().to_owned(),
        reference,
    }
}

/// `repo@digest` or `repo:tag`: what a pull fetches.
fn pulled_reference(pull: &ImagePull) -> String {
    match (&pull.digest, &pull.tag) {
        (Some(digest), _) => format!("{}@{digest}", pull.repository),
        (None, Some(tag)) => format!("{}:{tag}", pull.repository),
        (None, None) => pull.repository.clone(),
    }
}

/// Rewrites the compose file of a compose-managed container; a note on what
/// happened (None when the container is not compose-managed).
fn rewrite_compose(container: &ContainerObject, new_image: &str) -> Option<String> {
    let service = container.labels.get(compose::SERVICE_LABEL)?;
    let files = compose::compose_files(&container.labels);
    if files.is_empty() {
        return Some("the compose file was not rewritten: the container's labels name none".into());
    }
    Some(
        match compose::rewrite_service_image(&files, service, &container.image.reference, new_image)
        {
            Ok(file) => format!(
                "compose file {} now names {new_image} (backup: {})",
                file.display(),
                compose::backup_path(&file).display()
            ),
            Err(reason) => format!("the compose file was not rewritten: {reason}"),
        },
    )
}

/// Run by crowsnest at start-up: when it runs in a container that replaced an
/// older crowsnest container (the self-update path), stops and removes that one.
pub async fn finish_handover(watchers: &BTreeMap<String, WatcherConfig>) {
    let Some(own) = crowsnest_docker::update::own_container_id() else {
        return;
    };
    for (name, config) in watchers {
        let Ok(watcher) = DockerWatcher::connect(name.clone(), config.clone()).await else {
            continue;
        };
        match watcher.finish_handover(&own).await {
            Ok(Some(old)) => {
                tracing::info!(watcher = %name, %old, "removed the crowsnest container this one replaced");
                return;
            }
            Ok(None) => return,
            // Not this engine's container: the next watcher may hold it.
            Err(error) => {
                tracing::debug!(watcher = %name, %error, "self-update hand-over not on this engine")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn aside_names_are_recognised() {
        assert!(is_set_aside("web-crowsnest-old-0123456789ab"));
        assert!(!is_set_aside("web"));
        assert!(!is_set_aside("web-crowsnest-old-xyz"));
    }

    #[test]
    fn cooldown_counts_from_the_creation_time() {
        let now = DateTime::parse_from_rfc3339("2025-06-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(cooldown_refusal(0, None, now), None);
        assert_eq!(
            cooldown_refusal(3600, Some("2025-06-10T10:00:00Z"), now),
            None
        );
        let young = cooldown_refusal(3600, Some("2025-06-10T11:30:00Z"), now).unwrap();
        assert!(young.contains("1800s old"), "{young}");
        assert!(cooldown_refusal(3600, None, now)
            .unwrap()
            .contains("cannot be checked"));
        assert!(cooldown_refusal(3600, Some("yesterday"), now)
            .unwrap()
            .contains("not RFC 3339"));
    }

    #[test]
    fn pulls_keep_the_written_form() {
        let reference = |text: &str| ImageReference::parse(text).unwrap();
        let digest = Some("sha256:abc".to_owned());
        let pull = image_pull(
            &reference("127.0.0.1:5000/team/app:1.0"),
            "1.1",
            digest.clone(),
            false,
        );
        assert_eq!(pull.repository, "127.0.0.1:5000/team/app");
        assert_eq!(pull.reference, "127.0.0.1:5000/team/app:1.1");
        assert_eq!(pull.server, "127.0.0.1:5000");
        assert_eq!(
            pulled_reference(&pull),
            "127.0.0.1:5000/team/app@sha256:abc"
        );
        let hub = image_pull(&reference("nginx"), "latest", digest.clone(), false);
        assert_eq!(
            (hub.reference.as_str(), hub.server.as_str()),
            ("nginx", "docker.io")
        );
        let old = format!("nginx:1.25@sha256:{}", "0".repeat(64));
        let pinned = image_pull(&reference(&old), "1.26", digest.clone(), false);
        assert_eq!(pinned.reference, "nginx:1.26@sha256:abc");
        let service = image_pull(&reference("127.0.0.1:5000/app:1.0"), "1.1", digest, true);
        assert_eq!(service.reference, "127.0.0.1:5000/app:1.1@sha256:abc");
    }

    #[test]
    fn credentials_only_go_to_the_registry_pulled_from() {
        let location = |url: &str| Location {
            registry_url: url.into(),
            repository: "team/app".into(),
            display: "x".into(),
        };
        let deployed = ImageReference::parse("127.0.0.1:5000/team/app:1.0").unwrap();
        assert!(credentials_apply(
            &deployed,
            &location("http://127.0.0.1:5000")
        ));
        assert!(!credentials_apply(
            &deployed,
            &location("https://upstream.example.com")
        ));
        let hub = ImageReference::parse("nginx:1.25").unwrap();
        assert!(credentials_apply(
            &hub,
            &location("https://registry-1.docker.io")
        ));
    }
}
