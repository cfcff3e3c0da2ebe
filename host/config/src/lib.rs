//! crowsnest-config: `config.toml`, read once into one typed [`Config`].
//!
//! Responsibility: parse the file, apply `CROWSNEST__…` environment
//! overrides and `*_file` secrets, deserialise every section with serde, and
//! report every problem — syntax, unknown key, bad value, or a setting a
//! plugin rejects later — through one function as `file:line:column: key:
//! why` ([`Config::error_at`]). The sections read by lower crates are their
//! own types (`[plugins]`, `[store]`, `[watchers.NAME]`); the others are here.
//!
//! May depend on the crates whose section types it holds (docker,
//! kubernetes, store) and on oci (host patterns); never on the plugin runtime, the engine
//! or a front end.

mod channels;
mod credentials;
mod instance;
mod overrides;
mod plugins;
mod sections;
mod source;
mod watchers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

pub use channels::{BrokerAddress, MqttConfig, SecretText, SmtpConfig, SmtpTls};
pub use credentials::{CredentialsConfig, DockerCredentials};
pub use crowsnest_docker::WatcherConfig;
pub use crowsnest_store::StoreConfig;
pub use instance::{setting_text, HostKeys, PluginInstance};
pub use overrides::ENV_PREFIX;
pub use plugins::PluginsConfig;
pub use sections::{
    ActionConfig, AgentConfig, Mode, RegistryOptions, ScanConfig, ServerConfig, Threshold,
    TriggerOptions, DEFAULT_STRATEGY,
};
pub use source::{line_column, Source};
pub use watchers::KubernetesWatcherConfig;

/// A configuration problem: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}{}: {message}",
    file.display(),
    line.map(|l| format!(":{l}")).unwrap_or_default(),
    column.filter(|_| line.is_some()).map(|c| format!(":{c}")).unwrap_or_default(),
    key.as_ref().map(|k| format!(": {k}")).unwrap_or_default())]
pub struct ConfigError {
    /// The config file (or `<defaults>`, or the environment variable).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A `[registries.NAME]` entry.
pub type RegistryConfig = PluginInstance<RegistryOptions>;
/// A `[triggers.NAME]` entry.
pub type TriggerConfig = PluginInstance<TriggerOptions>;

/// The whole configuration, typed.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[registries.NAME]`.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// `[triggers.NAME]`.
    pub triggers: BTreeMap<String, TriggerConfig>,
    /// `[watchers.NAME]` (Docker hosts).
    pub watchers: BTreeMap<String, WatcherConfig>,
    /// `[watchers.NAME]` with `kind = "kubernetes"` (Kubernetes clusters).
    pub kubernetes_watchers: BTreeMap<String, KubernetesWatcherConfig>,
    /// `[actions.NAME]` (update actions).
    pub actions: BTreeMap<String, ActionConfig>,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[scan]`.
    pub scan: ScanConfig,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[credentials]`.
    pub credentials: CredentialsConfig,
    /// Docker's `config.json` as `[credentials]` found it, if any.
    pub docker_credentials: Option<DockerCredentials>,
    /// Where every value came from.
    source: Source,
}

/// The file as serde reads it: instance tables stay raw until their host keys
/// are split from the plugin's settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    plugins: PluginsConfig,
    #[serde(default)]
    registries: BTreeMap<String, toml::Table>,
    #[serde(default)]
    triggers: BTreeMap<String, toml::Table>,
    #[serde(default)]
    watchers: BTreeMap<String, WatcherConfig>,
    #[serde(default)]
    actions: BTreeMap<String, ActionConfig>,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    scan: ScanConfig,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    agent: AgentConfig,
    #[serde(default)]
    credentials: CredentialsConfig,
}

/// Where the configuration is read from: `--config`, else `$CROWSNEST_CONFIG`,
/// else `./config.toml` if present, else built-in defaults.
pub fn resolve_path(cli: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = cli {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("CROWSNEST_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from("config.toml");
    local.is_file().then_some(local)
}

impl Config {
    /// Load from `path` (or defaults), then apply the process's environment
    /// overrides and `*_file` secrets.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| key.starts_with(ENV_PREFIX))
            .collect();
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|err| ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                key: None,
                message: format!("cannot read: {err}"),
            })?,
            None => String::new(),
        };
        Self::parse(&text, path, &env)
    }

    /// Parse config `text` from `file` (`None`: built-in defaults); `env`
    /// holds `CROWSNEST__SECTION__KEY=value` overrides.
    pub fn parse(
        text: &str,
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut source = Source::new(file, text);
        let mut table = DeTable::parse(text)
            .map_err(|err| source.error(err.span(), None, err.message().trim()))?;
        let overrides = overrides::apply_env(table.get_mut(), env, &mut source)?;
        overrides::resolve_secret_files(table.get_mut(), &source)?;
        source.index(table.get_ref());
        let kubernetes_watchers = watchers::take_kubernetes(table.get_mut(), &source)?;
        let raw = loop {
            match RawConfig::deserialize(toml::de::Deserializer::from(table.clone())) {
                Ok(raw) => break raw,
                Err(err) => {
                    let retried = err.span().is_some_and(|span| {
                        err.message().starts_with("invalid type: string")
                            && overrides::retype(table.get_mut(), &overrides, &span)
                    });
                    if !retried {
                        return Err(source.error(err.span(), None, err.message().trim()));
                    }
                }
            }
        };
        let mut config = Config {
            plugins: raw.plugins,
            registries: BTreeMap::new(),
            triggers: BTreeMap::new(),
            watchers: raw.watchers,
            kubernetes_watchers: kubernetes_watchers.into_iter().collect(),
            actions: raw.actions,
            store: raw.store,
            scan: raw.scan,
            server: raw.server,
            agent: raw.agent,
            credentials: raw.credentials,
            docker_credentials: None,
            source,
        };
        if config.credentials.helper_timeout_secs == 0 {
            return Err(config.error_at(
                &["credentials", "helper_timeout_secs"],
                "must be at least 1 second",
            ));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
        let docker_config_dir = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty());
        config.docker_credentials = config
            .credentials
            .load_docker_config(
                home.as_deref().map(Path::new),
                docker_config_dir.as_deref().map(Path::new),
            )
            .map_err(|message| config.error_at(&["credentials", "docker_config"], message))?;
        for (name, table) in raw.registries {
            let instance = instance::split_instance(&config.source, "registries", &name, table)?;
            config.registries.insert(name, instance);
        }
        for (name, table) in raw.triggers {
            let instance = instance::split_instance(&config.source, "triggers", &name, table)?;
            config.triggers.insert(name, instance);
        }
        for (name, watcher) in &config.watchers {
            watcher
                .endpoint(name)
                .map_err(|err| config.error_at(&["watchers", name, "host"], err.to_string()))?;
        }
        Ok(config)
    }

    /// An error about `path` (e.g. `["registries", "hub", "url"]`): at its
    /// line and column when it is set, else at its table's.
    pub fn error_at(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        self.source.error_at(path, message)
    }

    /// Where this configuration came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The file it was read from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.source.file()
    }
}

#[cfg(test)]
mod tests;
