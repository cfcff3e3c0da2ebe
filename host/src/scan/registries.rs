//! The registry plugin instances of a scanner: those configured in
//! `[registries.NAME]`, plus an anonymous `oci` instance created on demand for
//! any other registry domain an image names.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::config::{Config, ConfigError, PluginInstanceConfig};
use crate::plugin::registry::{ImageRef, RegistryInstanceSpec};
use crate::plugin::{Catalog, PluginError, PluginKind, RegistryPlugin, SandboxLimits};
use crate::reference::ImageReference;
use crate::registry::{HostAllowList, RegistryClient};

/// Keys of `[registries.NAME]` the host reads itself; the rest go to the plugin.
pub const HOST_KEYS: &[&str] = &[
    "plugin",
    "strategy",
    "regex",
    "allowed_hosts",
    "concurrency",
];

/// Hosts a built-in registry plugin reaches when its `url` is not configured.
const BUILTIN_DEFAULT_HOSTS: &[(&str, &[&str])] = &[("dockerhub", &["registry-1.docker.io"])];

/// The plugin serving Docker Hub, and the name of its implicit instance.
const HUB_PLUGIN: &str = "dockerhub";
const HUB_INSTANCE: &str = "hub";

/// Plugin used for registries nobody configured.
const FALLBACK_PLUGIN: &str = "oci";

/// One usable registry instance.
pub struct RegistryInstance {
    /// `[registries.NAME]` name, or the domain for an automatic instance.
    pub name: String,
    /// The running plugin instance.
    pub plugin: RegistryPlugin,
    /// `strategy` key, if set.
    pub strategy: Option<String>,
    /// `regex` key (for the regex strategy), if set.
    pub regex: Option<String>,
    /// `url` key, if set (for display).
    pub url: Option<String>,
}

/// What `/api/registries` shows of an instance (no secrets).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegistrySummary {
    /// Instance name.
    pub name: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Configured URL.
    pub url: Option<String>,
    /// Strategy override.
    pub strategy: Option<String>,
    /// Settings with secrets masked.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Created on demand for an unconfigured domain.
    pub automatic: bool,
}

/// The registry instances of a scanner.
pub struct RegistrySet {
    configured: Vec<Arc<RegistryInstance>>,
    summaries: Vec<RegistrySummary>,
    automatic: Mutex<HashMap<String, Result<Arc<RegistryInstance>, String>>>,
    catalog: Arc<Catalog>,
    client: RegistryClient,
    http: reqwest::Client,
    limits: SandboxLimits,
    max_instances: usize,
}

/// Which instance serves an image, or why none can.
pub type Selection = Result<Arc<RegistryInstance>, String>;

impl RegistrySet {
    /// Start every configured instance. A bad instance is a configuration error
    /// naming `[registries.NAME]` and the key the plugin rejected.
    pub async fn new(
        config: &Config,
        config_text: &str,
        catalog: Arc<Catalog>,
        client: RegistryClient,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let limits = config.plugins.sandbox_limits();
        let max_instances = config.plugins.instances;
        let mut configured = Vec::new();
        let mut summaries = Vec::new();
        let mut instances: Vec<(String, PluginInstanceConfig)> = config
            .registries
            .iter()
            .map(|(name, instance)| (name.clone(), instance.clone()))
            .collect();
        // Docker Hub works with no configuration: an anonymous `hub` instance
        // unless some instance already uses the Hub plugin.
        if !instances
            .iter()
            .any(|(_, instance)| instance.plugin == HUB_PLUGIN)
            && catalog.get(HUB_PLUGIN).is_some()
        {
            instances.push((
                HUB_INSTANCE.to_string(),
                PluginInstanceConfig {
                    plugin: HUB_PLUGIN.to_string(),
                    settings: Default::default(),
                },
            ));
        }
        for (name, instance) in &instances {
            let error = |key: &str, message: String| {
                config.error_at(config_text, "registries", name, key, message)
            };
            let entry = catalog
                .find(&instance.plugin, PluginKind::RegistryProvider)
                .map_err(|_| {
                    error(
                        "plugin",
                        format!(
                            "no registry plugin named `{}` (loaded: {})",
                            instance.plugin,
                            catalog.names(PluginKind::RegistryProvider).join(", ")
                        ),
                    )
                })?;
            let allow = allow_list(name, instance, &entry.grants.allowed_hosts)
                .map_err(|(key, message)| error(key, message))?;
            let spec = RegistryInstanceSpec {
                instance: name.clone(),
                settings: instance.plugin_settings(HOST_KEYS),
                allow: Arc::new(allow),
                oci: client.clone(),
                http: http.clone(),
                limits,
                max_instances,
            };
            let plugin =
                RegistryPlugin::new(&entry.component, spec)
                    .await
                    .map_err(|err| match err {
                        PluginError::Config {
                            key: Some(key),
                            message,
                            ..
                        } => error(&key, message),
                        PluginError::Config {
                            key: None, message, ..
                        } => error("plugin", message),
                        other => error("plugin", other.to_string()),
                    })?;
            summaries.push(summary(name, instance, false));
            configured.push(Arc::new(RegistryInstance {
                name: name.clone(),
                plugin,
                strategy: instance.get_str("strategy").map(str::to_string),
                regex: instance.get_str("regex").map(str::to_string),
                url: instance.get_str("url").map(str::to_string),
            }));
        }
        Ok(Self {
            configured,
            summaries,
            automatic: Mutex::new(HashMap::new()),
            catalog,
            client,
            http,
            limits,
            max_instances,
        })
    }

    /// What `/api/registries` shows.
    pub fn summaries(&self) -> Vec<RegistrySummary> {
        self.summaries.clone()
    }

