//! A configured plugin instance (`[registries.NAME]`, `[triggers.NAME]`):
//! `plugin = "NAME"`, the keys the host reads itself (typed, per section),
//! and everything else, handed to the plugin's `configure` as text.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::source::Source;
use crate::ConfigError;

/// A configured plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInstance<H> {
    /// Which plugin serves this instance.
    pub plugin: String,
    /// The keys the host reads itself.
    pub host: H,
    /// The plugin's own settings, validated by its `configure`.
    pub settings: BTreeMap<String, toml::Value>,
}

impl<H: Default> PluginInstance<H> {
    /// An instance of `plugin` with default host keys and the given settings.
    pub fn new(plugin: impl Into<String>, settings: BTreeMap<String, toml::Value>) -> Self {
        Self {
            plugin: plugin.into(),
            host: H::default(),
            settings,
        }
    }
}

impl<H> PluginInstance<H> {
    /// The plugin's settings as (key, value) text pairs: strings as they are,
    /// numbers and booleans as TOML text, arrays and tables as JSON.
    pub fn plugin_settings(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(key, value)| (key.clone(), setting_text(value)))
            .collect()
    }

    /// A string setting of the plugin's (e.g. `url`).
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

/// The host keys of a plugin instance section: a serde struct whose field
/// names are the keys (no hand-kept list), plus the checks serde cannot make.
pub trait HostKeys: DeserializeOwned + Default {
    /// Checks values serde cannot: the offending key and why.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// `{key = value}` as a table.
fn single_key(key: &str, value: toml::Value) -> toml::Value {
    let mut single = toml::Table::new();
    single.insert(key.to_string(), value);
    toml::Value::Table(single)
}

/// Splits the raw table of `[section.name]` into plugin, host keys and
/// plugin settings. Each host key is read on its own first, so a bad one is
/// reported at its own line.
pub(crate) fn split_instance<H: HostKeys>(
    source: &Source,
    section: &str,
    name: &str,
    mut table: toml::Table,
) -> Result<PluginInstance<H>, ConfigError> {
    // A key may be dotted (`smtp.host`): a key of a sub-table.
    let at = |key: &str, message: String| {
        let mut path = vec![section, name];
        path.extend(key.split('.'));
        source.error_at(&path, message)
    };
    let plugin = match table.remove("plugin") {
        Some(toml::Value::String(plugin)) if !plugin.trim().is_empty() => plugin,
        Some(toml::Value::String(_)) => return Err(at("plugin", "must name a plugin".into())),
        Some(_) => return Err(at("plugin", "must be a string naming a plugin".into())),
        None => {
            return Err(at(
                "plugin",
                "missing: every instance names its `plugin`".into(),
            ))
        }
    };
    let host_names = serde_aux::serde_introspection::serde_introspect::<H>();
    let mut host_table = toml::Table::new();
    for key in host_names {
        if let Some(value) = table.remove(*key) {
            if let Err(err) = H::deserialize(single_key(key, value.clone())) {
                // In a sub-table (`[triggers.NAME.smtp]`), blame the key inside it.
                let inner = value
                    .as_table()
                    .into_iter()
                    .flatten()
                    .find_map(|(inner, v)| {
                        let mut one = toml::Table::new();
                        one.insert(inner.clone(), v.clone());
                        H::deserialize(single_key(key, toml::Value::Table(one)))
                            .err()
                            .map(|err| (format!("{key}.{inner}"), err))
                    });
                return Err(match inner {
                    Some((path, err)) => at(&path, err.message().trim().to_string()),
                    None => at(key, err.message().trim().to_string()),
                });
            }
            host_table.insert((*key).to_string(), value);
        }
    }
    let host = H::deserialize(toml::Value::Table(host_table))
        .map_err(|err| source.error_at(&[section, name], err.message().trim().to_string()))?;
    host.validate().map_err(|(key, message)| at(key, message))?;
    Ok(PluginInstance {
        plugin,
        host,
        settings: table.into_iter().collect(),
    })
}
