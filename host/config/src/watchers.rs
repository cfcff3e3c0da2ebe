//! `[watchers.NAME]` of every kind: `kind = "docker"` (the default) is read
//! by crowsnest-docker's `WatcherConfig`, `kind = "kubernetes"` by
//! crowsnest-kubernetes's `KubernetesWatcherConfig`. The `kind` key is read
//! and removed here, before serde sees the tables, so each kind's own
//! struct keeps rejecting unknown keys and every error keeps its span.

use std::borrow::Cow;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::source::Source;
use crate::ConfigError;

pub use crowsnest_kubernetes::KubernetesWatcherConfig;

/// The watcher kinds, as `kind` names them.
const KINDS: &str = "docker, kubernetes";

/// Takes the `kind = "kubernetes"` watchers out of `root`'s `[watchers]`
/// (the Docker ones stay for `RawConfig`), dropping every `kind` key, and
/// reads them. An unknown kind is an error at its key.
pub(crate) fn take_kubernetes(
    root: &mut DeTable<'_>,
    source: &Source,
) -> Result<Vec<(String, KubernetesWatcherConfig)>, ConfigError> {
    let lookup = |key: &str| Spanned::new(0..0, Cow::Owned(key.to_owned()));
    let Some(watchers) = root.get_mut(&lookup("watchers")) else {
        return Ok(Vec::new());
    };
    let DeValue::Table(watchers) = watchers.get_mut() else {
        // Not a table: serde reports it with its span.
        return Ok(Vec::new());
    };
    let mut kubernetes = Vec::new();
    let names: Vec<String> = watchers
        .keys()
        .map(|key| key.get_ref().to_string())
        .collect();
    for name in names {
        let Some(entry) = watchers.get_mut(&lookup(&name)) else {
            continue;
        };
        let DeValue::Table(table) = entry.get_mut() else {
            continue;
        };
        let kind = match table.remove(&lookup("kind")).map(Spanned::into_inner) {
            None => "docker".to_owned(),
            Some(DeValue::String(kind)) => kind.trim().to_ascii_lowercase(),
            Some(_) => {
                return Err(source.error_at(
                    &["watchers", &name, "kind"],
                    format!("must be a string naming the watcher kind ({KINDS})"),
                ))
            }
        };
        match kind.as_str() {
            "docker" => {}
            "kubernetes" => {
                let Some((_, value)) = watchers.remove_entry(&lookup(&name)) else {
                    continue;
                };
                let span = value.span();
                let DeValue::Table(table) = value.into_inner() else {
                    continue;
                };
                let deserializer = toml::de::Deserializer::from(Spanned::new(span, table));
                let config = KubernetesWatcherConfig::deserialize(deserializer)
                    .map_err(|err| source.error(err.span(), None, err.message().trim()))?;
                config
                    .validate()
                    .map_err(|(key, why)| source.error_at(&["watchers", &name, key], why))?;
                kubernetes.push((name, config));
            }
            other => {
                return Err(source.error_at(
                    &["watchers", &name, "kind"],
                    format!("`{other}` is not a watcher kind ({KINDS})"),
                ))
            }
        }
    }
    Ok(kubernetes)
}
