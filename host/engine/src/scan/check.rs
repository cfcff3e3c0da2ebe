//! One container's check, step by step: resolve its image and registry, take
//! its repository's tags, ask its strategy, compare digests, and build the
//! container object. Every failure becomes that container's `error.message`.

use std::sync::Arc;

use super::registries::{RegistryInstance, RegistrySet};
use crowsnest_config::ScanConfig;
use crowsnest_docker::DiscoveredContainer;
use crowsnest_model::{
    CheckInfo, CheckStatus, ContainerObject, DigestInfo, ErrorInfo, ImageInfo, RegistryInfo,
    ScanResult, TagInfo, UpdateKindInfo,
};
use crowsnest_oci::reference::ImageReference;
use crowsnest_plugin_host::registry::Location;
use crowsnest_plugin_host::strategy::{Decision, StrategyError, StrategyOptions, UpdateKind};

/// Where a container's image is looked up.
pub struct Target {
    /// The registry instance serving it.
    pub instance: Arc<RegistryInstance>,
    /// Normalised, mirror-mapped location.
    pub location: Location,
}

/// Identity of one digest lookup, shared by every container that needs it,
/// whatever its platform: the tag's own digest is compared (the one Docker
/// records for an image pulled through an index), so one manifest HEAD
/// answers it and no index is fetched (Docker Hub counts a manifest GET as
/// a pull).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DigestKey {
    instance: String,
    registry_url: String,
    repository: String,
    /// The tag to resolve.
    pub tag: String,
}

/// A container on its way through the scan.
pub struct ContainerPlan {
    container: DiscoveredContainer,
    deployed: Option<ImageReference>,
    current_tag: Option<String>,
    target: Option<Target>,
    tags: Option<Arc<Vec<String>>>,
    decision: Option<Decision>,
    watch_digest: bool,
    local_digest: Option<String>,
    remote_digest: Option<String>,
    error: Option<String>,
}

impl ContainerPlan {
    /// Parse the image, pick the registry and locate the repository.
    pub async fn new(container: DiscoveredContainer, registries: &RegistrySet) -> Self {
        let mut plan = Self {
            container,
            deployed: None,
            current_tag: None,
            target: None,
            tags: None,
            decision: None,
            watch_digest: false,
            local_digest: None,
            remote_digest: None,
            error: None,
        };
        if let Err(message) = plan.resolve(registries).await {
            plan.error = Some(message);
        }
        plan
    }

    async fn resolve(&mut self, registries: &RegistrySet) -> Result<(), String> {
        if let Some(error) = &self.container.error {
            return Err(error.clone());
        }
        let written = self.container.resolved_image_reference().ok_or_else(|| {
            format!(
                "the container runs image {} which has no repository tag, so there is nothing to look up",
                self.container.image_id
            )
        })?;
        let deployed = ImageReference::parse(written)
            .map_err(|err| format!("image reference `{written}` is invalid: {err}"))?;
        let lookup = match &self.container.options.registry_lookup_image {
            Some(label) => ImageReference::parse(label)
                .map_err(|err| format!("label `crowsnest.registry.lookup.image` = `{label}` is not a valid image reference: {err}"))?,
            None => deployed.clone(),
        };
        self.current_tag = deployed.tag_or_latest().map(str::to_string);
        self.local_digest = local_digest(&self.container.repo_digests, &deployed)
            .or_else(|| deployed.digest().map(str::to_string));
        self.deployed = Some(deployed);
        let pull_auth = self.container.pull_auth.get(lookup.domain());
        let instance = registries.select_with(&lookup, pull_auth).await?;
        let location = instance
            .plugin
            .locate(&crowsnest_plugin_host::registry::ImageRef {
                domain: lookup.domain_as_written().to_string(),
                path: lookup.written_path().to_string(),
                tag: lookup.tag().map(str::to_string),
                digest: lookup.digest().map(str::to_string),
            })
            .await
            .map_err(|err| {
                format!(
                    "registry `{}`: cannot locate `{}`: {err}",
                    instance.name,
                    lookup.name()
                )
            })?;
        self.target = Some(Target { instance, location });
        Ok(())
    }

