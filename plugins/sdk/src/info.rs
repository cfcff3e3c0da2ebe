//! World-independent descriptions and errors shared by every plugin kind.

use std::fmt;

/// What a plugin says about itself in `describe()`; the kind follows from the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Unique plugin name, e.g. `oci`; `[registries.X] plugin = "oci"` refers to it.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Settings accepted by `configure`; any other key is rejected.
    pub config_keys: Vec<ConfigKey>,
}

impl PluginInfo {
    /// Starts a description with no settings.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_keys: Vec::new(),
        }
    }

    /// Adds an accepted setting.
    pub fn key(mut self, key: ConfigKey) -> Self {
        self.config_keys.push(key);
        self
    }
}

/// One setting a plugin accepts in its `config.toml` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// Key as written in config.toml, e.g. `url`.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// Must be present.
    pub required: bool,
    /// Masked whenever the host shows configuration.
    pub secret: bool,
}

impl ConfigKey {
    /// An optional, non-secret setting.
    pub fn optional(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            required: false,
            secret: false,
        }
    }

    /// A required, non-secret setting.
    pub fn required(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            required: true,
            ..Self::optional(name, description)
        }
    }

    /// Marks the setting as secret (masked by the host).
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// A rejected configuration: which key (if one) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key, when the problem is about one key.
    pub key: Option<String>,
    /// Why the configuration was rejected.
    pub message: String,
}

impl ConfigError {
    /// An error about one key.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// An error about the configuration as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "setting `{key}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}
