//! What the templates show: containers as table rows with counts, detected
//! updates, and configuration items as name/value lists.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde::Serialize;

use crate::server::PluginSummary;
use crowsnest_model::{CheckStatus, ContainerObject};
use crowsnest_store::UpdateHistoryEntry;

/// One container as a table row.
#[derive(Debug, Serialize)]
pub struct Row {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) watcher: String,
    pub(super) image: String,
    pub(super) registry: String,
    pub(super) current: String,
    pub(super) offered: String,
    /// `up-to-date`, `update`, `not-checked` or `error` (a CSS class and filter value).
    pub(super) status: &'static str,
    /// The status in words: `up to date`, `update: major`, `not checked`, `error`.
    pub(super) label: String,
    /// Why nothing was compared, or the error message.
    pub(super) detail: String,
    pub(super) stale: bool,
    pub(super) stale_note: String,
    pub(super) link: Option<String>,
    /// When it was last checked: RFC 3339 for machines (sorting, `<time>`)…
    pub(super) checked_at: String,
    /// …and to the second, in UTC, for people.
    pub(super) checked_label: String,
}

/// An RFC 3339 time as `2026-12-02 14:07:36 UTC`; other text as it is.
pub(super) fn readable_time(value: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| {
            time.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| value.to_owned())
}

/// A digest shortened for a table cell (`sha256:` and 12 hex digits).
fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", hex.get(..12).unwrap_or(hex)),
        None => value.to_owned(),
    }
}

impl Row {
    /// The row of `container`.
    pub fn new(container: &ContainerObject) -> Self {
        let check = &container.check;
        let update = container.update_kind.as_ref();
        let status = check.status.as_str();
        let label = match check.status {
            CheckStatus::Update => {
                let kind = update
                    .and_then(|kind| kind.semver_diff.clone())
                    .or_else(|| update.map(|kind| kind.kind.clone()))
                    .unwrap_or_else(|| "unknown".into());
                format!("update: {kind}")
            }
            other => other.as_str().replace('-', " "),
        };
        let detail = match check.status {
            CheckStatus::Error => container
                .error
                .as_ref()
                .map(|error| error.message.clone())
                .unwrap_or_default(),
            _ => check.reason.clone().unwrap_or_default(),
        };
        let current = container
            .image
            .tag
            .value
            .clone()
            .or_else(|| container.image.digest.value.as_deref().map(short))
            .unwrap_or_default();
        let offered = if container.update_available {
            update
                .and_then(|kind| kind.remote_value.as_deref())
                .map(short)
                .unwrap_or_default()
        } else {
            container
                .result
                .as_ref()
                .and_then(|result| result.tag.clone())
                .unwrap_or_default()
        };
        let registry = match container.image.registry.name.as_str() {
            "" => container
                .image
                .registry
                .lookup_image
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            name => name.to_owned(),
        };
        Self {
            id: container.id.clone(),
            name: container.display_name.clone(),
            watcher: container.watcher.clone(),
            image: container.image.reference.clone(),
            registry,
            current,
            offered,
            status,
            label,
            detail,
            stale: check.stale,
            stale_note: check.stale_note().trim().to_owned(),
            link: container
                .result
                .as_ref()
                .and_then(|result| result.link.clone()),
            checked_at: check.checked_at.clone().unwrap_or_default(),
            checked_label: check
                .checked_at
                .as_deref()
                .map(readable_time)
                .unwrap_or_default(),
        }
    }
}

/// Every row with the counts above the table and the filter choices.
#[derive(Debug, Serialize)]
pub struct Table {
    pub(super) rows: Vec<Row>,
    pub(super) total: usize,
    pub(super) updates: usize,
    pub(super) up_to_date: usize,
    pub(super) not_checked: usize,
    pub(super) errors: usize,
    pub(super) stale: usize,
    pub(super) watchers: BTreeSet<String>,
    pub(super) registries: BTreeSet<String>,
}

impl Table {
    /// The table of `containers`.
    pub fn new(containers: &[ContainerObject]) -> Self {
        let rows: Vec<Row> = containers.iter().map(Row::new).collect();
        let count = |status: &str| rows.iter().filter(|row| row.status == status).count();
        Self {
            total: rows.len(),
            updates: count("update"),
            up_to_date: count("up-to-date"),
            not_checked: count("not-checked"),
            errors: count("error"),
            stale: rows.iter().filter(|row| row.stale).count(),
            watchers: rows.iter().map(|row| row.watcher.clone()).collect(),
            registries: rows.iter().map(|row| row.registry.clone()).collect(),
            rows,
        }
    }
}

/// A detected update, as the history lists it.
#[derive(Debug, Serialize)]
pub struct Detected {
    pub(super) image: String,
    pub(super) kind: String,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) first_seen: String,
    pub(super) last_seen: String,
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The store's update history as the page lists it.
pub fn detected(entries: &[UpdateHistoryEntry]) -> Vec<Detected> {
    entries
        .iter()
        .map(|entry| Detected {
            image: entry.update.image.clone(),
            kind: entry.update.kind.clone(),
            from: short(&entry.update.local_value),
            to: short(&entry.update.remote_value),
            first_seen: rfc3339(entry.first_seen),
            last_seen: rfc3339(entry.last_seen),
        })
        .collect()
}

/// A configured thing (registry, trigger, watcher, plugin) as a name with fields.
#[derive(Debug, Serialize)]
pub struct Item {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) fields: Vec<(String, String)>,
}

/// A JSON value as one line of text (strings bare, the rest as JSON).
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// Fields of an object, nested objects flattened with dotted keys.
fn fields(prefix: &str, value: &serde_json::Value, into: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                fields(&key, value, into);
            }
        }
        other => into.push((prefix.to_owned(), text(other))),
    }
}

fn item(fallback_name: &str, value: &serde_json::Value) -> Item {
    let name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(fallback_name)
        .to_owned();
    let mut listed = Vec::new();
    fields("", value, &mut listed);
    listed.retain(|(key, _)| key != "name");
    Item {
        name,
        description: String::new(),
        fields: listed,
    }
}

/// Items from an array of objects (named by `name`) or an object of objects (named by key).
pub fn items_from_json(value: &serde_json::Value) -> Vec<Item> {
    match value {
        serde_json::Value::Array(values) => values
            .iter()
            .enumerate()
            .map(|(index, value)| item(&format!("#{}", index + 1), value))
            .collect(),
        serde_json::Value::Object(map) => map.iter().map(|(key, value)| item(key, value)).collect(),
        _ => Vec::new(),
    }
}

impl Item {
    /// A plugin with what its `describe()` said: kind, version, source, description, config keys.
    pub fn plugin(plugin: &PluginSummary) -> Self {
        let mut fields = vec![
            ("kind".to_owned(), plugin.kind.clone()),
            ("version".to_owned(), plugin.version.clone()),
            ("source".to_owned(), plugin.source.clone()),
        ];
        for key in plugin.config_keys.as_array().into_iter().flatten() {
            let name = key.get("name").map(text).unwrap_or_default();
            let mut about = key.get("description").map(text).unwrap_or_default();
            for flag in ["required", "secret"] {
                if key.get(flag).and_then(serde_json::Value::as_bool) == Some(true) {
                    about.push_str(&format!(" ({flag})"));
                }
            }
            fields.push((format!("config: {name}"), about));
        }
        Self {
            name: plugin.name.clone(),
            description: plugin.description.clone(),
            fields,
        }
    }
}
