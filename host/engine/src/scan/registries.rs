//! The registry plugin instances of a scanner: those configured in
//! `[registries.NAME]`, plus an anonymous `oci` instance created on demand for
//! any other registry domain an image names.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crowsnest_config::{Config, ConfigError, RegistryConfig};
use crowsnest_oci::reference::ImageReference;
use crowsnest_oci::{Auth, HostAllowList, RegistryClient};
use crowsnest_plugin_host::registry::ImageRef;
use crowsnest_plugin_host::{
    Capabilities, Catalog, HttpCapability, InstanceSpec, OciCapability, PluginComponent,
    PluginKind, PluginObserver, RegistryPlugin, SandboxLimits,
};

use super::docker_logins::DockerLogins;
use crate::instance_setup::{self, config_error};

/// Hosts a built-in registry plugin reaches when its `url` is not configured.
const BUILTIN_DEFAULT_HOSTS: &[(&str, &[&str])] = &[
    // Each with the CDN its blobs redirect to: every redirect hop is checked
    // against the allow-list (and never carries credentials off the registry).
    (
        "dockerhub",
        &["registry-1.docker.io", "production.cloudflare.docker.com"],
    ),
    (
        "ghcr",
        &["ghcr.io", "lscr.io", "pkg-containers.githubusercontent.com"],
    ),
    ("quay", &["quay.io", "*.quay.io"]),
    (
        "gcr",
        &["*.gcr.io", "gcr.io", "*.pkg.dev", "oauth2.googleapis.com"],
    ),
    ("acr", &["*.azurecr.io", "login.microsoftonline.com"]),
    ("swr", &["*.myhuaweicloud.com"]),
    ("aliyun", &["*.aliyuncs.com"]),
    (
        "tencent",
        &[
            "ccr.ccs.tencentyun.com",
            "*.tencentcloudcr.com",
            "tcr.tencentcloudapi.com",
        ],
    ),
    ("gitlab", &["registry.gitlab.com", "gitlab.com"]),
    (
        "ecr",
        &["*.amazonaws.com", "*.amazonaws.com.cn", "public.ecr.aws"],
    ),
];

/// Settings of vendor plugins naming an API endpoint the plugin calls
/// besides the registry: its host joins the instance's allow-list.
const ENDPOINT_KEYS: [&str; 4] = ["api_url", "auth_url", "token_url", "login_url"];

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
    /// Who this instance asks as: its name and a hash of its settings
    /// (credentials included, never the secret itself). Cached tag listings
    /// are keyed by it, so an anonymous container never reuses a listing
    /// fetched with credentials, nor the other way round.
    pub credential_identity: String,
}

