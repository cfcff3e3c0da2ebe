//! Why a Kubernetes watcher failed, naming the watcher and the step.

/// A Kubernetes watcher's failure; every variant names the watcher.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// The watcher's configuration cannot work (kubeconfig unreadable, no such context).
    #[error("watcher `{watcher}`: {reason}")]
    InvalidConfig {
        /// Watcher name.
        watcher: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server refused or failed a request.
    #[error("watcher `{watcher}`: {action} failed: {reason}")]
    Api {
        /// Watcher name.
        watcher: String,
        /// What was asked, e.g. `listing pods in namespace default`.
        action: String,
        /// The API server's answer, or the transport error.
        reason: String,
    },
}

impl KubernetesError {
    /// An [`KubernetesError::Api`] from a kube error, with the API server's
    /// status (code, reason, message) when it sent one.
    pub(crate) fn api(watcher: &str, action: impl Into<String>, source: &kube::Error) -> Self {
        let reason = match source {
            kube::Error::Api(status) => format!(
                "{} {}: {}",
                status.code,
                status.reason,
                status.message.trim()
            ),
            other => other.to_string(),
        };
        Self::Api {
            watcher: watcher.to_owned(),
            action: action.into(),
            reason,
        }
    }
}
