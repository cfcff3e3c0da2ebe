//! Changes made to the parsed document before it is read: environment
//! overrides (`CROWSNEST__SECTION__KEY=value`) and secrets read from files
//! (`password_file = "/run/secrets/pw"` becomes `password`).

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::source::Source;
use crate::ConfigError;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CROWSNEST__";

/// One environment override as applied: where it went and its text.
#[derive(Debug, Clone)]
pub struct EnvOverride<'a> {
    /// Its virtual span (see [`Source::env_span`]).
    pub span: Range<usize>,
    /// The value as given.
    pub text: &'a str,
}

/// Sets each `CROWSNEST__A__B=value` as `a.b = "value"`. Values are strings:
/// `1e3` stays `1e3` and `0x1F` stays `0x1F`; a key that needs a number or a
/// boolean gets one later through [`retype`].
pub fn apply_env<'a>(
    table: &mut DeTable<'a>,
    env: &'a [(String, String)],
    source: &mut Source,
) -> Result<Vec<EnvOverride<'a>>, ConfigError> {
    let mut applied = Vec::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let env_error = |message: &str| ConfigError {
            file: format!("environment variable {name}").into(),
            line: None,
            column: None,
            key: None,
            message: message.to_string(),
        };
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            return Err(env_error("empty key segment"));
        }
        let Some((last, parents)) = parts.split_last() else {
            return Err(env_error("no key"));
        };
        let span = source.env_span(name);
        let mut cursor = &mut *table;
        for part in parents {
            let key = Spanned::new(span.clone(), Cow::Owned(part.clone()));
            let entry = cursor
                .entry(key)
                .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
            cursor = match entry.get_mut() {
                DeValue::Table(inner) => inner,
                _ => return Err(env_error(&format!("`{part}` is not a table"))),
            };
        }
        cursor.insert(
            Spanned::new(span.clone(), Cow::Owned(last.clone())),
            Spanned::new(span.clone(), DeValue::String(Cow::Borrowed(value.as_str()))),
        );
        applied.push(EnvOverride {
            span,
            text: value.as_str(),
        });
    }
    Ok(applied)
}

/// After a key refused an environment string ("invalid type: string"), reads
/// the override at `span` as a TOML scalar (`250`, `true`, `1.5`) instead.
/// Returns whether anything changed, so the caller can try again.
pub fn retype<'a>(
    table: &mut DeTable<'a>,
    overrides: &[EnvOverride<'a>],
    span: &Range<usize>,
) -> bool {
    let Some(found) = overrides.iter().find(|o| o.span == *span) else {
        return false;
    };
    let scalar = match DeValue::parse(found.text).map(Spanned::into_inner) {
        Ok(value @ (DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_))) => value,
        _ => return false,
    };
    let mut scalar = Some(scalar);
    replace_at(table, span, &mut scalar);
    scalar.is_none()
}

fn replace_at<'a>(table: &mut DeTable<'a>, span: &Range<usize>, scalar: &mut Option<DeValue<'a>>) {
    for (_, value) in table.iter_mut() {
        if value.span() == *span && matches!(value.get_ref(), DeValue::String(_)) {
            if let Some(new) = scalar.take() {
                *value.get_mut() = new;
            }
            return;
        }
        if let DeValue::Table(inner) = value.get_mut() {
            replace_at(inner, span, scalar);
            if scalar.is_none() {
                return;
            }
        }
    }
}

/// Tables whose `X_file = "path"` keys are secrets read from files.
fn holds_secrets(path: &[&str]) -> bool {
    matches!(
        path,
        ["registries", _]
            | ["triggers", _]
            | ["triggers", _, "smtp" | "mqtt"]
            | ["watchers", _]
            | ["server"]
            | ["agent"]
    )
}

/// Replaces every `X_file = "path"` in the tables that hold secrets with
/// `X = <file content>` (trailing newline removed). The value keeps the
/// span of the `X_file` line, so errors about it point there.
pub fn resolve_secret_files(table: &mut DeTable<'_>, source: &Source) -> Result<(), ConfigError> {
    for (section, value) in table.iter_mut() {
        let section_name = section.get_ref().to_string();
        let DeValue::Table(inner) = value.get_mut() else {
            continue;
        };
        if holds_secrets(&[section_name.as_str()]) {
            resolve_in(inner, &[section_name.as_str()], source)?;
            continue;
        }
        for (name, instance) in inner.iter_mut() {
            let name = name.get_ref().to_string();
            if let DeValue::Table(instance) = instance.get_mut() {
                let path = [section_name.as_str(), name.as_str()];
                if holds_secrets(&path) {
                    resolve_in(instance, &path, source)?;
                }
                for (sub, table) in instance.iter_mut() {
                    let sub = sub.get_ref().to_string();
                    let path = [section_name.as_str(), name.as_str(), sub.as_str()];
                    if let (true, DeValue::Table(table)) = (holds_secrets(&path), table.get_mut()) {
                        resolve_in(table, &path, source)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn resolve_in(table: &mut DeTable<'_>, path: &[&str], source: &Source) -> Result<(), ConfigError> {
    let file_keys: Vec<String> = table
        .keys()
        .map(|key| key.get_ref().to_string())
        .filter(|key| key.ends_with("_file"))
        .collect();
    for file_key in file_keys {
        let target = file_key.trim_end_matches("_file").to_string();
        // A watcher's TLS files are paths, not secrets.
        if matches!(target.as_str(), "ca" | "cert" | "key") {
            continue;
        }
        let lookup = Spanned::new(0..0, Cow::Owned(file_key.clone()));
        let Some((key, value)) = table.remove_entry(&lookup) else {
            continue;
        };
        let mut key_path: Vec<&str> = path.to_vec();
        key_path.push(&file_key);
        let error =
            |message: String| source.error(Some(value.span()), Some(key_path.join(".")), message);
        let Some(file) = value.get_ref().as_str() else {
            return Err(error("must be a file path (string)".into()));
        };
        let secret = std::fs::read_to_string(file)
            .map_err(|err| error(format!("cannot read secret file {file}: {err}")))?;
        let secret = secret.trim_end_matches(['\n', '\r']).to_string();
        table.insert(
            Spanned::new(key.span(), Cow::Owned(target)),
            Spanned::new(value.span(), DeValue::String(Cow::Owned(secret))),
        );
    }
    Ok(())
}
