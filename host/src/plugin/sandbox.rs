//! Per-instance sandbox state: memory limits, guest CPU-time accounting, the
//! network grant, and the host functions lent to guests (log, HTTP, OCI).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use super::bindings::registry::crowsnest::plugin::{
    http_client, log, oci_client, registry_types, types,
};
use crate::registry::{self as oci, AccessPolicy, HostAllowList, RegistryClient};

/// Resource limits applied to every plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Guest execution time per call (time spent waiting on host imports is not counted).
    pub cpu_per_call: Duration,
    /// Per-request cap for raw HTTP.
    pub http_timeout: Duration,
    /// Largest HTTP response body handed to a guest.
    pub http_max_body: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_per_call: Duration::from_secs(1),
            http_timeout: Duration::from_secs(30),
            http_max_body: 8 << 20,
        }
    }
}

/// What a plugin instance may do on the network.
#[derive(Clone)]
pub struct NetworkGrant {
    /// Where it may go (token realms its registry names are added as learned).
    pub allow: Arc<HostAllowList>,
    /// The shared HTTP client; it must not follow redirects (one could leave the allow-list).
    pub http: reqwest::Client,
    /// The host's OCI client restricted to `allow` (registry plugins only).
    pub oci: Option<RegistryClient>,
}

/// Measures guest execution time within one call, excluding host imports.
#[derive(Debug, Default)]
pub struct GuestClock {
    call_started: Option<Instant>,
    in_host: Duration,
    exhausted: bool,
}

impl GuestClock {
    /// Start timing a call.
    pub fn start(&mut self) {
        self.call_started = Some(Instant::now());
        self.in_host = Duration::ZERO;
        self.exhausted = false;
    }

    /// Guest time used by the current call so far.
    pub fn guest_time(&self) -> Duration {
        self.call_started
            .map(|start| start.elapsed().saturating_sub(self.in_host))
            .unwrap_or_default()
    }

    /// Account for time spent inside a host import.
    pub fn add_host_time(&mut self, spent: Duration) {
        self.in_host += spent;
    }

    /// Mark that the CPU limit stopped this call.
    pub fn set_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// Whether the CPU limit stopped the last call.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}

/// `StoreLimits` that remembers whether a limit was hit, so the error can say so.
pub struct GuardedLimits {
    inner: StoreLimits,
    hit: Option<String>,
}

impl GuardedLimits {
    fn new(memory_bytes: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .table_elements(100_000)
                .instances(64)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            hit: None,
        }
    }

    /// The limit that was hit, if one was.
    pub fn hit(&self) -> Option<&str> {
        self.hit.as_deref()
    }
}

impl ResourceLimiter for GuardedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.inner.memory_growing(current, desired, maximum);
        if !matches!(result, Ok(true)) {
            self.hit = Some(format!(
                "memory limit: guest asked for {} MiB",
                desired >> 20
            ));
        }
        result
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.inner.table_growing(current, desired, maximum);
        if !matches!(result, Ok(true)) {
            self.hit = Some(format!("table limit: guest asked for {desired} elements"));
        }
        result
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The data of one plugin instance's `Store`.
pub struct HostState {
    /// Plugin instance label used in logs and errors, e.g. `oci (registry local)`.
    pub label: Arc<str>,
    /// Memory/table limits.
    pub limits: GuardedLimits,
    /// CPU accounting for the running call.
    pub clock: GuestClock,
    /// Network access; `None` for strategies.
    pub network: Option<NetworkGrant>,
    sandbox: SandboxLimits,
}

impl HostState {
    /// Fresh state for a new store.
    pub fn new(label: Arc<str>, sandbox: SandboxLimits, network: Option<NetworkGrant>) -> Self {
        Self {
            label,
            limits: GuardedLimits::new(sandbox.memory_bytes),
            clock: GuestClock::default(),
            network,
            sandbox,
        }
    }

    /// Limits this state was built with.
    pub fn sandbox(&self) -> &SandboxLimits {
        &self.sandbox
    }
}

impl types::Host for HostState {}
impl registry_types::Host for HostState {}

