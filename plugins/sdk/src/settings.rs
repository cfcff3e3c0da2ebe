//! Typed access to the settings handed to `configure`.

use std::collections::BTreeMap;

use crate::url::HttpUrl;
use crate::{ConfigError, ConfigKey};

/// The settings of one plugin instance, validated against the plugin's
/// declared [`ConfigKey`]s: unknown keys, repeated keys and missing required
/// keys are rejected before the plugin's own `configure` runs.
///
/// Values arrive as the WIT contract says: strings as they are, numbers and
/// booleans as their TOML text, arrays and tables as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Validates `pairs` against the accepted keys.
    pub fn new(
        pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        accepted: &[ConfigKey],
    ) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for (key, value) in pairs {
            let (key, value): (String, String) = (key.into(), value.into());
            if !accepted.iter().any(|known| known.name == key) {
                let names: Vec<&str> = accepted.iter().map(|known| known.name.as_str()).collect();
                let message = if names.is_empty() {
                    "unknown setting; this plugin takes no settings".to_string()
                } else {
                    format!("unknown setting; accepted: {}", names.join(", "))
                };
                return Err(ConfigError::key(key, message));
            }
            if values.contains_key(&key) {
                return Err(ConfigError::key(key, "given more than once"));
            }
            values.insert(key, value);
        }
        for known in accepted.iter().filter(|known| known.required) {
            if values
                .get(&known.name)
                .is_none_or(|value| value.trim().is_empty())
            {
                return Err(ConfigError::key(&known.name, "required setting is missing"));
            }
        }
        Ok(Self { values })
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`, or `default` when unset.
    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// The value of `key`; an error naming the key when it is unset or blank.
    pub fn require(&self, key: &str) -> Result<&str, ConfigError> {
        match self.get(key) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ConfigError::key(key, "required setting is missing")),
        }
    }

    /// `key` as a boolean (`true`/`false`, also `yes`/`no`, `on`/`off`, `1`/`0`).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            _ => Err(ConfigError::key(
                key,
                format!("`{raw}` is not a boolean (true or false)"),
            )),
        }
    }

    /// `key` as a boolean, `default` when unset.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// `key` as a signed integer in TOML syntax (`1_000`, `+5`, `0x1f`, `0o17`, `0b101`).
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        parse_toml_integer(raw)
            .map(Some)
            .ok_or_else(|| ConfigError::key(key, format!("`{raw}` is not an integer")))
    }

    /// `key` as an unsigned 32-bit integer (e.g. a timeout in milliseconds).
    pub fn u32(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        let Some(value) = self.i64(key)? else {
            return Ok(None);
        };
        u32::try_from(value)
            .map(Some)
            .map_err(|_| ConfigError::key(key, format!("{value} is out of range 0..={}", u32::MAX)))
    }

    /// `key` as a JSON array of strings (a TOML array); empty when unset.
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(Vec::new());
        };
        serde_json::from_str::<Vec<String>>(raw)
            .map_err(|err| ConfigError::key(key, format!("expected an array of strings: {err}")))
    }

    /// `key` as a JSON object of string values (a TOML table), in key order; empty when unset.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(Vec::new());
        };
        let map = serde_json::from_str::<BTreeMap<String, String>>(raw)
            .map_err(|err| ConfigError::key(key, format!("expected a table of strings: {err}")))?;
        Ok(map.into_iter().collect())
    }

    /// `key` as an absolute `http://` or `https://` URL.
    pub fn http_url(&self, key: &str) -> Result<Option<HttpUrl>, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        HttpUrl::parse(raw)
            .map(Some)
            .map_err(|err| ConfigError::key(key, err.to_string()))
    }

    /// `key` as an `http(s)` URL; an error naming the key when unset.
    pub fn require_http_url(&self, key: &str) -> Result<HttpUrl, ConfigError> {
        self.require(key)?;
        self.http_url(key)?
            .ok_or_else(|| ConfigError::key(key, "required setting is missing"))
    }

    /// Every key that was set, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

fn parse_toml_integer(raw: &str) -> Option<i64> {
    let text = raw.trim().replace('_', "");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = digits.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = digits.strip_prefix("0b") {
        (2, binary)
    } else {
        (10, digits)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    if negative {
        magnitude.checked_neg()
    } else {
        Some(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("url", "registry URL"),
            ConfigKey::optional("insecure", "skip checks"),
            ConfigKey::optional("timeout_ms", "timeout"),
            ConfigKey::optional("mirrors", "mirror domains"),
            ConfigKey::optional("headers", "extra headers"),
        ]
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::new(pairs.iter().copied(), &keys())
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = settings(&[("url", "http://x"), ("colour", "red")]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("colour"));
        assert!(
            err.message.contains("accepted: url, insecure"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_required_key_is_rejected_by_name() {
        let err = settings(&[("insecure", "true")]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("url"));
        let blank = settings(&[("url", "  ")]).unwrap_err();
        assert_eq!(blank.key.as_deref(), Some("url"));
    }

    #[test]
    fn repeated_key_is_rejected() {
        let err = settings(&[("url", "http://a"), ("url", "http://b")]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("url"));
    }

    #[test]
    fn typed_getters_parse_toml_text() {
        let s = settings(&[
            ("url", "https://reg.example:5000/"),
            ("insecure", "true"),
            ("timeout_ms", "1_500"),
            ("mirrors", r#"["mirror.local:5000"]"#),
            ("headers", r#"{"X-Token":"abc"}"#),
        ])
        .unwrap();
        assert_eq!(s.bool("insecure").unwrap(), Some(true));
        assert_eq!(s.u32("timeout_ms").unwrap(), Some(1500));
        assert_eq!(s.string_list("mirrors").unwrap(), vec!["mirror.local:5000"]);
        assert_eq!(
            s.string_map("headers").unwrap(),
            vec![("X-Token".to_string(), "abc".to_string())]
        );
        assert_eq!(
            s.require_http_url("url").unwrap().authority(),
            "reg.example:5000"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let s = settings(&[
            ("url", "ftp://x"),
            ("insecure", "maybe"),
            ("timeout_ms", "-1"),
            ("mirrors", "mirror.local"),
        ])
        .unwrap();
        assert_eq!(
            s.bool("insecure").unwrap_err().key.as_deref(),
            Some("insecure")
        );
        assert_eq!(
            s.u32("timeout_ms").unwrap_err().key.as_deref(),
            Some("timeout_ms")
        );
        assert_eq!(
            s.string_list("mirrors").unwrap_err().key.as_deref(),
            Some("mirrors")
        );
        assert_eq!(s.http_url("url").unwrap_err().key.as_deref(), Some("url"));
    }

    #[test]
    fn toml_integer_forms() {
        assert_eq!(parse_toml_integer("+42"), Some(42));
        assert_eq!(parse_toml_integer("-7"), Some(-7));
        assert_eq!(parse_toml_integer("0xff"), Some(255));
        assert_eq!(parse_toml_integer("0b101"), Some(5));
        assert_eq!(parse_toml_integer("--1"), None);
        assert_eq!(parse_toml_integer("1.5"), None);
        assert_eq!(parse_toml_integer(""), None);
    }
}