    /// Where the deployed image is looked up (with the reference as deployed,
    /// and whether it is looked up as itself rather than through
    /// `crowsnest.registry.lookup.image`), or why it cannot be.
    pub fn located(self) -> Result<(Target, ImageReference, bool), String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let as_itself = self.container.options.registry_lookup_image.is_none();
        match (self.target, self.deployed) {
            (Some(target), Some(deployed)) => Ok((target, deployed, as_itself)),
            _ => Err("the image could not be located".to_owned()),
        }
    }

    /// Where the image is looked up, when that is known and nothing failed yet.
    pub fn target(&self) -> Option<&Target> {
        if self.error.is_some() {
            return None;
        }
        self.target.as_ref()
    }

    /// Whether the image follows a tag (an image pinned by digest alone needs no tag listing).
    pub fn follows_tag(&self) -> bool {
        self.current_tag.is_some()
    }

    /// The repository's tags, or why they could not be listed.
    pub fn set_tags(&mut self, tags: Result<Arc<Vec<String>>, String>) {
        match tags {
            Ok(tags) => self.tags = Some(tags),
            Err(message) => self.error = Some(message),
        }
    }

    /// Ask the container's strategy for its update.
    pub async fn decide(&mut self, strategies: &super::Strategies, scan: &ScanConfig) {
        if self.error.is_some() {
            return;
        }
        let (Some(tags), Some(current), Some(target)) =
            (&self.tags, &self.current_tag, &self.target)
        else {
            return;
        };
        let options = &self.container.options;
        let labels = &self.container.labels;
        let (strategy_name, named_by) = match (&options.strategy, &target.instance.strategy) {
            (Some(label), _) => (
                label.as_str(),
                format!("label `{}`", label_key(labels, "strategy")),
            ),
            (None, Some(registry)) => (
                registry.as_str(),
                format!("registry `{}` key `strategy`", target.instance.name),
            ),
            (None, None) => (scan.strategy.as_str(), "[scan] strategy".to_string()),
        };
        let strategy = match strategies.get(strategy_name).await {
            Ok(strategy) => strategy,
            Err(available) => {
                self.error = Some(format!(
                    "{named_by} names unknown strategy `{strategy_name}` (available: {available})"
                ));
                return;
            }
        };
        // Where the pattern came from, so that an error names what the user wrote.
        let (regex, regex_source) =
            match (&options.strategy_regex, &target.instance.regex, &scan.regex) {
                (Some(label), _, _) => (
                    Some(label.clone()),
                    format!("label `{}`", label_key(labels, "strategy.regex")),
                ),
                (None, Some(key), _) => (
                    Some(key.clone()),
                    format!("registry `{}` key `regex`", target.instance.name),
                ),
                (None, None, Some(key)) => (Some(key.clone()), "[scan] regex".to_string()),
                (None, None, None) => (
                    None,
                    "label `crowsnest.strategy.regex` (or a `regex` key)".to_string(),
                ),
            };
        let strategy_options = StrategyOptions {
            include: options.tag_include.clone(),
            exclude: options.tag_exclude.clone(),
            transform: options.tag_transform.clone(),
            extra: regex
                .map(|pattern| vec![("regex".to_string(), pattern)])
                .unwrap_or_default(),
        };
        match strategy.choose(current, tags, &strategy_options).await {
            Ok(decision) => {
                self.watch_digest = options.watch_digest.unwrap_or(decision.watch_digest);
                self.decision = Some(decision);
            }
            Err(StrategyError::InvalidOption { option, message }) => {
                let source = match option.as_str() {
                    "regex" => regex_source,
                    other => option_source(other, strategy_name, labels),
                };
                self.error = Some(format!("{source}: {message}"));
            }
            Err(StrategyError::Plugin(err)) => self.error = Some(err.to_string()),
        }
    }

    /// The digest lookup this container needs: digest watching on, no tag update offered.
    pub fn digest_key(&self) -> Option<DigestKey> {
        let target = self.target()?;
        let decision = self.decision.as_ref()?;
        if !self.watch_digest || decision.offer.is_some() {
            return None;
        }
        Some(DigestKey {
            instance: target.instance.name.clone(),
            registry_url: target.location.registry_url.clone(),
            repository: target.location.repository.clone(),
            tag: self.current_tag.clone()?,
        })
    }

    /// The remote digest of the current tag, or why it could not be resolved.
    pub fn set_remote_digest(&mut self, digest: Result<String, String>) {
        match digest {
            Ok(digest) => {
                // An image can hold several digests of one repository (pushed
                // as a platform manifest, pulled through an index, or pulled
                // through two tags whose indexes share it): it is current when
                // any of them is the tag's digest, not only the first listed.
                let held = self.deployed.as_ref().is_some_and(|deployed| {
                    local_digests(&self.container.repo_digests, deployed)
                        .any(|local| local == digest)
                });
                if held {
                    self.local_digest = Some(digest.clone());
                }
                self.remote_digest = Some(digest);
            }
            Err(message) => self.error = Some(message),
        }
    }

    /// What the comparison of a followed tag established (no tag offer was made).
    /// "Up to date" needs a comparison: the strategy read the tag as a version
    /// and found nothing newer, or both digests were known and equal.
    fn compared(&self) -> CheckInfo {
        let version_tag = self.decision.as_ref().is_some_and(|d| d.version_tag);
        if self.decision.is_none() {
            return CheckInfo::not_checked("no strategy decision was made");
        }
        if self.watch_digest {
            match (&self.local_digest, &self.remote_digest) {
                (Some(local), Some(remote)) if local != remote => {
                    return CheckInfo::new(CheckStatus::Update)
                }
                (Some(_), Some(_)) => return CheckInfo::new(CheckStatus::UpToDate),
                (None, _) if !version_tag => {
                    return CheckInfo::not_checked(
                        "the local image has no registry digest (built or loaded locally), so the tag's digest cannot be compared",
                    )
                }
                (Some(_), None) if !version_tag => {
                    return CheckInfo::not_checked("the tag's remote digest was not looked up")
                }
                _ => {}
            }
        }
        if version_tag {
            CheckInfo::new(CheckStatus::UpToDate)
        } else {
            CheckInfo::not_checked(
                "the tag is not a version and digest watching is off, so nothing was compared",
            )
        }
    }

    /// The container object.
    pub fn finish(self) -> ContainerObject {
        let compared = self.compared();
        let container = self.container;
        let (registry, name) = match &self.target {
            Some(target) => (
                RegistryInfo {
                    name: target.instance.name.clone(),
                    url: format!("{}/v2", target.location.registry_url.trim_end_matches('/')),
                    lookup_image: target.location.display.clone(),
                },
                target.location.repository.clone(),
            ),
            None => (
                RegistryInfo::default(),
                self.deployed
                    .as_ref()
                    .map(|r| r.path().to_string())
                    .unwrap_or_default(),
            ),
        };
        let version_tag = self.decision.as_ref().is_some_and(|d| d.version_tag);
        let mut object = ContainerObject {
            display_name: container
                .options
                .display_name
                .clone()
                .unwrap_or_else(|| container.name.clone()),
            id: container.id.clone(),
            name: container.name.clone(),
            status: container.status.clone(),
            watcher: container.watcher.clone(),
            image: ImageInfo {
                id: container.image_id.clone(),
                registry,
                name,
                tag: TagInfo {
                    value: self.current_tag.clone(),
                    semver: version_tag,
                },
                digest: DigestInfo {
                    watch: self.watch_digest,
                    value: self.local_digest.clone(),
                    repo: self.remote_digest.clone(),
                },
                architecture: container.architecture.clone().unwrap_or_default(),
                os: container.os.clone().unwrap_or_default(),
                variant: container.variant.clone(),
                created: container.image_created.clone(),
                reference: container.image_reference.clone(),
            },
            result: None,
            update_available: false,
            update_kind: None,
            error: None,
            labels: container.labels.clone(),
            kind: (!container.kind.is_container()).then(|| container.kind.as_str().to_owned()),
            owner: container.owner.clone(),
            check: CheckInfo::default(),
        };
        if let Some(message) = self.error {
            object.error = Some(ErrorInfo { message });
            object.check = CheckInfo::new(CheckStatus::Error);
            return object;
        }
        object.check.checked_at = Some(chrono::Utc::now().to_rfc3339());
        let template = container.options.link_template.as_deref();
        let offer = self.decision.as_ref().and_then(|d| d.offer.as_ref());
        if let Some(offer) = offer {
            object.update_available = true;
            object.update_kind = Some(UpdateKindInfo {
                kind: "tag".into(),
                local_value: self.current_tag.clone(),
                remote_value: Some(offer.tag.clone()),
                semver_diff: match offer.kind {
                    UpdateKind::Major
                    | UpdateKind::Minor
                    | UpdateKind::Patch
                    | UpdateKind::Prerelease => Some(offer.kind.as_str().into()),
                    UpdateKind::Digest | UpdateKind::Unknown => None,
                },
            });
            object.result = Some(ScanResult {
                link: template.map(|t| link_from_template(t, &offer.tag)),
                tag: Some(offer.tag.clone()),
                digest: None,
                created: None,
            });
            object.check.status = CheckStatus::Update;
            return object;
        }
        let Some(current) = &self.current_tag else {
            object.check = CheckInfo {
                checked_at: object.check.checked_at.take(),
                ..CheckInfo::not_checked("pinned by digest: no tag to follow")
            };
            return object;
        };
        object.check = CheckInfo {
            checked_at: object.check.checked_at.take(),
            ..compared
        };
        if object.check.status == CheckStatus::Update {
            object.update_available = true;
            object.update_kind = Some(UpdateKindInfo {
                kind: "digest".into(),
                local_value: self.local_digest.clone(),
                remote_value: self.remote_digest.clone(),
                semver_diff: None,
            });
        }
        object.result = Some(ScanResult {
            tag: Some(current.clone()),
            digest: self.remote_digest.clone(),
            link: template.map(|t| link_from_template(t, current)),
            created: None,
        });
        object
    }
}

