//! crowsnest-model: the container object of the external JSON contract (a
//! What's Up Docker-compatible superset, see `docs/contracts.md`), and the scan
//! request/answer types every front end (CLI, HTTP, gRPC) shares.
//!
//! Must not depend on any other crowsnest crate: these are plain data types,
//! and their OpenAPI schemas are derived from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One watched container and the result of its latest check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Container)]
pub struct ContainerObject {
    /// Docker container id.
    pub id: String,
    /// Container name (no leading `/`).
    pub name: String,
    /// `crowsnest.display.name` label, else the name.
    pub display_name: String,
    /// Docker status (`running`, `exited`, `created`, …).
    pub status: String,
    /// Watcher (Docker host) it was found on.
    pub watcher: String,
    /// The image it runs and where that image is looked up.
    pub image: ImageInfo,
    /// What the registry offers (null when nothing was looked up).
    pub result: Option<ScanResult>,
    /// An update is available (never true when `error` is set).
    pub update_available: bool,
    /// What kind of update (null when none).
    pub update_kind: Option<UpdateKindInfo>,
    /// Why the check failed (null when it did not).
    pub error: Option<ErrorInfo>,
    /// All container labels.
    pub labels: BTreeMap<String, String>,
    /// `service` for a Swarm service (a watcher with `swarm = true`), `pod`
    /// for a Kubernetes Pod's container; absent for a Docker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The workload that owns it, `Kind/name` (a Pod's Deployment,
    /// StatefulSet or DaemonSet); absent when none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the latest check established: `up-to-date` only where a
    /// comparison was made (a crowsnest extension of the WUD shape).
    #[serde(default)]
    pub check: CheckInfo,
}

/// The outcome of a container's check, in one word, with the reason when
/// nothing was compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// A tag or digest comparison was made and found nothing newer.
    UpToDate,
    /// A newer tag or digest is offered.
    Update,
    /// Nothing was compared (see `reason`): never read as up to date.
    #[default]
    NotChecked,
    /// The check failed (see the container's `error`).
    Error,
}

impl CheckStatus {
    /// The status as written in JSON, tables and metrics (`up-to-date`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up-to-date",
            Self::Update => "update",
            Self::NotChecked => "not-checked",
            Self::Error => "error",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's check status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckInfo {
    /// `up-to-date`, `update`, `not-checked` or `error`.
    pub status: CheckStatus,
    /// Why nothing was compared (`not-checked`), e.g. "pinned by digest".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The result is the last one known: this check could not reach the
    /// container's watcher.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// When the result was last established by a successful check (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
}

impl CheckInfo {
    /// A status without a reason.
    pub fn new(status: CheckStatus) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// `not-checked`, because of `reason`.
    pub fn not_checked(reason: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::NotChecked,
            reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// The status text for people: `up to date`, `update`, `not checked: REASON`,
    /// `error`, with `(stale since TIME)` when the watcher was unreachable.
    pub fn describe(&self) -> String {
        let mut text = match (&self.status, &self.reason) {
            (CheckStatus::NotChecked, Some(reason)) => format!("not checked: {reason}"),
            (status, _) => status.as_str().replace('-', " "),
        };
        text.push_str(&self.stale_note());
        text
    }

    /// ` (stale: watcher unreachable, last checked TIME)` for a stale result, else empty.
    pub fn stale_note(&self) -> String {
        if !self.stale {
            return String::new();
        }
        format!(
            " (stale: watcher unreachable, last checked {})",
            self.checked_at.as_deref().unwrap_or("never")
        )
    }
}

/// The image a container runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    /// Local image id (`sha256:…`).
    pub id: String,
    /// Where it is looked up.
    pub registry: RegistryInfo,
    /// Repository path as looked up, e.g. `library/nginx`.
    pub name: String,
    /// The deployed tag.
    pub tag: TagInfo,
    /// Digest watching state.
    pub digest: DigestInfo,
    /// CPU architecture of the local image.
    pub architecture: String,
    /// OS of the local image.
    pub os: String,
    /// CPU variant, when the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time of the local image.
    pub created: Option<String>,
    /// The image reference as deployed (`docker run IMAGE`).
    #[serde(default)]
    pub reference: String,
}

