//! `oci-client`: the host's OCI distribution client, lent to registry
//! plugins restricted to their instance's allow-list, so the protocol work
//! (challenges, tokens, pagination, digests) lives once in the host.

use std::sync::Arc;
use std::time::Instant;

use crowsnest_oci::{self as oci, AccessPolicy, RegistryClient};

use crate::bindings::registry::crowsnest::plugin::{oci_client, registry_types};
use crate::HostState;

/// The OCI capability of one registry plugin instance.
#[derive(Clone)]
pub struct OciCapability {
    client: RegistryClient,
}

impl OciCapability {
    /// The shared `client`, restricted by `policy` for this instance.
    pub fn new(client: &RegistryClient, policy: Arc<dyn AccessPolicy>) -> Self {
        Self {
            client: client.with_policy(policy),
        }
    }
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
        match &self.capabilities.oci {
            Some(oci) => Ok(oci.client.clone()),
            None => Err(registry_types::RegistryError::NotAllowed(
                "this plugin instance has no registry access".into(),
            )),
        }
    }
}

fn location_from_wit(location: registry_types::Location) -> oci::Location {
    oci::Location::new(location.registry_url, location.repository)
}

/// A plugin's credentials (WIT `auth`) as the host's OCI client takes them.
pub fn auth_from_wit(auth: registry_types::Auth) -> oci::Auth {
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
