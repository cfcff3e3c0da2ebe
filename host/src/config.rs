//! `config.toml`: loading, defaults, `CROWSNEST__…` environment overrides,
//! `*_file` secrets, and errors that name file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration problem: where, which key, what.
#[derive(Debug, thiserror::Error)]
#[error("{}{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!(": key `{k}`")).unwrap_or_default())]
pub struct ConfigError {
    /// The config file (or `<defaults>` / `<environment>`).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[plugins]`.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// `[registries.NAME]`.
    #[serde(default)]
    pub registries: BTreeMap<String, PluginInstanceConfig>,
    /// `[triggers.NAME]`.
    #[serde(default)]
    pub triggers: BTreeMap<String, PluginInstanceConfig>,
    /// `[watchers.NAME]` (Docker hosts), kept as tables for the discovery module.
    #[serde(default)]
    pub watchers: BTreeMap<String, toml::Table>,
    /// `[store]`.
    #[serde(default)]
    pub store: toml::Table,
    /// `[scan]`.
    #[serde(default)]
    pub scan: toml::Table,
    /// `[server]`.
    #[serde(default)]
    pub server: toml::Table,
    /// Where this configuration came from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[plugins]`: drop-in directory, cache and sandbox limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory of drop-in `*.wasm` plugins.
    pub dir: PathBuf,
    /// Compiled-component cache directory (default: the user cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Linear memory per plugin instance, MiB.
    pub memory_limit_mib: u32,
    /// Guest CPU time per call, milliseconds.
    pub cpu_limit_ms: u64,
    /// Concurrent instances per configured registry plugin.
    pub instances: usize,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./plugins.d"),
            cache_dir: None,
            memory_limit_mib: 64,
            cpu_limit_ms: 1000,
            instances: 4,
        }
    }
}

impl PluginsConfig {
    /// The sandbox limits these settings describe.
    pub fn sandbox_limits(&self) -> crate::plugin::SandboxLimits {
        crate::plugin::SandboxLimits {
            memory_bytes: (self.memory_limit_mib as usize) << 20,
            cpu_per_call: std::time::Duration::from_millis(self.cpu_limit_ms),
            ..Default::default()
        }
    }
}

/// A configured plugin instance: `plugin = "NAME"` plus its settings.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginInstanceConfig {
    /// Which plugin serves this instance.
    pub plugin: String,
    /// Everything else: host keys (e.g. `strategy`, `concurrency`, `threshold`)
    /// and the plugin's own settings, validated by its `configure`.
    #[serde(flatten)]
    pub settings: BTreeMap<String, toml::Value>,
}

impl PluginInstanceConfig {
    /// The plugin's settings, minus `host_keys`, as (key, value) text pairs:
    /// strings as is, numbers and booleans as TOML text, arrays and tables as JSON.
    pub fn plugin_settings(&self, host_keys: &[&str]) -> Vec<(String, String)> {
        self.settings
            .iter()
            .filter(|(key, _)| !host_keys.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), setting_text(value)))
            .collect()
    }

    /// A string setting.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(toml::Value::as_str)
    }
}

/// A TOML value as the text a plugin's `configure` receives.
pub fn setting_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_) => value.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            serde_json::to_string(value).unwrap_or_default()
        }
    }
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
    /// Load from `path` (or defaults), then apply environment overrides and `*_file` secrets.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("CROWSNEST__"))
            .collect();
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
                    file: path.to_path_buf(),
                    line: None,
                    key: None,
                    message: format!("cannot read: {err}"),
                })?;
                Self::parse(&text, path, &env)
            }
            None => Self::parse("", Path::new("<defaults>"), &env),
        }
    }

    /// Parse config text; `env` holds `CROWSNEST__SECTION__KEY=value` overrides.
    pub fn parse(text: &str, file: &Path, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| toml_error(text, file, &err))?;
        apply_env(&mut table, env)?;
        resolve_secret_files(&mut table, text, file)?;
        let mut config: Config = Config::deserialize(table).map_err(|err| {
            let message = err.message().to_string();
            let key = unknown_field(&message);
            ConfigError {
                file: file.to_path_buf(),
                line: key.as_deref().and_then(|k| find_key_line(text, None, k)),
                key,
                message,
            }
        })?;
        config.source = Some(file.to_path_buf());
        for (section, instances) in [
            ("registries", &config.registries),
            ("triggers", &config.triggers),
        ] {
            for (name, instance) in instances {
                if instance.plugin.trim().is_empty() {
                    return Err(config.error_at(
                        text,
                        section,
                        name,
                        "plugin",
                        "must name a plugin",
                    ));
                }
            }
        }
        Ok(config)
    }

    /// An error pointing at `[section.name] key` in `text`.
    pub fn error_at(
        &self,
        text: &str,
        section: &str,
        name: &str,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let header = format!("{section}.{name}");
        ConfigError {
            file: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<defaults>")),
            line: find_key_line(text, Some(&header), key)
                .or_else(|| find_header_line(text, &header)),
            key: Some(format!("{header}.{key}")),
            message: message.into(),
        }
    }
}

fn toml_error(text: &str, file: &Path, err: &toml::de::Error) -> ConfigError {
    let line = err.span().map(|span| line_of(text, span.start));
    ConfigError {
        file: file.to_path_buf(),
        line,
        key: None,
        message: err.message().trim().to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Line of `[header]` (exact table header).
fn find_header_line(text: &str, header: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                == header
                && line.trim().starts_with('[')
        })
        .map(|idx| idx + 1)
}

