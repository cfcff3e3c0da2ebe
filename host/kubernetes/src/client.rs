//! The connection to a watcher's API server: a kubeconfig (its current or a
//! named context), or the in-cluster service account.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{KubernetesError, KubernetesWatcherConfig};

/// A connected Kubernetes watcher.
#[derive(Clone)]
pub struct KubernetesWatcher {
    /// Watcher name (`[watchers.NAME]`).
    pub name: String,
    /// Its configuration.
    pub config: KubernetesWatcherConfig,
    /// Where its API server is (for messages).
    pub server: String,
    pub(crate) client: kube::Client,
}

impl std::fmt::Debug for KubernetesWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesWatcher")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubernetesWatcher {
    /// Builds a client from the kubeconfig (`kubeconfig`/`context`) or, when
    /// neither is set, from the in-cluster environment. Nothing is sent yet:
    /// an unreachable server or a refused token fails the first request.
    pub async fn connect(
        name: impl Into<String>,
        config: KubernetesWatcherConfig,
    ) -> Result<Self, KubernetesError> {
        let name = name.into();
        let invalid = |reason: String| KubernetesError::InvalidConfig {
            watcher: name.clone(),
            reason,
        };
        let options = KubeConfigOptions {
            context: config.context.clone(),
            ..Default::default()
        };
        let client_config = match (&config.kubeconfig, &config.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|err| {
                    invalid(format!("cannot read kubeconfig {}: {err}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|err| invalid(format!("kubeconfig {}: {err}", path.display())))?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|err| invalid(format!("default kubeconfig: {err}")))?,
            (None, None) => kube::Config::incluster()
                .map_err(|err| invalid(format!("not running in a cluster: {err}")))?,
        };
        let server = client_config.cluster_url.to_string();
        let client = kube::Client::try_from(client_config)
            .map_err(|err| invalid(format!("cannot build a client for {server}: {err}")))?;
        Ok(Self {
            name,
            config,
            server,
            client,
        })
    }

    /// An API error of this watcher for `action`.
    pub(crate) fn api_error(
        &self,
        action: impl Into<String>,
        source: &kube::Error,
    ) -> KubernetesError {
        KubernetesError::api(&self.name, action, source)
    }
}