    /// Configured instances (in name order).
    pub fn configured(&self) -> &[Arc<RegistryInstance>] {
        &self.configured
    }

    /// The instance with the highest `matches()` priority for `image` (ties go to
    /// the first in name order); an automatic `oci` instance when none matches.
    pub async fn select(&self, image: &ImageReference) -> Selection {
        let wit_image = ImageRef {
            domain: image.domain_as_written().to_string(),
            path: image.written_path().to_string(),
            tag: image.tag().map(str::to_string),
            digest: image.digest().map(str::to_string),
        };
        let mut best: Option<(u32, &Arc<RegistryInstance>)> = None;
        for instance in &self.configured {
            match instance.plugin.matches(&wit_image).await {
                Ok(Some(priority)) if best.is_none_or(|(top, _)| priority > top) => {
                    best = Some((priority, instance))
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(registry = %instance.name, "matches() failed: {err}"),
            }
        }
        match best {
            Some((_, instance)) => Ok(instance.clone()),
            None => self.automatic(image.domain()).await,
        }
    }

    async fn automatic(&self, domain: &str) -> Selection {
        let mut automatic = self.automatic.lock().await;
        if let Some(known) = automatic.get(domain) {
            return known.clone();
        }
        let created = self.create_automatic(domain).await;
        automatic.insert(domain.to_string(), created.clone());
        created
    }

    async fn create_automatic(&self, domain: &str) -> Selection {
        let entry = self
            .catalog
            .find(FALLBACK_PLUGIN, PluginKind::RegistryProvider)
            .map_err(|err| format!("no registry configured for `{domain}` and {err}"))?;
        // Like the Docker engine, loopback registries are spoken to over plain HTTP.
        let scheme = if is_loopback_domain(domain) {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{domain}");
        let allow = HostAllowList::new([domain])
            .map_err(|err| format!("registry domain `{domain}`: {err}"))?;
        let spec = RegistryInstanceSpec {
            instance: domain.to_string(),
            settings: vec![("url".to_string(), url.clone())],
            allow: Arc::new(allow),
            oci: self.client.clone(),
            http: self.http.clone(),
            limits: self.limits,
            max_instances: self.max_instances,
        };
        let plugin = RegistryPlugin::new(&entry.component, spec)
            .await
            .map_err(|err| format!("cannot start a registry plugin for `{domain}`: {err}"))?;
        tracing::info!(
            domain,
            url,
            "using the generic OCI plugin for an unconfigured registry"
        );
        Ok(Arc::new(RegistryInstance {
            name: domain.to_string(),
            plugin,
            strategy: None,
            regex: None,
            url: Some(url),
        }))
    }
}

fn is_loopback_domain(domain: &str) -> bool {
    let host = domain.rsplit_once(':').map_or(domain, |(host, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            host
        } else {
            domain
        }
    });
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The allow-list of a configured instance: its `url` host, built-in defaults,
/// the `allowed_hosts` key and the drop-in's grants.
fn allow_list(
    name: &str,
    instance: &PluginInstanceConfig,
    grants: &[String],
) -> Result<HostAllowList, (&'static str, String)> {
    let mut hosts: Vec<String> = grants.to_vec();
    match instance.get_str("url") {
        Some(url) => {
            let parsed = url::Url::parse(url)
                .map_err(|err| ("url", format!("`{url}` is not a URL: {err}")))?;
            let host = parsed
                .host_str()
                .ok_or(("url", format!("`{url}` has no host")))?;
            hosts.push(match parsed.port() {
                Some(port) if host.contains(':') => format!("[{host}]:{port}"),
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            });
        }
        None => {
            if let Some((_, defaults)) = BUILTIN_DEFAULT_HOSTS
                .iter()
                .find(|(plugin, _)| *plugin == instance.plugin)
            {
                hosts.extend(defaults.iter().map(|h| h.to_string()));
            }
        }
    }
    match instance.settings.get("allowed_hosts") {
        None => {}
        Some(toml::Value::Array(values)) => {
            for value in values {
                let host = value.as_str().ok_or((
                    "allowed_hosts",
                    format!("registry `{name}`: entries must be strings"),
                ))?;
                hosts.push(host.to_string());
            }
        }
        Some(_) => return Err(("allowed_hosts", "must be an array of host names".into())),
    }
    HostAllowList::new(&hosts).map_err(|err| ("allowed_hosts", err))
}

fn summary(name: &str, instance: &PluginInstanceConfig, automatic: bool) -> RegistrySummary {
    RegistrySummary {
        name: name.to_string(),
        plugin: instance.plugin.clone(),
        url: instance.get_str("url").map(str::to_string),
        strategy: instance.get_str("strategy").map(str::to_string),
        settings: instance
            .settings
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_key(key) {
                    "********".to_string()
                } else {
                    crate::config::setting_text(value)
                };
                (key.clone(), shown)
            })
            .collect(),
        automatic,
    }
}

/// Whether a setting holds a secret that must never be shown.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "token", "secret", "key"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_domains_use_plain_http() {
        assert!(is_loopback_domain("localhost:5000"));
        assert!(is_loopback_domain("127.0.0.1:5001"));
        assert!(is_loopback_domain("[::1]:5000"));
        assert!(!is_loopback_domain("ghcr.io"));
        assert!(!is_loopback_domain("registry.local:5000"));
    }

    #[test]
    fn secrets_are_recognised() {
        assert!(is_secret_key("password"));
        assert!(is_secret_key("access_token"));
        assert!(is_secret_key("secret_key"));
        assert!(!is_secret_key("username"));
        assert!(!is_secret_key("url"));
    }
}
