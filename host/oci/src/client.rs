//! [`RegistryClient`]: the one handle callers hold. It ties the transport and
//! the auth layer together, checks every location against the caller's
//! [`AccessPolicy`], and carries the protocol operations (see `protocol`).

use std::fmt;
use std::sync::Arc;

use crate::auth::{AccessPolicy, AllowAll, Authenticator};
use crate::reference;
use crate::target::{parse_registry_url, Target};
use crate::transport::{RequestCounters, Transport};
use crate::{ClientConfig, Location, RegistryError};

/// Async OCI distribution v2 client. Cheap to clone: clones share the HTTP
/// connection pool, token cache, challenge cache, concurrency limits and
/// counters. Each clone carries an [`AccessPolicy`] (see [`RegistryClient::with_policy`]).
#[derive(Clone)]
pub struct RegistryClient {
    auth: Arc<Authenticator>,
    pub(crate) policy: Arc<dyn AccessPolicy>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", self.config())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client with its own connection pool and caches; allows every registry
    /// until [`RegistryClient::with_policy`] narrows it.
    pub fn new(config: ClientConfig) -> Result<Self, RegistryError> {
        Ok(Self {
            auth: Arc::new(Authenticator::new(Transport::new(config)?)),
            policy: Arc::new(AllowAll),
        })
    }

    /// The same client (shared pool, caches, limits, counters) restricted by
    /// `policy`, e.g. one plugin instance's allow-list. The policy decides which
    /// registry origins a `Location` may name; token realms named by an
    /// allowed registry are contacted without asking it and reported through
    /// [`AccessPolicy::realm_learned`] (and [`RegistryClient::realm_origins`]).
    pub fn with_policy(&self, policy: Arc<dyn AccessPolicy>) -> Self {
        Self {
            auth: Arc::clone(&self.auth),
            policy,
        }
    }

    /// Configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.auth.transport.config
    }

    /// Request counters by origin and status (shared by every clone).
    pub fn counters(&self) -> Arc<RequestCounters> {
        Arc::clone(&self.auth.transport.counters)
    }

    /// The current adaptive concurrency window towards `registry_url` (its
    /// starting size before any request); `None` for an invalid URL.
    pub fn window_limit(&self, registry_url: &str) -> Option<usize> {
        let base = parse_registry_url(registry_url).ok()?;
        Some(
            self.auth
                .transport
                .window_limit(&base.origin().ascii_serialization()),
        )
    }

    /// Token realm origins the registry at `registry_url` has named so far
    /// (e.g. `["https://auth.docker.io"]`).
    pub fn realm_origins(&self, registry_url: &str) -> Vec<String> {
        let Ok(base) = parse_registry_url(registry_url) else {
            return Vec::new();
        };
        self.auth
            .realm_origins(&base.origin().ascii_serialization())
    }

    /// Plans the token requests of a scan that reads `locations` (registry
    /// URL, repository): where a
    /// registry's token server takes several `scope` parameters, one token
    /// is asked for up to [`SCOPES_PER_TOKEN`](crate::SCOPES_PER_TOKEN)
    /// of its repositories at once and reused until it expires. A full scan
    /// (`replace`) drops the repositories it no longer reads; a partial one
    /// only adds. Locations with an invalid URL are skipped (their requests
    /// fail on their own).
    pub fn plan_token_scopes<'a>(
        &self,
        locations: impl IntoIterator<Item = (&'a str, &'a str)>,
        replace: bool,
    ) {
        let mut by_origin: std::collections::HashMap<String, Vec<&str>> = Default::default();
        for (registry_url, repository) in locations {
            if let Ok(base) = parse_registry_url(registry_url) {
                by_origin
                    .entry(base.origin().ascii_serialization())
                    .or_default()
                    .push(repository);
            }
        }
        for (origin, repositories) in by_origin {
            self.auth.plan_scopes(&origin, repositories, replace);
        }
    }

    /// Checks the location against the policy and parses it.
    pub(crate) fn target(&self, location: &Location) -> Result<Target, RegistryError> {
        let base = parse_registry_url(&location.registry_url)?;
        if !self.policy.allows(&base) {
            return Err(RegistryError::NotAllowed(format!(
                "registry {} is not on this caller's allow-list",
                base.origin().ascii_serialization()
            )));
        }
        reference::validate_path(&location.repository).map_err(|error| {
            RegistryError::Unsupported(format!("invalid repository name: {error}"))
        })?;
        Ok(Target {
            origin: base.origin().ascii_serialization(),
            base,
            repository: location.repository.clone(),
        })
    }

    /// The auth layer (and, through it, the transport) of this client.
    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

#[cfg(test)]
mod tests;