/// Which label an option other than `regex` came from, for error messages.
fn option_source(
    option: &str,
    strategy: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> String {
    match option {
        "include" => format!("label `{}`", label_key(labels, "tag.include")),
        "exclude" => format!("label `{}`", label_key(labels, "tag.exclude")),
        "transform" => format!("label `{}`", label_key(labels, "tag.transform")),
        other => format!("option `{other}` of strategy `{strategy}`"),
    }
}

/// The label key the container used for `suffix`: `crowsnest.SUFFIX`, or its
/// `wud.SUFFIX` twin when only that one is set (the `crowsnest.*` label wins).
fn label_key(labels: &std::collections::BTreeMap<String, String>, suffix: &str) -> String {
    let crowsnest = format!("crowsnest.{suffix}");
    let wud = format!("wud.{suffix}");
    if !labels.contains_key(&crowsnest) && labels.contains_key(&wud) {
        wud
    } else {
        crowsnest
    }
}

/// The local digest of `image`: its first `RepoDigests` entry for the same repository.
fn local_digest(repo_digests: &[String], image: &ImageReference) -> Option<String> {
    local_digests(repo_digests, image).next()
}

/// Every `RepoDigests` digest of `image`'s repository.
fn local_digests<'a>(
    repo_digests: &'a [String],
    image: &ImageReference,
) -> impl Iterator<Item = String> + 'a {
    let wanted = image.name();
    repo_digests.iter().filter_map(move |entry| {
        let parsed = ImageReference::parse(entry).ok()?;
        (parsed.name() == wanted)
            .then(|| parsed.digest().map(str::to_string))
            .flatten()
    })
}

