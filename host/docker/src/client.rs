//! [`DockerWatcher`]: a connected Docker engine (bollard over a unix socket,
//! TCP, or TCP with TLS), its API version negotiated.

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::watcher::{Endpoint, WatcherConfig};
use crate::DiscoveryError;

/// Seconds a single Docker API request may take before it is abandoned.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// A connected Docker engine.
#[derive(Debug, Clone)]
pub struct DockerWatcher {
    pub(crate) name: String,
    pub(crate) config: WatcherConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) docker: Docker,
}

impl DockerWatcher {
    /// Connects to the engine and negotiates the API version (so an engine older
    /// than bollard's default API, e.g. 20.10 speaking 1.41, works). Fails with
    /// [`DiscoveryError::Unreachable`] when nothing answers.
    pub async fn connect(
        name: impl Into<String>,
        config: WatcherConfig,
    ) -> Result<Self, DiscoveryError> {
        let name = name.into();
        let endpoint = config.endpoint(&name)?;
        let unreachable = |source| DiscoveryError::Unreachable {
            watcher: name.clone(),
            endpoint: endpoint.to_string(),
            source,
        };
        let client = match &endpoint {
            Endpoint::Unix(path) => Docker::connect_with_socket(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp(address) => {
                Docker::connect_with_http(address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            Endpoint::Tls {
                address,
                ca,
                cert,
                key,
            } => Docker::connect_with_ssl(
                address,
                key,
                cert,
                ca,
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
        }
        .map_err(unreachable)?;
        let docker = client.negotiate_version().await.map_err(unreachable)?;
        tracing::debug!(watcher = %name, %endpoint, api = %docker.client_version(), "connected to Docker");
        Ok(Self {
            name,
            config,
            endpoint,
            docker,
        })
    }

    /// Watcher name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Watcher configuration.
    pub fn config(&self) -> &WatcherConfig {
        &self.config
    }

    /// Where the engine listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The underlying client, for host capabilities that act on Docker (pull, recreate).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub(crate) fn list_error(&self, source: bollard::errors::Error) -> DiscoveryError {
        DiscoveryError::ListContainers {
            watcher: self.name.clone(),
            endpoint: self.endpoint.to_string(),
            source,
        }
    }

    pub(crate) fn inspect_error(
        &self,
        container: &str,
        source: bollard::errors::Error,
    ) -> DiscoveryError {
        DiscoveryError::InspectContainer {
            watcher: self.name.clone(),
            container: container.to_owned(),
            source,
        }
    }
}