/// Registry an image is looked up on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryInfo {
    /// Registry instance name (`[registries.NAME]`), empty when none was found.
    pub name: String,
    /// API base, e.g. `https://registry-1.docker.io/v2`.
    pub url: String,
    /// The image as looked up, e.g. `docker.io/library/nginx` (differs for mirrors).
    pub lookup_image: String,
}

/// The deployed tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagInfo {
    /// Tag value; null for an image pinned by digest only.
    pub value: Option<String>,
    /// The strategy reads it as a version.
    pub semver: bool,
}

/// Digest watching of the deployed tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DigestInfo {
    /// Digest watching is on for this container.
    pub watch: bool,
    /// Local digest (from `RepoDigests`, as the engine stores it).
    pub value: Option<String>,
    /// Remote digest of the same tag, when looked up.
    pub repo: Option<String>,
}

/// What the registry offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResult {
    /// Offered tag (the current one when only the digest changed).
    pub tag: Option<String>,
    /// Remote digest, when looked up.
    pub digest: Option<String>,
    /// Release-notes link from `crowsnest.link.template`.
    pub link: Option<String>,
    /// Creation time of the remote image, when looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Kind of update: `tag`, `digest` or `unknown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateKindInfo {
    /// `tag`, `digest` or `unknown`.
    pub kind: String,
    /// Current value (tag or digest).
    pub local_value: Option<String>,
    /// Offered value (tag or digest).
    pub remote_value: Option<String>,
    /// `major`, `minor`, `patch`, `prerelease` or null.
    pub semver_diff: Option<String>,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorInfo {
    /// What went wrong, in words, naming the registry/plugin/label concerned.
    pub message: String,
}

impl ContainerObject {
    /// Whether this container's image matches a user pattern: the repository
    /// with or without registry host and port, optionally with a tag
    /// (`nginx`, `library/nginx`, `docker.io/library/nginx`, `127.0.0.1:5000/team/app`,
    /// `team/app:1.2`).
    pub fn matches_image(&self, pattern: &str) -> bool {
        image_matches(
            &self.image.reference,
            &self.image.registry.lookup_image,
            &self.image.name,
            pattern,
        )
    }
}

/// See [`ContainerObject::matches_image`]; `reference` is the image as deployed,
/// `lookup` the looked-up `domain/path`, `path` the repository path.
pub fn image_matches(reference: &str, lookup: &str, path: &str, pattern: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    let (pattern_name, pattern_tag) = split_tag(pattern);
    let (deployed_name, deployed_tag) = split_tag(reference.split('@').next().unwrap_or(reference));
    if let Some(wanted) = pattern_tag {
        if deployed_tag.unwrap_or("latest") != wanted {
            return false;
        }
    }
    let short_path = path.strip_prefix("library/").unwrap_or(path);
    [deployed_name, lookup, path, short_path]
        .iter()
        .any(|candidate| {
            !candidate.is_empty()
                && (*candidate == pattern_name
                    || (pattern_name.contains('/')
                        && candidate.ends_with(&format!("/{pattern_name}"))))
        })
}

/// Split `name:tag` where the colon is after the last `/` (so `host:5000/x` keeps its port).
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(colon) => (
            &reference[..slash + colon],
            Some(&reference[slash + colon + 1..]),
        ),
        None => (reference, None),
    }
}

/// What to scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScanRequest {
    /// Image patterns (see [`ContainerObject::matches_image`]); empty = every container.
    #[serde(default)]
    pub images: Vec<String>,
    /// Only these container ids; empty = every container.
    #[serde(default)]
    pub container_ids: Vec<String>,
    /// Only these watchers (Docker hosts); empty = every watcher.
    #[serde(default)]
    pub watchers: Vec<String>,
}

/// The answer of one scan.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Report)]
pub struct ScanReport {
    /// Every container scanned, with its result or error.
    pub containers: Vec<ContainerObject>,
    /// Watchers that could not be read (their stored containers are listed
    /// with their last result, marked stale).
    pub watcher_errors: Vec<WatcherError>,
    /// Figures about the scan.
    pub stats: ScanStats,
    /// The results could not be stored (the scan failed as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

impl ScanReport {
    /// Whether the scan failed as a whole or in part: a watcher could not be
    /// read, or the results could not be stored.
    pub fn failed(&self) -> bool {
        !self.watcher_errors.is_empty() || self.store_error.is_some()
    }
}

/// A watcher that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatcherError {
    /// Watcher name.
    pub watcher: String,
    /// What went wrong.
    pub message: String,
}

