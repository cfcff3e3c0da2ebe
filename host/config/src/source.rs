//! Where every value of the configuration came from: a span in the file's
//! text, or an environment variable. One index, built once from the parsed
//! document, answers both questions an error needs — "which key is at this
//! span?" and "where is this key?" — so every error names file, line, column
//! and key the same way.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::ConfigError;

/// A dotted key path, one element per table level: `["registries", "hub", "url"]`.
pub type KeyPath = Vec<String>;

/// Where one key and its value stand.
#[derive(Debug, Clone)]
struct Entry {
    key: Range<usize>,
    value: Range<usize>,
}

/// The configuration's origin: file text, environment overrides, span index.
#[derive(Debug, Clone, Default)]
pub struct Source {
    file: Option<PathBuf>,
    text: String,
    /// Names of the `CROWSNEST__…` variables applied, by the index of their
    /// virtual span (see [`Source::env_span`]).
    env: Vec<String>,
    entries: BTreeMap<KeyPath, Entry>,
}

impl Source {
    /// The origin of `text` read from `file` (`None`: built-in defaults).
    pub fn new(file: Option<&Path>, text: &str) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            text: text.to_string(),
            env: Vec::new(),
            entries: BTreeMap::new(),
        }
    }

    /// The file the configuration was read from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The file's name as shown in errors.
    pub fn file_label(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => "<defaults>".to_string(),
        }
    }

    /// A span that stands for the environment variable `name`: values set from
    /// the environment have no place in the file, so they get a span past its
    /// end whose offset says which variable set them.
    pub fn env_span(&mut self, name: &str) -> Range<usize> {
        let start = self.text.len() + 1 + self.env.len();
        self.env.push(name.to_string());
        start..start + 1
    }

    /// The environment variable a span stands for, if it is virtual.
    fn env_at(&self, span: &Range<usize>) -> Option<&str> {
        let index = span.start.checked_sub(self.text.len() + 1)?;
        self.env.get(index).map(String::as_str)
    }

    /// Index every key of `table` (called once the document is final).
    pub fn index(&mut self, table: &DeTable<'_>) {
        self.entries.clear();
        let mut path = Vec::new();
        index_table(&mut self.entries, &mut path, table);
    }

    /// The most specific key whose key or value covers `span`.
    pub fn path_at(&self, span: &Range<usize>) -> Option<KeyPath> {
        self.entries
            .iter()
            .filter(|(_, entry)| {
                covers(&entry.key, span) || covers(&entry.value, span) || entry.key == *span
            })
            .max_by_key(|(path, _)| path.len())
            .map(|(path, _)| path.clone())
    }

    /// Whether `path` is set (in the file or the environment).
    pub fn contains(&self, path: &[&str]) -> bool {
        self.entries.contains_key(&owned(path))
    }

    /// An error at `path`: at its value when it is set, else at the closest
    /// enclosing table that is (a missing key is reported at its table).
    pub fn error_at(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        let mut probe = owned(path);
        let span = loop {
            if let Some(entry) = self.entries.get(&probe) {
                break Some(entry.value.clone());
            }
            if probe.pop().is_none() {
                break None;
            }
        };
        self.error(span, Some(path.join(".")), message)
    }

    /// An error at `span` about `key` (found from the span when not given).
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let key = key.or_else(|| {
            span.as_ref()
                .and_then(|span| self.path_at(span))
                .map(|path| path.join("."))
        });
        let message = message.into();
        if let Some(variable) = span.as_ref().and_then(|span| self.env_at(span)) {
            return ConfigError {
                file: PathBuf::from(format!("environment variable {variable}")),
                line: None,
                column: None,
                key,
                message,
            };
        }
        let (line, column) = match span {
            Some(span) if span.start <= self.text.len() => {
                let (line, column) = line_column(&self.text, span.start);
                (Some(line), Some(column))
            }
            _ => (None, None),
        };
        ConfigError {
            file: PathBuf::from(self.file_label()),
            line,
            column,
            key,
            message,
        }
    }
}

fn owned(path: &[&str]) -> KeyPath {
    path.iter().map(|part| (*part).to_string()).collect()
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

fn index_table(entries: &mut BTreeMap<KeyPath, Entry>, path: &mut KeyPath, table: &DeTable<'_>) {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        entries.insert(
            path.clone(),
            Entry {
                key: key.span(),
                value: value.span(),
            },
        );
        if let DeValue::Table(inner) = value.get_ref() {
            index_table(entries, path, inner);
        }
        path.pop();
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}
