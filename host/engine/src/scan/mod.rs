//! The scan engine: discover containers, group them by repository, list each
//! repository's tags once, let the strategy plugin pick each container's
//! update, look up each needed digest once, and store the results.
//!
//! Every failure lands on the containers it concerns (`error.message`); the
//! others are unaffected.

mod check;
mod cluster;
mod deadline;
mod docker_logins;
mod probe;
mod registries;
mod sources;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crowsnest_config::{Config, ConfigError, ScanConfig};
use crowsnest_docker::{self as discovery, DiscoveredContainer, WatcherConfig};
use crowsnest_model::{ContainerObject, ScanReport, ScanRequest, ScanStats, WatcherError};
use crowsnest_oci::reference::ImageReference;
use crowsnest_oci::{ClientConfig, RegistryClient};
use crowsnest_plugin_host::registry::Location;
use crowsnest_plugin_host::{
    Catalog, InstanceSpec, NoObserver, PluginKind, PluginObserver, StrategyPlugin,
};
use crowsnest_store::{Pruned, Store, UpdateRecord};

pub use check::{link_from_template, ContainerPlan, Target};
pub use probe::ProbeStep;
pub use registries::{RegistryInstance, RegistrySummary};
pub use sources::{ContainerSource, SourceListing};

use deadline::Deadlines;
use registries::RegistrySet;

/// Why a scanner could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScanSetupError {
    /// The configuration is wrong (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something else failed (store, HTTP client).
    #[error("{0}")]
    Runtime(String),
}

/// Why a single-container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Docker could not be asked.
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crowsnest_store::StoreError),
    /// No such watcher.
    #[error("no watcher named `{0}`")]
    UnknownWatcher(String),
    /// The results could not be stored.
    #[error("{0}")]
    Persist(String),
    /// A container source (an agent, a cluster) cannot be read now.
    #[error("{0}")]
    Source(String),
}

/// (registry instance, registry URL, repository): one tag listing each.
type RepositoryKey = (String, String, String);

/// The registry instance and location a group of containers is looked up at.
type GroupTarget = (Arc<RegistryInstance>, Location);

/// Called as repositories complete (for progress bars): (done, total).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

struct Inner {
    config: Config,
    scan: ScanConfig,
    watchers: BTreeMap<String, WatcherConfig>,
    catalog: Arc<Catalog>,
    registries: RegistrySet,
    strategies: Strategies,
    client: RegistryClient,
    store: Store,
    tag_cache_ttl: Duration,
    sources: sources::Sources,
}

/// The version strategies, each started when first used.
pub struct Strategies {
    catalog: Arc<Catalog>,
    spec: InstanceSpec,
    /// One cell per requested name, so a lookup only waits for its own
    /// strategy's first start, and a failure (with the list of available
    /// names, which compiles the catalog's strategies) is worked out once.
    started: std::sync::Mutex<HashMap<String, Arc<StrategyCell>>>,
}

/// A strategy once started, or why it could not be.
type StrategyCell = tokio::sync::OnceCell<Result<Arc<StrategyPlugin>, String>>;

impl Strategies {
    /// The strategy `name`, started on first use; else the available names, comma-separated.
    pub async fn get(&self, name: &str) -> Result<Arc<StrategyPlugin>, String> {
        let cell = {
            let mut started = self
                .started
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            started.entry(name.to_string()).or_default().clone()
        };
        cell.get_or_init(|| self.start(name)).await.clone()
    }

    async fn start(&self, name: &str) -> Result<Arc<StrategyPlugin>, String> {
        let plugin = match self.catalog.find(name, PluginKind::VersionStrategy).await {
            Ok(entry) => StrategyPlugin::new(&entry.component, self.spec.clone())
                .await
                .map_err(|err| {
                    tracing::error!(strategy = %name, "strategy plugin unusable: {err}");
                }),
            Err(_) => Err(()),
        };
        match plugin {
            Ok(plugin) => Ok(Arc::new(plugin)),
            Err(()) => Err(self
                .catalog
                .names(PluginKind::VersionStrategy)
                .await
                .join(", ")),
        }
    }
}

