//! The sections read above this crate: `[scan]`, `[server]`, and the host keys
//! of `[registries.NAME]` and `[triggers.NAME]`. (The sections read below it
//! — `[plugins]`, `[store]`, `[watchers.NAME]` — are owned by the crates that
//! use them.)

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::channels::{MqttConfig, SmtpConfig};
use crate::instance::HostKeys;

/// The strategy used when nothing names one.
pub const DEFAULT_STRATEGY: &str = "semver";

/// `[scan]`: defaults of every scan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Default strategy.
    pub strategy: String,
    /// Default pattern of the regex strategy.
    pub regex: Option<String>,
    /// Repositories looked up at once (each registry also bounds its own requests).
    pub concurrency: usize,
    /// Most requests in flight per registry: the ceiling of its adaptive
    /// window (Docker Hub and GHCR stay at 8 or less).
    pub registry_concurrency: usize,
    /// Requests in flight per registry at first; the window grows from there
    /// while the registry keeps up and halves on `429`/`503`.
    pub registry_concurrency_start: usize,
    /// Per-request timeout towards registries, seconds.
    pub registry_timeout: u64,
    /// Wall-clock bound of one repository lookup (a tag listing with all its
    /// pages and retries, or one digest lookup), seconds.
    pub lookup_timeout_secs: u64,
    /// Wall-clock bound of a scan's registry work, seconds: lookups not done
    /// by then fail with a timeout error and the scan completes.
    pub scan_timeout_secs: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            strategy: DEFAULT_STRATEGY.to_string(),
            regex: None,
            concurrency: 16,
            registry_concurrency: 32,
            registry_concurrency_start: 4,
            registry_timeout: 30,
            lookup_timeout_secs: 180,
            scan_timeout_secs: 900,
        }
    }
}

/// `[server]`: the daemon's listeners, token and background work.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP address.
    pub listen: SocketAddr,
    /// gRPC address; None = no gRPC server (`grpc_listen = ""` or `"off"`).
    #[serde(deserialize_with = "optional_address")]
    pub grpc_listen: Option<SocketAddr>,
    /// Bearer token every route but `/health` requires (from `token` or `token_file`).
    #[serde(deserialize_with = "non_empty_token")]
    pub token: Option<String>,
    /// Follow Docker events to refresh single containers.
    pub events: bool,
    /// Quiet time after a container's last event before it is refreshed.
    #[serde(rename = "event_debounce_ms", deserialize_with = "millis")]
    pub event_debounce: Duration,
    /// Scan every watcher at start-up.
    pub scan_on_start: bool,
    /// How long shutdown waits for scans and deliveries in flight.
    #[serde(rename = "shutdown_grace_secs", deserialize_with = "seconds")]
    pub shutdown_grace: Duration,
    /// Wall-clock bound of one API request (HTTP and gRPC; the event stream
    /// excepted); keep it above `[scan] scan_timeout_secs` so a synchronous
    /// rescan can answer.
    #[serde(rename = "request_timeout_secs", deserialize_with = "seconds")]
    pub request_timeout: Duration,
    /// After a restart, how long an agent whose containers are stored may
    /// take to reconnect before they are marked stale.
    #[serde(rename = "agent_grace_secs", deserialize_with = "seconds")]
    pub agent_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            grpc_listen: Some(SocketAddr::from(([127, 0, 0, 1], 3001))),
            token: None,
            events: true,
            event_debounce: Duration::from_millis(500),
            scan_on_start: true,
            shutdown_grace: Duration::from_secs(20),
            request_timeout: Duration::from_secs(960),
            agent_grace: Duration::from_secs(60),
        }
    }
}

fn optional_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "" | "off" => Ok(None),
        address => address.parse().map(Some).map_err(|error| {
            serde::de::Error::custom(format!("`{address}` is not an IP:port address: {error}"))
        }),
    }
}

/// `[agent]`: `crowsnest agent`, which streams one local engine's containers
/// and events to a central `crowsnest serve` over gRPC.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// gRPC address of the central server, `http://host:3001`.
    pub server: Option<String>,
    /// The server's `[server] token` (from `token` or `token_file`).
    #[serde(deserialize_with = "non_empty_token")]
    pub token: Option<String>,
    /// Watcher name the server stores this engine's containers under
    /// (default: the host name).
    pub name: Option<String>,
    /// Which `[watchers.NAME]` is the local engine (default: the only one, or
    /// the local Docker socket).
    pub watcher: Option<String>,
    /// Only containers carrying this label (`key=value`, or `key`) are sent.
    pub label: Option<String>,
}

fn non_empty_token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let token = String::deserialize(d)?;
    if token.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "is empty (remove it to disable authentication)",
        ));
    }
    Ok(Some(token))
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// The host keys of `[registries.NAME]`; the rest goes to the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RegistryOptions {
    /// Strategy for this registry's images.
    pub strategy: Option<String>,
    /// Pattern of the regex strategy for this registry's images.
    pub regex: Option<String>,
    /// Hosts the plugin may reach besides its `url`'s.
    pub allowed_hosts: Vec<String>,
    /// Requests in flight to this registry.
    pub concurrency: Option<usize>,
    /// Let credentials travel over plain `http://` to this registry (and its
    /// token realm) although its host is not loopback.
    pub insecure: bool,
}

impl HostKeys for RegistryOptions {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        crowsnest_oci::HostAllowList::new(&self.allowed_hosts)
            .map(drop)
            .map_err(|message| ("allowed_hosts", message))
    }
}