/// Line where `key = …` is set inside `[header]` (or anywhere when `header` is None).
fn find_key_line(text: &str, header: Option<&str>, key: &str) -> Option<usize> {
    let mut in_section = header.is_none();
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let name = trimmed.trim_start_matches('[').trim_end_matches(']').trim();
            in_section = header.is_none_or(|h| h == name);
            if header.is_none() && name.rsplit('.').next() == Some(key) {
                return Some(idx + 1);
            }
            continue;
        }
        if in_section {
            if let Some((lhs, _)) = trimmed.split_once('=') {
                if lhs.trim().trim_matches('"') == key {
                    return Some(idx + 1);
                }
            }
        }
    }
    None
}

/// `CROWSNEST__REGISTRIES__HUB__PASSWORD=x` sets `registries.hub.password`.
/// Values that parse as TOML scalars (true, 42) keep their type; others are strings.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(path) = name.strip_prefix("CROWSNEST__") else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let env_error = |message: String| ConfigError {
            file: PathBuf::from("<environment>"),
            line: None,
            key: Some(name.clone()),
            message,
        };
        if parts.iter().any(String::is_empty) {
            return Err(env_error("empty key segment".into()));
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !matches!(v, toml::Value::Table(_)))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let (last, parents) = parts
            .split_last()
            .ok_or_else(|| env_error("no key".into()))?;
        let mut cursor = &mut *table;
        for part in parents {
            let entry = cursor
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry
                .as_table_mut()
                .ok_or_else(|| env_error(format!("`{part}` is not a table")))?;
        }
        cursor.insert(last.clone(), parsed);
    }
    Ok(())
}

/// In plugin instance and server tables, `X_file = "path"` becomes `X = <file content>`.
fn resolve_secret_files(
    table: &mut toml::Table,
    text: &str,
    file: &Path,
) -> Result<(), ConfigError> {
    let mut sections: Vec<(String, &mut toml::Table)> = Vec::new();
    for (section, value) in table.iter_mut() {
        let Some(inner) = value.as_table_mut() else {
            continue;
        };
        match section.as_str() {
            "registries" | "triggers" | "watchers" => {
                for (name, instance) in inner.iter_mut() {
                    if let Some(instance) = instance.as_table_mut() {
                        sections.push((format!("{section}.{name}"), instance));
                    }
                }
            }
            "server" => sections.push((section.clone(), inner)),
            _ => {}
        }
    }
    for (header, instance) in sections {
        let file_keys: Vec<String> = instance
            .keys()
            .filter(|k| k.ends_with("_file"))
            .cloned()
            .collect();
        for file_key in file_keys {
            let target = file_key.trim_end_matches("_file").to_string();
            if matches!(target.as_str(), "ca" | "cert" | "key") {
                continue;
            }
            let error = |message: String| ConfigError {
                file: file.to_path_buf(),
                line: find_key_line(text, Some(&header), &file_key),
                key: Some(format!("{header}.{file_key}")),
                message,
            };
            let Some(path) = instance
                .get(&file_key)
                .and_then(toml::Value::as_str)
                .map(PathBuf::from)
            else {
                return Err(error("must be a file path (string)".into()));
            };
            let secret = std::fs::read_to_string(&path).map_err(|err| {
                error(format!("cannot read secret file {}: {err}", path.display()))
            })?;
            instance.remove(&file_key);
            instance.insert(
                target,
                toml::Value::String(secret.trim_end_matches(['\n', '\r']).to_string()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("config.toml"), &[])
    }

    #[test]
    fn defaults_when_empty() {
        let config = parse("").unwrap();
        assert_eq!(config.plugins.dir, PathBuf::from("./plugins.d"));
        assert_eq!(config.plugins.memory_limit_mib, 64);
        assert!(config.registries.is_empty());
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse("[plugins]\ndir = \"x\"\nbroken =\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().starts_with("config.toml:3"), "{err}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[plugins]\ndir = \"x\"\nmemory_limit = 3\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("memory_limit"));
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn plugin_instance_settings_as_text() {
        let config = parse(
            "[registries.local]\nplugin = \"oci\"\nurl = \"http://127.0.0.1:5000\"\ninsecure = true\nmirrors = [\"a:1\"]\n",
        )
        .unwrap();
        let local = &config.registries["local"];
        assert_eq!(local.plugin, "oci");
        let settings = local.plugin_settings(&["strategy"]);
        assert!(settings.contains(&("url".into(), "http://127.0.0.1:5000".into())));
        assert!(settings.contains(&("insecure".into(), "true".into())));
        assert!(settings.contains(&("mirrors".into(), "[\"a:1\"]".into())));
    }

    #[test]
    fn env_overrides_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = format!(
            "[registries.priv]\nplugin = \"oci\"\npassword_file = \"{}\"\n",
            secret.display()
        );
        let env = vec![
            (
                "CROWSNEST__REGISTRIES__PRIV__USERNAME".to_string(),
                "alice".to_string(),
            ),
            (
                "CROWSNEST__PLUGINS__CPU_LIMIT_MS".to_string(),
                "250".to_string(),
            ),
        ];
        let config = Config::parse(&text, Path::new("c.toml"), &env).unwrap();
        assert_eq!(
            config.registries["priv"].get_str("password"),
            Some("s3cret")
        );
        assert_eq!(config.registries["priv"].get_str("username"), Some("alice"));
        assert_eq!(config.plugins.cpu_limit_ms, 250);
    }

    #[test]
    fn missing_secret_file_names_key() {
        let err = parse("[registries.p]\nplugin = \"oci\"\npassword_file = \"/nonexistent/pw\"\n")
            .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("registries.p.password_file"));
        assert_eq!(err.line, Some(3));
    }
}