/// The scan engine; cheap to clone.
#[derive(Clone)]
pub struct Scanner {
    inner: Arc<Inner>,
}

impl Scanner {
    /// `plugins test`: the registry instance `name`'s steps for `image`.
    pub async fn probe_registry(&self, name: &str, image: &ImageReference) -> Vec<ProbeStep> {
        probe::probe(&self.inner.registries, name, image).await
    }

    /// Build a scanner: load plugins, start registry instances and strategies,
    /// open the store. Configuration problems name file, line and key.
    pub async fn new(config: &Config) -> Result<Self, ScanSetupError> {
        Self::with_observer(config, Arc::new(NoObserver)).await
    }

    /// [`Scanner::new`], reporting every plugin call to `observer` (metrics).
    pub async fn with_observer(
        config: &Config,
        observer: Arc<dyn PluginObserver>,
    ) -> Result<Self, ScanSetupError> {
        let scan = config.scan.clone();
        // The implicit local Docker watcher stands in only when no watcher
        // of any kind is configured.
        let watchers = if config.kubernetes_watchers.is_empty() {
            discovery::watchers_or_default(&config.watchers)
        } else {
            config.watchers.clone()
        };
        let catalog = Arc::new(
            Catalog::load_lazy(&crate::plugin_setup::catalog_options(&config.plugins)).await,
        );
        let client = RegistryClient::new(ClientConfig {
            max_concurrent_requests_per_registry: scan.registry_concurrency.max(1),
            initial_concurrent_requests_per_registry: scan.registry_concurrency_start.max(1),
            origin_ceilings: origin_ceilings(config),
            request_timeout: Duration::from_secs(scan.registry_timeout.max(1)),
            ..ClientConfig::default()
        })
        .map_err(|err| ScanSetupError::Runtime(err.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ScanSetupError::Runtime(format!("cannot build HTTP client: {err}")))?;
        let registries = RegistrySet::new(
            config,
            catalog.clone(),
            client.clone(),
            http,
            observer.clone(),
        )
        .await?;

        let strategies = Strategies {
            catalog: catalog.clone(),
            spec: InstanceSpec {
                settings: Vec::new(),
                limits: crate::plugin_setup::sandbox_limits(&config.plugins),
                capabilities: Default::default(),
                max_instances: config.plugins.instances,
                observer: observer.clone(),
            },
            started: Default::default(),
        };
        // Names the configuration gives are checked (and their plugins
        // started) now; a label's strategy when a container first asks.
        let unknown = |strategy: &str, available: String| {
            format!("unknown strategy `{strategy}` (available: {available})")
        };
        if let Err(available) = strategies.get(&scan.strategy).await {
            return Err(config
                .error_at(&["scan", "strategy"], unknown(&scan.strategy, available))
                .into());
        }
        for instance in registries.configured() {
            if let Some(strategy) = instance.strategy.as_deref() {
                if let Err(available) = strategies.get(strategy).await {
                    return Err(config
                        .error_at(
                            &["registries", &instance.name, "strategy"],
                            unknown(strategy, available),
                        )
                        .into());
                }
            }
        }

        let sources = sources::Sources::default();
        sources.add(Arc::new(sources::DockerSource::new(watchers.clone())));
        if !config.kubernetes_watchers.is_empty() {
            sources.add(Arc::new(cluster::KubernetesSource::new(
                config.kubernetes_watchers.clone(),
            )));
        }
        let store = Store::open_config(&config.store)
            .await
            .map_err(|err| ScanSetupError::Runtime(err.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                scan,
                watchers,
                catalog,
                registries,
                strategies,
                client,
                store,
                tag_cache_ttl: Duration::from_secs(config.store.tag_cache_ttl),
                sources,
            }),
        })
    }

    /// The store holding containers, results and caches.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The loaded plugins.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The shared registry client (its counters feed metrics and benchmarks).
    pub fn registry_client(&self) -> &RegistryClient {
        &self.inner.client
    }

    /// The Docker hosts watched.
    pub fn watchers(&self) -> &BTreeMap<String, WatcherConfig> {
        &self.inner.watchers
    }

    /// The names of every configured watcher, Docker and Kubernetes (an
    /// agent may take none of them).
    pub fn configured_watcher_names(&self) -> Vec<String> {
        let config = &self.inner.config;
        self.inner
            .watchers
            .keys()
            .chain(config.kubernetes_watchers.keys())
            .cloned()
            .collect()
    }

    /// Adds a container source (connected agents) whose
    /// watchers every later scan reads beside the configured Docker watchers.
    pub fn add_source(&self, source: Arc<dyn ContainerSource>) {
        self.inner.sources.add(source);
    }

    /// Configured registries, secrets masked.
    pub fn registries(&self) -> Vec<RegistrySummary> {
        self.inner.registries.summaries()
    }

    /// The configuration the scanner was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Scan every watcher (filtered by `request`) and store the results.
    pub async fn scan(&self, request: &ScanRequest) -> ScanReport {
        self.scan_with_progress(request, None).await
    }

    /// [`Scanner::scan`], reporting progress per repository.
    pub async fn scan_with_progress(
        &self,
        request: &ScanRequest,
        progress: Option<Progress>,
    ) -> ScanReport {
        let started = Instant::now();
        let mut report = ScanReport::default();
        let mut discovered = Vec::new();
        let mut complete_watchers = Vec::new();
        // One discovery loop over every source (Docker engines, clusters,
        // agents), one prune rule and one stale rule for all of them.
        let listings = self.inner.sources.list(&request.watchers).await;
        for unknown in request
            .watchers
            .iter()
            .filter(|name| !listings.iter().any(|listing| listing.watcher == **name))
        {
            report.watcher_errors.push(WatcherError {
                watcher: unknown.clone(),
                message: format!("no watcher named `{unknown}`"),
            });
        }
        for SourceListing {
            watcher,
            containers,
        } in listings
        {
            match containers {
                Ok(containers) => {
                    // Services are not in a container listing: kept as discovered.
                    let services: Vec<String> = containers
                        .iter()
                        .filter(|c| !c.kind.is_container())
                        .map(|c| c.id.clone())
                        .collect();
                    complete_watchers.push((watcher, services));
                    discovered.extend(containers);
                }
                Err(message) => report
                    .watcher_errors
                    .push(WatcherError { watcher, message }),
            }
        }
        let full = request.images.is_empty() && request.container_ids.is_empty();
        let selected: Vec<DiscoveredContainer> = discovered
            .into_iter()
            .filter(|c| c.watched)
            .filter(|c| {
                request.container_ids.is_empty()
                    || request.container_ids.iter().any(|id| id_matches(c, id))
            })
            .filter(|c| {
                request.images.is_empty()
                    || request
                        .images
                        .iter()
                        .any(|pattern| deployed_image_matches(c, pattern))
            })
            .collect();
        let deadlines = Deadlines::of_scan(&self.inner.scan, started);
        let mut containers = self
            .check(selected, &mut report.stats, progress, deadlines, full)
            .await;
        // The store is pruned by what each engine lists once the scan is done,
        // not by what it listed at the start: a container created meanwhile
        // (and stored by its event) stays, one destroyed meanwhile is not
        // written back as a ghost.
        let mut prune = Vec::new();
        for (watcher, services) in &complete_watchers {
            match self.listed_now(watcher).await {
                Ok(mut ids) => {
                    ids.extend(services.iter().cloned());
                    containers.retain(|c| c.watcher != *watcher || ids.contains(&c.id));
                    if full {
                        prune.push((watcher.clone(), ids.into_iter().collect()));
                    }
                }
                // The engine answered the discovery but not now: it died
                // during the scan. Its watcher failed; its stored results
                // stay, marked stale, rather than half-discovered ones.
                Err(err) => {
                    tracing::warn!(watcher = %watcher, "engine lost during the scan: {err}");
                    containers.retain(|c| c.watcher != *watcher);
                    report.watcher_errors.push(WatcherError {
                        watcher: watcher.clone(),
                        message: format!("lost during the scan: {err}"),
                    });
                }
            }
        }
        if let Err(err) = self.persist(&containers, Some(&prune)).await {
            report.store_error = Some(err);
        }
        report.stats.containers = containers.len();
        if request.images.is_empty() && request.container_ids.is_empty() {
            containers.extend(self.mark_stale(&report.watcher_errors).await);
        }
        report.stats.duration_ms = started.elapsed().as_millis() as u64;
        report.containers = containers;
        report
    }

    /// Re-inspect and check one container (after a Docker event). `Ok(None)`
    /// when it is gone or not watched; it is then removed from the store.
    pub async fn refresh_container(
        &self,
        watcher: &str,
        container_id: &str,
    ) -> Result<Option<ContainerObject>, ScanError> {
        if !self.inner.watchers.contains_key(watcher) {
            if let Some(listing) = self.inner.sources.listing(watcher).await {
                return self.refresh_from_source(listing, container_id).await;
            }
        }
        let docker = self.connect_watcher(watcher).await?;
        let found = match docker.discover_one(container_id).await {
            // Listed and watched by the rules of a full discovery (`watch_all`).
            Ok(found) if found.watched && docker.lists(&found) => found,
            Ok(_) => {
                self.forget_container(container_id).await?;
                return Ok(None);
            }
            Err(err) if err.is_not_found() => {
                self.forget_container(container_id).await?;
                return Ok(None);
            }
            // A failed inspection (timeout, 500) says nothing about the
            // container: its stored result stays.
            Err(err) => return Err(err.into()),
        };
        self.check_and_store(found).await
    }

    /// [`Scanner::refresh_container`] for a container a source feeds: it is
    /// checked as the source lists it now, or forgotten when no longer listed.
    async fn refresh_from_source(
        &self,
        listing: SourceListing,
        container_id: &str,
    ) -> Result<Option<ContainerObject>, ScanError> {
        let containers = listing.containers.map_err(ScanError::Source)?;
        match containers.into_iter().find(|c| id_matches(c, container_id)) {
            Some(found) if found.watched => self.check_and_store(found).await,
            _ => {
                self.forget_container(container_id).await?;
                Ok(None)
            }
        }
    }

    /// Checks one container and stores the result.
    async fn check_and_store(
        &self,
        found: DiscoveredContainer,
    ) -> Result<Option<ContainerObject>, ScanError> {
        let mut stats = ScanStats::default();
        let deadlines = Deadlines::of_scan(&self.inner.scan, Instant::now());
        let containers = self
            .check(vec![found], &mut stats, None, deadlines, false)
            .await;
        self.persist(&containers, None)
            .await
            .map_err(ScanError::Persist)?;
        Ok(containers.into_iter().next())
    }

    /// Where `container`'s image is looked up: its registry instance and
    /// location, the reference as deployed, and whether it is looked up as
    /// itself (not through `crowsnest.registry.lookup.image`).
    pub async fn locate(
        &self,
        container: DiscoveredContainer,
    ) -> Result<(Target, ImageReference, bool), String> {
        ContainerPlan::new(container, &self.inner.registries)
            .await
            .located()
    }

    /// Remove a destroyed container from the store.
    pub async fn forget_container(&self, container_id: &str) -> Result<(), ScanError> {
        self.inner.store.delete_container(container_id).await?;
        Ok(())
    }

    /// The container ids `watcher` lists now, whatever its source.
    async fn listed_now(&self, watcher: &str) -> Result<std::collections::HashSet<String>, String> {
        self.inner
            .sources
            .listed_now(watcher)
            .await
            .unwrap_or_else(|| Err(format!("no watcher named `{watcher}`")))
    }

    /// A Docker connection for the configured watcher `watcher`.
    async fn connect_watcher(&self, watcher: &str) -> Result<discovery::DockerWatcher, ScanError> {
        let config = self
            .inner
            .watchers
            .get(watcher)
            .ok_or_else(|| ScanError::UnknownWatcher(watcher.to_string()))?;
        Ok(discovery::DockerWatcher::connect(watcher.to_string(), config.clone()).await?)
    }

    /// The stored containers of the watchers that could not be read, marked
    /// stale (they keep their last result and its time) and stored so.
    async fn mark_stale(&self, failed: &[WatcherError]) -> Vec<ContainerObject> {
        let mut stale = Vec::new();
        for error in failed {
            match self
                .inner
                .store
                .list_watcher_containers::<ContainerObject>(&error.watcher)
                .await
            {
                Ok(containers) => stale.extend(containers),
                Err(err) => {
                    tracing::error!(watcher = %error.watcher, "cannot read stored containers: {err}")
                }
            }
        }
        for container in &mut stale {
            container.check.stale = true;
        }
        if let Err(err) = self.inner.store.upsert_containers(&stale).await {
            tracing::error!("cannot mark containers stale: {err}");
        }
        stale
    }

    /// Stores the results (and update history), then prunes each `(watcher,
    /// ids still listed)`; the error says what could not be stored.
    async fn persist(
        &self,
        containers: &[ContainerObject],
        prune: Option<&Vec<(String, Vec<String>)>>,
    ) -> Result<(), String> {
        if let Err(err) = self.inner.store.upsert_containers(containers).await {
            tracing::error!("cannot store scan results: {err}");
            return Err(format!("cannot store scan results: {err}"));
        }
        for container in containers.iter().filter(|c| c.update_available) {
            if let Some(kind) = &container.update_kind {
                let record = UpdateRecord {
                    container_id: container.id.clone(),
                    image: container.image.reference.clone(),
                    kind: kind.kind.clone(),
                    local_value: kind.local_value.clone().unwrap_or_default(),
                    remote_value: kind.remote_value.clone().unwrap_or_default(),
                };
                if let Err(err) = self.inner.store.record_update(&record).await {
                    tracing::error!("cannot record update history: {err}");
                }
            }
        }
        for (watcher, ids) in prune.into_iter().flatten() {
            match self.inner.store.prune_containers(watcher, ids).await {
                Ok(0) => {}
                Ok(pruned) => {
                    tracing::info!(watcher = %watcher, pruned, "removed containers gone from Docker")
                }
                Err(err) => tracing::error!("cannot prune containers: {err}"),
            }
        }
        if prune.is_some() {
            // After each full scan: the history and deliveries past `[store] retention_*`.
            match self.inner.store.prune_retained().await {
                Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                    history = pruned.history,
                    deliveries = pruned.deliveries,
                    "pruned rows past the store's retention"
                ),
                Ok(_) => {}
                Err(err) => tracing::error!("cannot prune the update history: {err}"),
            }
        }
        Ok(())
    }

    /// Check discovered containers: plan, list tags once per repository,
    /// decide, resolve digests once per (repository, tag, platform). A
    /// `full` scan replaces the token plan of the registries it reads.
    async fn check(
        &self,
        discovered: Vec<DiscoveredContainer>,
        stats: &mut ScanStats,
        progress: Option<Progress>,
        deadlines: Deadlines,
        full: bool,
    ) -> Vec<ContainerObject> {
        let inner = &self.inner;
        let mut plans = Vec::with_capacity(discovered.len());
        for container in discovered {
            plans.push(ContainerPlan::new(container, &inner.registries).await);
        }
        // One token per batch of a registry's repositories, where its token
        // server takes several scopes; a full scan replaces the plan.
        inner.client.plan_token_scopes(
            plans
                .iter()
                .filter_map(ContainerPlan::target)
                .map(|target| {
                    (
                        target.location.registry_url.as_str(),
                        target.location.repository.as_str(),
                    )
                }),
            full,
        );
        // One tag listing per (registry instance, repository).
        let mut groups: BTreeMap<RepositoryKey, Vec<usize>> = BTreeMap::new();
        for (index, plan) in plans
            .iter()
            .enumerate()
            .filter(|(_, plan)| plan.follows_tag())
        {
            if let Some(target) = plan.target() {
                let key = (
                    target.instance.name.clone(),
                    target.location.registry_url.clone(),
                    target.location.repository.clone(),
                );
                groups.entry(key).or_default().push(index);
            }
        }
        stats.repositories = groups.len();
        let total = groups.len();
        let cache_hits = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let listings = self
            .per_group(&groups, &plans, |_, (instance, location)| {
                let (cache_hits, done, progress) = (&cache_hits, &done, progress.clone());
                async move {
                    let tags = deadlines
                        .lookup(
                            self.inner.client.counters().as_ref(),
                            &location.registry_url,
                            self.tags(&instance, &location, cache_hits),
                        )
                        .await
                        .map_err(|err| with_context(&instance, &location, err));
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(progress) = &progress {
                        progress(finished, total);
                    }
                    tags
                }
            })
            .await;
        stats.tag_cache_hits = cache_hits.into_inner();
        for (key, tags) in listings {
            for &index in &groups[&key] {
                plans[index].set_tags(tags.clone());
            }
        }
        // Strategy decisions (pure guest calls).
        for plan in &mut plans {
            plan.decide(&inner.strategies, &inner.scan).await;
        }
        // One digest lookup per (instance, repository, tag, platform).
        let mut lookups: BTreeMap<check::DigestKey, Vec<usize>> = BTreeMap::new();
        for (index, plan) in plans.iter().enumerate() {
            if let Some(key) = plan.digest_key() {
                lookups.entry(key).or_default().push(index);
            }
        }
        stats.digest_lookups = lookups.len();
        let resolved = self
            .per_group(&lookups, &plans, |key, (instance, location)| async move {
                let resolve = async {
                    instance
                        .plugin
                        .resolve(&location, &key.tag, None, false)
                        .await
                        .map(|info| info.digest)
                        .map_err(|err| err.to_string())
                };
                let counters = self.inner.client.counters();
                let answer = deadlines.lookup(&counters, &location.registry_url, resolve);
                answer.await.map_err(|err| {
                    format!(
                        "registry `{}`: cannot resolve tag `{}`: {err}",
                        instance.name, key.tag
                    )
                })
            })
            .await;
        for (key, digest) in resolved {
            for &index in &lookups[&key] {
                plans[index].set_remote_digest(digest.clone());
            }
        }
        plans.into_iter().map(ContainerPlan::finish).collect()
    }

    /// Runs `work` once per group (at most `[scan] concurrency` at a time)
    /// with the registry instance and location of the group's first
    /// container; a group without one gets "no registry".
    async fn per_group<K, R, F, Fut>(
        &self,
        groups: &BTreeMap<K, Vec<usize>>,
        plans: &[ContainerPlan],
        work: F,
    ) -> Vec<(K, Result<R, String>)>
    where
        K: Clone + Ord,
        F: Fn(K, GroupTarget) -> Fut,
        Fut: std::future::Future<Output = Result<R, String>>,
    {
        let jobs: Vec<(K, Option<GroupTarget>)> = groups
            .iter()
            .map(|(key, members)| {
                let target = members
                    .first()
                    .and_then(|&index| plans.get(index))
                    .and_then(ContainerPlan::target)
                    .map(|t| (t.instance.clone(), t.location.clone()));
                (key.clone(), target)
            })
            .collect();
        futures::stream::iter(jobs)
            .map(|(key, target)| {
                let answer = target.map(|target| work(key.clone(), target));
                async move {
                    let result = match answer {
                        Some(answer) => answer.await,
                        None => Err("no registry".to_string()),
                    };
                    (key, result)
                }
            })
            .buffer_unordered(self.inner.scan.concurrency.max(1))
            .collect()
            .await
    }

    async fn tags(
        &self,
        instance: &RegistryInstance,
        location: &Location,
        cache_hits: &AtomicUsize,
    ) -> Result<Arc<Vec<String>>, String> {
        let store = &self.inner.store;
        let ttl = self.inner.tag_cache_ttl;
        // Keyed by who asks too: what one set of credentials may list is
        // not what another (or an anonymous client) may.
        let cache_registry = format!("{} {}", location.registry_url, instance.credential_identity);
        if !ttl.is_zero() {
            match store
                .cached_tags(&cache_registry, &location.repository, ttl)
                .await
            {
                Ok(Some(cached)) => {
                    cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Arc::new(cached.tags));
                }
                Ok(None) => {}
                Err(err) => tracing::warn!("tag cache unreadable: {err}"),
            }
        }
        let tags = instance
            .plugin
            .list_tags(location)
            .await
            .map_err(|err| err.to_string())?;
        if !ttl.is_zero() {
            if let Err(err) = store
                .put_tags(&cache_registry, &location.repository, &tags)
                .await
            {
                tracing::warn!("cannot cache tags: {err}");
            }
        }
        Ok(Arc::new(tags))
    }
}