/// Which updates a trigger fires for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Threshold {
    /// Every update.
    All,
    /// Major, minor and patch (every update, like WUD's `major`).
    Major,
    /// Minor and patch, not major.
    Minor,
    /// Patch (and prerelease) only.
    Patch,
    /// Major only.
    MajorOnly,
    /// Minor only.
    MinorOnly,
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Self::All),
            "major" => Ok(Self::Major),
            "minor" => Ok(Self::Minor),
            "patch" => Ok(Self::Patch),
            "major-only" => Ok(Self::MajorOnly),
            "minor-only" => Ok(Self::MinorOnly),
            other => Err(format!(
                "`{other}` is not a threshold (all, major, minor, patch, major-only, minor-only)"
            )),
        }
    }
}

impl Threshold {
    /// Whether an update of `kind` (`tag`/`digest`/`unknown`) with `semver_diff` reaches it.
    pub fn reached(self, kind: &str, semver_diff: Option<&str>) -> bool {
        // Like WUD: only semver tag updates are graded; anything else always passes.
        let Some(diff) = semver_diff.filter(|_| kind == "tag") else {
            return true;
        };
        match self {
            Self::All | Self::Major => true,
            Self::Minor => diff != "major",
            Self::Patch => diff != "major" && diff != "minor",
            Self::MajorOnly => diff == "major",
            Self::MinorOnly => diff == "minor",
        }
    }
}

/// How deliveries are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One delivery per container.
    Simple,
    /// One delivery per scan with every qualifying container.
    Batch,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "simple" => Ok(Self::Simple),
            "batch" => Ok(Self::Batch),
            _ => Err("must be `simple` or `batch`".into()),
        }
    }
}

/// Reads a value through its `FromStr`, so config values are case-insensitive
/// and their errors say what is accepted.
pub(crate) fn from_text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// The host keys of `[triggers.NAME]` (never passed to the plugin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    rename_all(serialize = "camelCase", deserialize = "snake_case")
)]
pub struct TriggerOptions {
    /// Which updates fire it.
    #[serde(deserialize_with = "from_text")]
    pub threshold: Threshold,
    /// Grouping.
    #[serde(deserialize_with = "from_text")]
    pub mode: Mode,
    /// Deliver a given result only once.
    pub once: bool,
    /// Fire after scans (false: only through the API).
    pub auto: bool,
    /// Extra attempts after a failed delivery.
    pub retries: u32,
    /// Wait before the first retry, doubled for each later one.
    #[serde(
        rename(serialize = "retryBackoffMs", deserialize = "retry_backoff_ms"),
        serialize_with = "serialize_millis",
        deserialize_with = "millis"
    )]
    pub retry_backoff: Duration,
    /// Hosts the plugin may reach besides its `url`'s.
    pub allowed_hosts: Vec<String>,
    /// Title template of a simple-mode message (one container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body template of a simple-mode message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Title template of a batch-mode message (every container of a scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_title: Option<String>,
    /// Body template of a batch-mode message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_body: Option<String>,
    /// `[triggers.NAME.smtp]`: the mail server lent to the plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    /// `[triggers.NAME.mqtt]`: the MQTT broker lent to the plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConfig>,
}

fn serialize_millis<S: serde::Serializer>(
    value: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_millis() as u64)
}

impl Default for TriggerOptions {
    fn default() -> Self {
        Self {
            threshold: Threshold::All,
            mode: Mode::Simple,
            once: true,
            auto: true,
            retries: 3,
            retry_backoff: Duration::from_millis(1000),
            allowed_hosts: Vec::new(),
            title: None,
            body: None,
            batch_title: None,
            batch_body: None,
            smtp: None,
            mqtt: None,
        }
    }
}

/// `[actions.NAME]`: an update action — pull the offered image and replace
/// the container (or Swarm service) with the same configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    rename_all(serialize = "camelCase", deserialize = "snake_case")
)]
pub struct ActionConfig {
    /// Which updates it acts on.
    #[serde(deserialize_with = "from_text")]
    pub threshold: Threshold,
    /// `simple`: each container pulled and replaced in turn; `batch`: every
    /// image of the run pulled first, then the containers replaced.
    #[serde(deserialize_with = "from_text")]
    pub mode: Mode,
    /// Act after every scan (false: only when asked through the API).
    pub auto: bool,
    /// Cron expression of the minutes automatic updates may run in (None: any time).
    pub window: Option<String>,
    /// Only containers labelled `crowsnest.update=true` (else every watched
    /// container not labelled `false`).
    pub opt_in: bool,
    /// Report what would be done and touch nothing.
    pub dry_run: bool,
    /// Minimum age of the offered image (from its creation time), seconds.
    pub cooldown_secs: u64,
    /// Longest wait for a replacement to run (and be healthy), seconds.
    pub timeout_secs: u64,
    /// Without a health check: how long a replacement must run without a restart, seconds.
    pub settle_secs: u64,
    /// Grace period of `docker stop`, seconds (None: the container's own, else 10).
    pub stop_timeout_secs: Option<u64>,
    /// Remove the old image afterwards when no container uses it.
    pub remove_old_image: bool,
    /// Rewrite the service's `image:` in the compose file (after a backup).
    pub compose_rewrite: bool,
}

impl Default for ActionConfig {
    fn default() -> Self {
        Self {
            threshold: Threshold::All,
            mode: Mode::Simple,
            auto: false,
            window: None,
            opt_in: false,
            dry_run: false,
            cooldown_secs: 0,
            timeout_secs: 120,
            settle_secs: 5,
            stop_timeout_secs: None,
            remove_old_image: false,
            compose_rewrite: false,
        }
    }
}

impl HostKeys for TriggerOptions {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.retries > 20 {
            return Err(("retries", "must be an integer from 0 to 20".into()));
        }
        if let Some(smtp) = &self.smtp {
            smtp.validate()?;
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate()?;
        }
        crowsnest_oci::HostAllowList::new(&self.allowed_hosts)
            .map(drop)
            .map_err(|message| ("allowed_hosts", message))
    }
}
