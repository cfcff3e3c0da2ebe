//! crowsnest-oci: image references and the OCI distribution v2 client.
//!
//! Responsibility: everything about talking to a container registry that is
//! the same for every vendor, in three layers — `transport` (send, per-origin
//! permits, redirects, timeouts, `429`), `auth` (challenges, tokens,
//! credential policy) and `protocol` (tags, manifests, platforms, blobs) — plus
//! the image reference grammar ([`reference`]). Registry plugins reach it
//! through the plugin host's `oci-client` capability.
//!
//! Must not depend on any other crowsnest crate: it is the bottom layer.
//! Credentials only ever go to the registry origin and the token realm it
//! names; redirects are followed by hand, without credentials when they leave
//! the registry origin.

mod auth;
mod client;
pub mod docker_config;
mod errors;
mod headers;
mod protocol;
pub mod reference;
mod target;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use url::Url;

pub use auth::{
    is_loopback_url, parse_challenges, AccessPolicy, AllowAll, AuthChallenge, HostAllowList,
    SCOPES_PER_TOKEN,
};
pub use client::RegistryClient;
pub use errors::{error_from_response_body, NotFoundMeans};
pub use headers::{next_link, parse_link_header, parse_retry_after, LinkValue};
pub use protocol::manifest::{
    is_index_media_type, select_platform, EntryPlatform, IndexEntry, MANIFEST_ACCEPT,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};
pub use transport::{RateLimit, RequestCount, RequestCounters, RequestKind, Signal, WindowLimits};

/// Default cap on a manifest or index body.
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Default cap on one tag-list page, and on all pages of one listing together.
pub const DEFAULT_MAX_TAG_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Default cap on an image config blob.
pub const DEFAULT_MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;
/// Default cap on a token server response.
pub const DEFAULT_MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;
/// Default ceiling of the requests in flight to one registry origin.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS_PER_REGISTRY: usize = 32;
/// Default starting window of requests in flight to one registry origin.
pub const DEFAULT_INITIAL_CONCURRENT_REQUESTS_PER_REGISTRY: usize = 4;
/// Starting window of a public registry (Docker Hub, GHCR): gentle.
pub const PUBLIC_REGISTRY_INITIAL_REQUESTS: usize = 2;
/// Ceiling of a public registry's window, below the configured one.
pub const PUBLIC_REGISTRY_MAX_REQUESTS: usize = 8;
/// Hosts of the public registries and their token services, which share
/// rate limits among many clients and start with a small window.
pub const PUBLIC_REGISTRY_HOSTS: &[&str] = &[
    "registry-1.docker.io",
    "index.docker.io",
    "docker.io",
    "auth.docker.io",
    "ghcr.io",
];
/// Token lifetime assumed when the token server gives no `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Where an image is looked up (WIT `registry-types.location`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Registry base URL without `/v2`, e.g. `https://registry-1.docker.io`.
    /// `http://` only when written so; a URL without a scheme means `https://`.
    pub registry_url: String,
    /// Repository on that registry, e.g. `library/nginx`.
    pub repository: String,
}

impl Location {
    /// Builds a location from a registry URL and a repository.
    pub fn new(registry_url: impl Into<String>, repository: impl Into<String>) -> Self {
        Self {
            registry_url: registry_url.into(),
            repository: repository.into(),
        }
    }
}

/// Credentials to answer the registry's challenge with (WIT `registry-types.auth`).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No credentials: anonymous tokens where the registry gives them.
    #[default]
    Anonymous,
    /// Username and password, for Basic auth or to fetch a Bearer token.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A ready Bearer token, sent as is to the registry.
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// A platform to select from an image index (WIT `registry-types.platform`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// CPU architecture, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU variant, e.g. `v7` for `arm`.
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a platform without variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            architecture: architecture.into(),
            os: os.into(),
            variant: None,
        }
    }

    /// The same platform with a variant.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Result of resolving a tag or digest (WIT `registry-types.manifest-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// Digest of what the reference points to (index or manifest), as the registry reports it.
    pub digest: String,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Digest of the manifest selected for the platform, when the reference is an index.
    pub platform_digest: Option<String>,
    /// Image creation time (RFC 3339) from the config blob, when asked for.
    pub created: Option<String>,
}