/// A tag listing's error, saying which registry and repository it concerns.
fn with_context(instance: &RegistryInstance, location: &Location, err: String) -> String {
    format!(
        "registry `{}`: cannot list tags of `{}`: {err}",
        instance.name, location.display
    )
}

/// Whether the image a container runs matches a user pattern (see
/// [`crowsnest_model::image_matches`]); decided before any registry is asked.
fn deployed_image_matches(container: &DiscoveredContainer, pattern: &str) -> bool {
    let Some(written) = container.resolved_image_reference() else {
        return false;
    };
    match ImageReference::parse(written) {
        Ok(parsed) => {
            crowsnest_model::image_matches(written, &parsed.name(), parsed.path(), pattern)
        }
        Err(_) => crowsnest_model::image_matches(written, "", "", pattern),
    }
}

/// A container is named by its full id, an id prefix of 12+ characters, or its name.
fn id_matches(container: &DiscoveredContainer, id: &str) -> bool {
    container.id == id || container.name == id || (id.len() >= 12 && container.id.starts_with(id))
}

// Front ends run scans on a multi-threaded runtime: the futures must be `Send`.
#[allow(dead_code)]
fn assert_scan_futures_are_send(scanner: &Scanner, request: &ScanRequest) {
    fn is_send<T: Send>(_: T) {}
    is_send(scanner.scan(request));
    is_send(scanner.refresh_container("w", "id"));
}

/// `[registries.NAME] concurrency` by the origin of the instance's `url`
/// (`https://` when it names none): the ceiling of that origin's window.
fn origin_ceilings(config: &Config) -> BTreeMap<String, usize> {
    config
        .registries
        .values()
        .filter_map(|instance| {
            let ceiling = instance.host.concurrency?.max(1);
            let url = instance.settings.get("url")?.as_str()?;
            let url = if url.contains("://") {
                url.to_owned()
            } else {
                format!("https://{url}")
            };
            let origin = url::Url::parse(&url).ok()?.origin().ascii_serialization();
            Some((origin, ceiling))
        })
        .collect()
}