/// `name@` and the first 16 hex digits of the SHA-256 of `settings`.
fn credential_identity(name: &str, settings: &[(String, String)]) -> String {
    use sha2::Digest as _;
    let mut sorted: Vec<&(String, String)> = settings.iter().collect();
    sorted.sort();
    let mut hasher = sha2::Sha256::new();
    for (key, value) in sorted {
        // Length-prefixed, so no two settings lists hash the same text.
        for part in [key, value] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    let digest = hasher.finalize();
    format!(
        "{name}@{}",
        hex::encode(digest.get(..8).unwrap_or_default())
    )
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

/// A configured instance without credentials, kept to be started again
/// with Docker's login for a registry it serves.
struct WithoutCredentials {
    component: Arc<PluginComponent>,
    config: RegistryConfig,
    grants: Vec<String>,
}

/// The registry instances of a scanner.
pub struct RegistrySet {
    configured: Vec<Arc<RegistryInstance>>,
    summaries: Vec<RegistrySummary>,
    /// Automatic instances per domain (and credentials), and configured
    /// instances started again with Docker's logins.
    automatic: Mutex<HashMap<String, Result<Arc<RegistryInstance>, String>>>,
    /// Configured instances (by name) that Docker's logins may serve.
    without_credentials: HashMap<String, WithoutCredentials>,
    /// Docker's own logins (`[credentials]`), if a config file was found.
    docker_logins: Option<DockerLogins>,
    catalog: Arc<Catalog>,
    client: RegistryClient,
    http: reqwest::Client,
    limits: SandboxLimits,
    max_instances: usize,
    observer: Arc<dyn PluginObserver>,
}

/// Which instance serves an image, or why none can.
pub type Selection = Result<Arc<RegistryInstance>, String>;

impl RegistrySet {
    /// Start every configured instance. A bad instance is a configuration error
    /// naming `[registries.NAME]` and the key the plugin rejected.
    pub async fn new(
        config: &Config,
        catalog: Arc<Catalog>,
        client: RegistryClient,
        http: reqwest::Client,
        observer: Arc<dyn PluginObserver>,
    ) -> Result<Self, ConfigError> {
        let mut set = Self {
            configured: Vec::new(),
            summaries: Vec::new(),
            automatic: Mutex::new(HashMap::new()),
            without_credentials: HashMap::new(),
            docker_logins: DockerLogins::from_config(config),
            catalog,
            client,
            http,
            limits: crate::plugin_setup::sandbox_limits(&config.plugins),
            max_instances: config.plugins.instances,
            observer,
        };
        let mut instances: Vec<(String, RegistryConfig)> = config
            .registries
            .iter()
            .map(|(name, instance)| (name.clone(), instance.clone()))
            .collect();
        // Docker Hub works with no configuration: an anonymous `hub` instance
        // unless some instance already uses the Hub plugin.
        if !instances
            .iter()
            .any(|(_, instance)| instance.plugin == HUB_PLUGIN)
            && set.catalog.get(HUB_PLUGIN).await.is_some()
        {
            instances.push((
                HUB_INSTANCE.to_string(),
                RegistryConfig::new(HUB_PLUGIN, Default::default()),
            ));
        }
        for (name, instance) in &instances {
            let at =
                |key: &str, message: String| config.error_at(&["registries", name, key], message);
            let Ok(entry) = set
                .catalog
                .find(&instance.plugin, PluginKind::RegistryProvider)
                .await
            else {
                return Err(at(
                    "plugin",
                    format!(
                        "no registry plugin named `{}` (loaded: {})",
                        instance.plugin,
                        set.catalog
                            .names(PluginKind::RegistryProvider)
                            .await
                            .join(", ")
                    ),
                ));
            };
            let allow = allow_list(instance, &entry.grants.allowed_hosts)
                .map_err(|(key, message)| at(key, message))?;
            let settings = instance.plugin_settings();
            let plugin =
                RegistryPlugin::new(&entry.component, name, set.spec(allow, settings.clone()))
                    .await
                    .map_err(|err| config_error(config, &["registries", name], err))?;
            set.summaries.push(RegistrySummary {
                name: name.clone(),
                plugin: instance.plugin.clone(),
                url: instance.get_str("url").map(str::to_string),
                strategy: instance.host.strategy.clone(),
                settings: entry.component.info.masked(&settings),
                automatic: false,
            });
            if takes_docker_login(&entry.component, instance) {
                set.without_credentials.insert(
                    name.clone(),
                    WithoutCredentials {
                        component: entry.component.clone(),
                        config: instance.clone(),
                        grants: entry.grants.allowed_hosts.clone(),
                    },
                );
            }
            set.configured.push(Arc::new(RegistryInstance {
                name: name.clone(),
                plugin,
                strategy: instance.host.strategy.clone(),
                regex: instance.host.regex.clone(),
                url: instance.get_str("url").map(str::to_string),
                credential_identity: credential_identity(name, &settings),
            }));
        }
        Ok(set)
    }

    /// What one instance reaching `allow` is built from.
    fn spec(&self, allow: HostAllowList, settings: Vec<(String, String)>) -> InstanceSpec {
        let allow = Arc::new(allow);
        InstanceSpec {
            settings,
            limits: self.limits,
            capabilities: Capabilities {
                http: Some(HttpCapability::new(allow.clone(), self.http.clone())),
                oci: Some(OciCapability::new(&self.client, allow)),
                ..Capabilities::default()
            },
            max_instances: self.max_instances,
            observer: self.observer.clone(),
        }
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
        self.select_with(image, None).await
    }

    /// [`RegistrySet::select`] for a workload that brings its own credentials
    /// for `image`'s registry (a Kubernetes Pod's image pull secret): they
    /// are used where no configured instance serves the image, by an
    /// automatic instance of their own (configuration wins, as it is the
    /// operator's word about that registry).
    pub async fn select_with(&self, image: &ImageReference, pull_auth: Option<&Auth>) -> Selection {
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
            Some((_, instance)) => self.with_docker_login(instance, image.domain()).await,
            None => {
                let docker_login = match pull_auth {
                    Some(_) => None,
                    None => self.docker_login(image.domain()).await?,
                };
                self.automatic(image.domain(), pull_auth.or(docker_login.as_ref()))
                    .await
            }
        }
    }

    /// Docker's login for `domain`, when `[credentials]` found one.
    async fn docker_login(&self, domain: &str) -> Result<Option<Auth>, String> {
        let Some(logins) = &self.docker_logins else {
            return Ok(None);
        };
        logins
            .login_for(domain)
            .await
            .map_err(|err| format!("Docker's login for `{domain}`: {err}"))
    }

    /// `instance`, or when it was configured without credentials and Docker
    /// has a login for `domain`, the same instance started with that login
    /// (once per set of credentials).
    async fn with_docker_login(&self, instance: &Arc<RegistryInstance>, domain: &str) -> Selection {
        let Some(bare) = self.without_credentials.get(&instance.name) else {
            return Ok(instance.clone());
        };
        let Some(Auth::Basic { username, password }) = self.docker_login(domain).await? else {
            return Ok(instance.clone());
        };
        let key = format!("[registries.{}]\0{username}\0{password}", instance.name);
        let mut started = self.automatic.lock().await;
        if let Some(known) = started.get(&key) {
            return known.clone();
        }
        let created = async {
            let allow = allow_list(&bare.config, &bare.grants)
                .map_err(|(key, message)| format!("[registries.{}] {key}: {message}", instance.name))?;
            let mut settings = bare.config.plugin_settings();
            settings.push(("username".to_string(), username.clone()));
            settings.push(("password".to_string(), password.clone()));
            let identity = credential_identity(&instance.name, &settings);
            let plugin = RegistryPlugin::new(&bare.component, &instance.name, self.spec(allow, settings))
                .await
                .map_err(|err| {
                    format!("registry `{}` with Docker's login for `{domain}`: {err}", instance.name)
                })?;
            tracing::info!(registry = %instance.name, domain, username = %username, "using Docker's login");
            Ok(Arc::new(RegistryInstance {
                name: instance.name.clone(),
                plugin,
                strategy: instance.strategy.clone(),
                regex: instance.regex.clone(),
                url: instance.url.clone(),
                credential_identity: identity,
            }))
        }
        .await;
        started.insert(key, created.clone());
        created
    }

    async fn automatic(&self, domain: &str, pull_auth: Option<&Auth>) -> Selection {
        let credentials = match pull_auth {
            Some(Auth::Basic { username, password }) => Some((username, password)),
            // A pull secret only ever yields Basic credentials.
            Some(Auth::Anonymous | Auth::Bearer(_)) | None => None,
        };
        // Kept in memory only; one instance per domain and set of credentials.
        let key = match credentials {
            Some((username, password)) => format!("{domain}\0{username}\0{password}"),
            None => domain.to_string(),
        };
        let mut automatic = self.automatic.lock().await;
        if let Some(known) = automatic.get(&key) {
            return known.clone();
        }
        let created = self.create_automatic(domain, credentials).await;
        automatic.insert(key, created.clone());
        created
    }

    async fn create_automatic(
        &self,
        domain: &str,
        credentials: Option<(&String, &String)>,
    ) -> Selection {
        let entry = self
            .catalog
            .find(FALLBACK_PLUGIN, PluginKind::RegistryProvider)
            .await
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
        let mut settings = vec![("url".to_string(), url.clone())];
        if let Some((username, password)) = credentials {
            settings.push(("username".to_string(), username.clone()));
            settings.push(("password".to_string(), password.clone()));
        }
        let identity = credential_identity(domain, &settings);
        let plugin = RegistryPlugin::new(&entry.component, domain, self.spec(allow, settings))
            .await
            .map_err(|err| format!("cannot start a registry plugin for `{domain}`: {err}"))?;
        tracing::info!(
            domain,
            url,
            "using the generic OCI plugin for an unconfigured registry"
        );
        // Its own name when it has credentials: tag listings and digest
        // lookups are shared per instance name, never across credentials.
        let name = match credentials {
            Some((username, _)) => format!("{domain} as {username}"),
            None => domain.to_string(),
        };
        Ok(Arc::new(RegistryInstance {
            name,
            plugin,
            strategy: None,
            regex: None,
            url: Some(url),
            credential_identity: identity,
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

/// Whether a configured `instance` of `component` takes Docker's login: its
/// plugin accepts `username` and `password` and the instance sets no user
/// and no secret of its own.
fn takes_docker_login(component: &PluginComponent, instance: &RegistryConfig) -> bool {
    let info = &component.info;
    let accepts = |key: &str| info.config_keys.iter().any(|declared| declared.name == key);
    accepts("username")
        && accepts("password")
        && !instance
            .settings
            .keys()
            .any(|key| key == "username" || info.is_secret(key))
}

/// The allow-list of a configured instance: its `url` host, built-in defaults,
/// the `allowed_hosts` key and the drop-in's grants.
fn allow_list(
    instance: &RegistryConfig,
    grants: &[String],
) -> Result<HostAllowList, (&'static str, String)> {
    let mut allowed_hosts = instance.host.allowed_hosts.clone();
    for key in ENDPOINT_KEYS {
        if let Some(url) = instance.get_str(key) {
            allowed_hosts.push(instance_setup::url_host(url).map_err(|message| (key, message))?);
        }
    }
    instance_setup::allow_list(instance, &allowed_hosts, grants, BUILTIN_DEFAULT_HOSTS)
        .map(|allow| allow.with_plain_http_credentials(instance.host.insecure))
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
    fn credential_identities_differ_by_credentials_and_hide_them() {
        let settings = |password: Option<&str>| {
            let mut settings = vec![("url".to_string(), "http://r.test".to_string())];
            if let Some(password) = password {
                settings.push(("username".to_string(), "bob".to_string()));
                settings.push(("password".to_string(), password.to_string()));
            }
            settings
        };
        let anonymous = credential_identity("r.test", &settings(None));
        let with_secret = credential_identity("r.test", &settings(Some("s3cret")));
        let other_secret = credential_identity("r.test", &settings(Some("other")));
        assert_ne!(anonymous, with_secret);
        assert_ne!(with_secret, other_secret);
        assert!(with_secret.starts_with("r.test@") && !with_secret.contains("s3cret"));
        let mut reordered = settings(Some("s3cret"));
        reordered.reverse();
        assert_eq!(credential_identity("r.test", &reordered), with_secret);
    }
}
