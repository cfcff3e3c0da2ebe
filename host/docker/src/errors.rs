//! Errors of one watcher.

/// Errors of one watcher. Each names the watcher so a multi-host report stays readable.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The watcher's configuration is inconsistent.
    #[error("watcher `{watcher}`: invalid configuration: {reason}")]
    InvalidConfig {
        /// Watcher name.
        watcher: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine could not be reached or did not answer the version handshake.
    #[error("watcher `{watcher}`: Docker engine at {endpoint} is unreachable: {source}")]
    Unreachable {
        /// Watcher name.
        watcher: String,
        /// Where it was looked for.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing containers failed after the engine had answered.
    #[error("watcher `{watcher}`: listing containers at {endpoint} failed: {source}")]
    ListContainers {
        /// Watcher name.
        watcher: String,
        /// Engine address.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Inspecting one container failed.
    #[error("watcher `{watcher}`: inspecting container {container} failed: {source}")]
    InspectContainer {
        /// Watcher name.
        watcher: String,
        /// Container id or name that was asked for.
        container: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The event stream broke.
    #[error("watcher `{watcher}`: Docker event stream from {endpoint} failed: {source}")]
    Events {
        /// Watcher name.
        watcher: String,
        /// Engine address.
        endpoint: String,
        /// Underlying client error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl DiscoveryError {
    /// The engine answered that the container does not exist (404): it is
    /// gone, as opposed to an inspection that failed (timeout, 500) and says
    /// nothing about whether it still runs.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::InspectContainer {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}