/// Expand a `crowsnest.link.template`: `${tag}`/`${raw}`/`${original}` is the
/// tag, `${major}`, `${minor}`, `${patch}` its first numeric parts.
pub fn link_from_template(template: &str, tag: &str) -> String {
    let numbers: Vec<&str> = tag
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let part = |i: usize| numbers.get(i).copied().unwrap_or("");
    template
        .replace("${tag}", tag)
        .replace("${raw}", tag)
        .replace("${original}", tag)
        .replace("${major}", part(0))
        .replace("${minor}", part(1))
        .replace("${patch}", part(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_templates_expand() {
        assert_eq!(
            link_from_template(
                "https://x/releases/tag/v${major}.${minor}.${patch}",
                "1.26.3-alpine"
            ),
            "https://x/releases/tag/v1.26.3"
        );
        assert_eq!(
            link_from_template("https://x/${raw}", "v2.0"),
            "https://x/v2.0"
        );
    }

    #[test]
    fn errors_name_the_label_the_container_used() {
        let labels: std::collections::BTreeMap<String, String> = [
            ("wud.tag.exclude", "["),
            ("wud.tag.include", "a"),
            ("crowsnest.tag.include", "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            option_source("exclude", "semver", &labels),
            "label `wud.tag.exclude`"
        );
        assert_eq!(
            option_source("include", "semver", &labels),
            "label `crowsnest.tag.include`"
        );
        assert_eq!(
            option_source("transform", "semver", &labels),
            "label `crowsnest.tag.transform`"
        );
    }

    #[test]
    fn local_digest_matches_the_repository() {
        let image = ImageReference::parse("127.0.0.1:5001/team/app:1.0").unwrap();
        let digests = vec![
            "127.0.0.1:5001/other/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
            "127.0.0.1:5001/team/app@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_string(),
        ];
        assert_eq!(
            local_digest(&digests, &image).as_deref(),
            Some("sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
        );
        let hub = ImageReference::parse("nginx:1.25").unwrap();
        let hub_digests = vec![
            "nginx@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
                .to_string(),
        ];
        assert!(local_digest(&hub_digests, &hub).is_some());
    }
}