impl log::Host for HostState {
    async fn write(&mut self, level: types::LogLevel, message: String) {
        let message: String = message.chars().take(4096).collect();
        let plugin = &*self.label;
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl http_client::Host for HostState {
    async fn send(
        &mut self,
        req: http_client::Request,
    ) -> Result<http_client::Response, http_client::HttpError> {
        let started = Instant::now();
        let result = self.send_http(req).await;
        self.clock.add_host_time(started.elapsed());
        result
    }
}

impl HostState {
    async fn send_http(
        &self,
        req: http_client::Request,
    ) -> Result<http_client::Response, http_client::HttpError> {
        use http_client::HttpError;
        let Some(network) = &self.network else {
            return Err(HttpError::NotAllowed(
                "this plugin has no network access".into(),
            ));
        };
        let url = url::Url::parse(&req.url)
            .map_err(|err| HttpError::InvalidRequest(format!("bad URL `{}`: {err}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        if !network.allow.allows(&url) {
            tracing::warn!(plugin = &*self.label, url = %redact(&url), "plugin HTTP request refused: host not allowed");
            return Err(HttpError::NotAllowed(format!(
                "host `{}` is not on this plugin's allow-list",
                url.host_str().unwrap_or_default()
            )));
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("bad method `{}`", req.method)))?;
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(self.sandbox.http_timeout)
            .min(self.sandbox.http_timeout);
        let mut builder = network.http.request(method, url.clone()).timeout(timeout);
        for (name, value) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name `{name}`")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|err| {
            if err.is_timeout() {
                HttpError::Timeout(format!(
                    "no answer from {} within {timeout:?}",
                    redact(&url)
                ))
            } else {
                HttpError::Transport(format!("{}: {}", redact(&url), error_chain(&err)))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let body = read_capped(response, self.sandbox.http_max_body)
            .await
            .map_err(|err| match err {
                CappedReadError::TooLarge(cap) => {
                    HttpError::TooLarge(format!("response body over {cap} bytes"))
                }
                CappedReadError::Transport(msg) => HttpError::Transport(msg),
            })?;
        Ok(http_client::Response {
            status,
            headers,
            body,
        })
    }
}

/// Why a capped body read failed.
pub enum CappedReadError {
    /// Over the cap (bytes).
    TooLarge(usize),
    /// The connection failed mid-body.
    Transport(String),
}

/// Read a response body, refusing more than `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, CappedReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(CappedReadError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| CappedReadError::Transport(error_chain(&err)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(CappedReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL without credentials or query, safe to log.
fn redact(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

impl oci_client::Host for HostState {
    async fn list_tags(
        &mut self,
        target: registry_types::Location,
        credentials: registry_types::Auth,
    ) -> Result<Vec<String>, registry_types::RegistryError> {
        let started = Instant::now();
        let result = match self.oci_client() {
            Ok(client) => client
                .list_tags(&location_from_wit(target), &auth_from_wit(credentials))
                .await
                .map_err(error_to_wit),
            Err(err) => Err(err),
        };
        self.clock.add_host_time(started.elapsed());
        result
    }

    async fn resolve(
        &mut self,
        target: registry_types::Location,
        reference: String,
        credentials: registry_types::Auth,
        platform: Option<registry_types::Platform>,
        with_created: bool,
    ) -> Result<registry_types::ManifestInfo, registry_types::RegistryError> {
        let started = Instant::now();
        let platform = platform.map(|p| oci::Platform {
            architecture: p.architecture,
            os: p.os,
            variant: p.variant,
        });
        let result = match self.oci_client() {
            Ok(client) => client
                .resolve(
                    &location_from_wit(target),
                    &reference,
                    &auth_from_wit(credentials),
                    platform.as_ref(),
                    with_created,
                )
                .await
                .map(|info| registry_types::ManifestInfo {
                    digest: info.digest,
                    media_type: info.media_type,
                    platform_digest: info.platform_digest,
                    created: info.created,
                })
                .map_err(error_to_wit),
            Err(err) => Err(err),
        };
        self.clock.add_host_time(started.elapsed());
        result
    }
}

impl HostState {
    fn oci_client(&self) -> Result<RegistryClient, registry_types::RegistryError> {
        match &self.network {
            Some(NetworkGrant {
                oci: Some(client), ..
            }) => Ok(client.clone()),
            _ => Err(registry_types::RegistryError::NotAllowed(
                "this plugin instance has no registry access".into(),
            )),
        }
    }
}

fn location_from_wit(location: registry_types::Location) -> oci::Location {
    oci::Location::new(location.registry_url, location.repository)
}

fn auth_from_wit(auth: registry_types::Auth) -> oci::Auth {
    match auth {
        registry_types::Auth::Anonymous => oci::Auth::Anonymous,
        registry_types::Auth::Basic((username, password)) => {
            oci::Auth::Basic { username, password }
        }
        registry_types::Auth::Bearer(token) => oci::Auth::Bearer(token),
    }
}

/// The host client's error as the WIT variant (same cases, same names).
pub fn error_to_wit(error: oci::RegistryError) -> registry_types::RegistryError {
    use registry_types::RegistryError as Wit;
    match error {
        oci::RegistryError::NameUnknown(m) => Wit::NameUnknown(m),
        oci::RegistryError::ManifestUnknown(m) => Wit::ManifestUnknown(m),
        oci::RegistryError::Unauthorized(m) => Wit::Unauthorized(m),
        oci::RegistryError::Denied(m) => Wit::Denied(m),
        oci::RegistryError::TooManyRequests(m) => Wit::TooManyRequests(m),
        oci::RegistryError::NotAllowed(m) => Wit::NotAllowed(m),
        oci::RegistryError::Transport(m) => Wit::Transport(m),
        oci::RegistryError::Protocol(m) => Wit::Protocol(m),
        oci::RegistryError::Unsupported(m) => Wit::Unsupported(m),
    }
}