/// Typed registry failures (WIT `registry-types.registry-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The repository is not known to the registry (`NAME_UNKNOWN`).
    #[error("repository not found: {0}")]
    NameUnknown(String),
    /// The tag or digest is not known (`MANIFEST_UNKNOWN`).
    #[error("manifest not found: {0}")]
    ManifestUnknown(String),
    /// Authentication is required or failed (`UNAUTHORIZED`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated but access is denied (`DENIED`).
    #[error("access denied: {0}")]
    Denied(String),
    /// Rate limited (`TOOMANYREQUESTS`), after the allowed retries.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// The registry host is not on the caller's allow-list.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// Connection, timeout, TLS or server failure.
    #[error("transport error: {0}")]
    Transport(String),
    /// The registry answered something the spec does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The request cannot be served (bad input or unsupported content).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Tunables of [`RegistryClient`]; `ClientConfig::default()` is what production uses.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Ceiling of the adaptive window of requests in flight to one registry
    /// origin (also applied to token realms).
    pub max_concurrent_requests_per_registry: usize,
    /// Where that window starts (private registries; public ones start at
    /// [`PUBLIC_REGISTRY_INITIAL_REQUESTS`]).
    pub initial_concurrent_requests_per_registry: usize,
    /// Ceilings of chosen origins (`scheme://host[:port]`, from
    /// `[registries.NAME] concurrency`), in place of the general one.
    pub origin_ceilings: BTreeMap<String, usize>,
    /// Whole-request timeout (connect, send, read body).
    pub request_timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Cap on a manifest or index body.
    pub max_manifest_bytes: usize,
    /// Cap on one tag-list page and on a whole listing.
    pub max_tag_list_bytes: usize,
    /// Cap on an image config blob.
    pub max_config_bytes: usize,
    /// Cap on a token server response.
    pub max_token_response_bytes: usize,
    /// `n` sent with tag listings; `None` lets the registry choose its page size.
    pub tag_page_size: Option<u32>,
    /// Pages followed at most in one listing.
    pub max_tag_pages: usize,
    /// Retries after a 429 before giving up with `TooManyRequests`.
    pub max_retries: u32,
    /// Longest single wait for a 429; a longer `Retry-After` fails at once.
    pub max_retry_wait: Duration,
    /// First backoff after a 429 without `Retry-After` (doubled each retry).
    pub initial_backoff: Duration,
    /// Token lifetime when the token server gives no `expires_in`.
    pub default_token_lifetime: Duration,
    /// A token is renewed this long before it expires (at most half its lifetime).
    pub token_expiry_margin: Duration,
    /// Redirects followed at most per request.
    pub max_redirects: usize,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests_per_registry: DEFAULT_MAX_CONCURRENT_REQUESTS_PER_REGISTRY,
            initial_concurrent_requests_per_registry:
                DEFAULT_INITIAL_CONCURRENT_REQUESTS_PER_REGISTRY,
            origin_ceilings: BTreeMap::new(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_tag_list_bytes: DEFAULT_MAX_TAG_LIST_BYTES,
            max_config_bytes: DEFAULT_MAX_CONFIG_BYTES,
            max_token_response_bytes: DEFAULT_MAX_TOKEN_RESPONSE_BYTES,
            tag_page_size: None,
            max_tag_pages: 10_000,
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
            initial_backoff: Duration::from_secs(1),
            default_token_lifetime: DEFAULT_TOKEN_LIFETIME,
            token_expiry_margin: Duration::from_secs(10),
            max_redirects: 5,
            user_agent: concat!("crowsnest/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ClientConfig {
    /// The window limits of `origin` (`scheme://host[:port]`): conservative
    /// for the public registries of [`PUBLIC_REGISTRY_HOSTS`], the configured
    /// start and ceiling (with slow start) elsewhere; an origin of
    /// [`ClientConfig::origin_ceilings`] never exceeds its own ceiling.
    pub fn window_limits(&self, origin: &str) -> WindowLimits {
        if let Some(ceiling) = self.origin_ceilings.get(origin) {
            let start = self.initial_concurrent_requests_per_registry;
            return WindowLimits::new(start.min(*ceiling), *ceiling, true);
        }
        let ceiling = self.max_concurrent_requests_per_registry;
        let host = Url::parse(origin)
            .ok()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        let public = host.is_some_and(|host| PUBLIC_REGISTRY_HOSTS.contains(&host.as_str()));
        if public {
            WindowLimits::new(
                PUBLIC_REGISTRY_INITIAL_REQUESTS,
                ceiling.min(PUBLIC_REGISTRY_MAX_REQUESTS),
                false,
            )
        } else {
            WindowLimits::new(self.initial_concurrent_requests_per_registry, ceiling, true)
        }
    }
}

/// Cases each property-based fuzz harness of the workspace runs:
/// `CROWSNEST_FUZZ_CASES` (CI leaves it unset: 256); a long local run sets
/// it high. Here, at the bottom of the crate graph, so every harness shares it.
pub fn fuzz_cases() -> u32 {
    std::env::var("CROWSNEST_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.trim().parse().ok())
        .unwrap_or(256)
}
