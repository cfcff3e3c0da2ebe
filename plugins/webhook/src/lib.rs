//! `webhook`: delivers update events as JSON to an HTTP endpoint.
//!
//! `notify` sends one event object, `notify-batch` a JSON array of them
//! (keys in camelCase, as in the HTTP API). A non-2xx answer is an error
//! naming the status.

use crowsnest_plugin_sdk::http::{HttpError, Request};
use crowsnest_plugin_sdk::serde_json::Value;
use crowsnest_plugin_sdk::trigger::{event_to_json, Trigger, UpdateEvent};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    timeout_ms: Option<u32>,
}

impl Webhook {
    fn deliver(&self, body: &Value) -> Result<(), String> {
        let request = Request::new(&self.method, &self.url)
            .headers(self.headers.iter().cloned())
            .json(body)
            .timeout_ms(self.timeout_ms);
        request
            .send()
            .and_then(|response| response.error_for_status())
            .map(drop)
            .map_err(|err| match err {
                HttpError::Status { status, .. } => {
                    format!(
                        "webhook {} {} answered HTTP {status}",
                        self.method, self.url
                    )
                }
                other => format!("webhook {} {} failed: {other}", self.method, self.url),
            })
    }
}

/// Accepts a method token such as `POST` or `PUT` (uppercased).
fn parse_method(raw: &str) -> Result<String, ConfigError> {
    let method = raw.trim().to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ConfigError::key(
            "method",
            format!("`{raw}` is not an HTTP method"),
        ));
    }
    Ok(method)
}

impl Trigger for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "POSTs update events as JSON to a URL",
        )
        .key(ConfigKey::required("url", "Endpoint URL (http:// or https://)").secret())
        .key(ConfigKey::optional("method", "HTTP method (default POST)"))
        .key(ConfigKey::optional("headers", "Extra headers, a table of strings").secret())
        .key(ConfigKey::optional(
            "timeout_ms",
            "Request timeout in milliseconds",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            url: settings.require_http_url("url")?.as_string(),
            method: parse_method(&settings.string_or("method", "POST"))?,
            headers: settings.string_map("headers")?,
            timeout_ms: settings.u32("timeout_ms")?,
        })
    }

    fn notify(&self, event: &UpdateEvent) -> Result<(), String> {
        self.deliver(&event_to_json(event))
    }

    fn notify_batch(&self, events: &[UpdateEvent]) -> Result<(), String> {
        self.deliver(&Value::Array(events.iter().map(event_to_json).collect()))
    }
}

crowsnest_plugin_sdk::export_trigger!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;

    fn configured(pairs: &[(&str, &str)]) -> Result<Webhook, ConfigError> {
        configure_from(pairs.iter().copied())
    }

    #[test]
    fn reads_all_settings() {
        let hook = configured(&[
            ("url", "http://127.0.0.1:8080/hook?x=1"),
            ("method", "put"),
            ("headers", r#"{"Authorization":"Bearer t"}"#),
            ("timeout_ms", "2500"),
        ])
        .unwrap();
        assert_eq!(
            hook,
            Webhook {
                url: "http://127.0.0.1:8080/hook?x=1".to_string(),
                method: "PUT".to_string(),
                headers: vec![("Authorization".to_string(), "Bearer t".to_string())],
                timeout_ms: Some(2500),
            }
        );
    }

    #[test]
    fn defaults_to_post_without_timeout() {
        let hook = configured(&[("url", "https://hooks.example/x")]).unwrap();
        assert_eq!(hook.method, "POST");
        assert_eq!(hook.timeout_ms, None);
        assert!(hook.headers.is_empty());
    }

    #[test]
    fn rejects_bad_settings_by_key() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "url"),
            (&[("url", "hooks.example")], "url"),
            (&[("url", "http://h"), ("method", "PO ST")], "method"),
            (&[("url", "http://h"), ("headers", "[1]")], "headers"),
            (&[("url", "http://h"), ("timeout_ms", "soon")], "timeout_ms"),
        ];
        for (pairs, key) in cases {
            assert_eq!(
                configured(pairs).unwrap_err().key.as_deref(),
                Some(key),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn events_serialise_in_camel_case() {
        let event = UpdateEvent {
            container_id: "abc".to_string(),
            container_name: "web".to_string(),
            watcher: "local".to_string(),
            image: "nginx:1.25".to_string(),
            kind: "tag".to_string(),
            semver_diff: Some("minor".to_string()),
            local_value: "1.25".to_string(),
            remote_value: "1.26".to_string(),
            link: None,
        };
        let json = event_to_json(&event);
        assert_eq!(json["containerName"], "web");
        assert_eq!(json["semverDiff"], "minor");
        assert_eq!(json["remoteValue"], "1.26");
        assert!(json["link"].is_null());
    }
}