/// Figures about one scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanStats {
    /// Containers checked.
    pub containers: usize,
    /// Distinct repositories looked up.
    pub repositories: usize,
    /// Tag listings served from the store's cache.
    pub tag_cache_hits: usize,
    /// Digest lookups made.
    pub digest_lookups: usize,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// What an update action did (or would do, or refused to do) to one
/// container or Swarm service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOutcome {
    /// The action (`[actions.NAME]`).
    pub action: String,
    /// Watcher (Docker host).
    pub watcher: String,
    /// Container (or service) name.
    pub name: String,
    /// `service` for a Swarm service; absent for a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Id before the update.
    pub container_id: String,
    /// Id of the replacement, when one runs (a service keeps its id).
    pub new_container_id: Option<String>,
    /// The image reference it ran.
    pub from_image: String,
    /// The image reference it runs, would run, or was refused.
    pub to_image: String,
    /// `updated`, `handed-over` (crowsnest's own container), `dry-run`,
    /// `rolled-back`, `failed` or `skipped`.
    pub status: String,
    /// Why it failed, rolled back or was skipped; notes on an update.
    pub message: Option<String>,
    /// Containers recreated with it (shared network, links).
    #[serde(default)]
    pub dependents: Vec<String>,
    /// What was done (or, in a dry run, would be done), step by step.
    #[serde(default)]
    pub steps: Vec<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
}

/// The answer of an update run: every container considered, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReport {
    /// Replaced and proven (and crowsnest's own container, handed over).
    pub updated: Vec<UpdateOutcome>,
    /// The replacement failed; the old container runs again as it was.
    pub rolled_back: Vec<UpdateOutcome>,
    /// Failed before anything changed, or the rollback itself failed.
    pub failed: Vec<UpdateOutcome>,
    /// Not updated, with the reason (no update, label, threshold, cooldown, in progress).
    pub skipped: Vec<UpdateOutcome>,
    /// Dry run: what would be done.
    pub dry_run: Vec<UpdateOutcome>,
    /// Watchers that could not be read by the scan before the update.
    #[serde(default)]
    pub watcher_errors: Vec<WatcherError>,
}

impl UpdateReport {
    /// Files `outcome` under its status.
    pub fn push(&mut self, outcome: UpdateOutcome) {
        let list = match outcome.status.as_str() {
            "updated" | "handed-over" => &mut self.updated,
            "rolled-back" => &mut self.rolled_back,
            "dry-run" => &mut self.dry_run,
            "skipped" => &mut self.skipped,
            _ => &mut self.failed,
        };
        list.push(outcome);
    }

    /// Every outcome, in the order: updated, rolled back, failed, skipped, dry run.
    pub fn outcomes(&self) -> impl Iterator<Item = &UpdateOutcome> {
        self.updated
            .iter()
            .chain(&self.rolled_back)
            .chain(&self.failed)
            .chain(&self.skipped)
            .chain(&self.dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_patterns_match_with_or_without_registry_host() {
        let hub = |p| image_matches("nginx:1.25", "docker.io/library/nginx", "library/nginx", p);
        assert!(hub("nginx"));
        assert!(hub("library/nginx"));
        assert!(hub("docker.io/library/nginx"));
        assert!(hub("nginx:1.25"));
        assert!(!hub("nginx:1.26"));
        assert!(!hub("ginx"));
        assert!(!hub("redis"));
        let private = |p| {
            image_matches(
                "127.0.0.1:5000/team/app:2.0",
                "127.0.0.1:5000/team/app",
                "team/app",
                p,
            )
        };
        assert!(private("team/app"));
        assert!(private("127.0.0.1:5000/team/app"));
        assert!(private("127.0.0.1:5000/team/app:2.0"));
        assert!(
            !private("app"),
            "a bare last component does not match a nested repository"
        );
        assert!(!private("other/app"));
        assert!(!private("127.0.0.1:5001/team/app"));
    }
}
