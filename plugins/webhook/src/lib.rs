//! `webhook`: delivers update events as JSON to an HTTP endpoint.
//!
//! `notify` sends one event object, `notify-batch` a JSON array of them
//! (keys in camelCase, as in the HTTP API), each with the rendered `title`
//! and `body` of the message. A non-2xx answer is an error naming the
//! status; 429 and 5xx are retried (honouring `Retry-After`), other 4xx not.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::Value;
use crowsnest_plugin_sdk::trigger::{
    event_to_json, exchange, Delivery, DeliveryError, Message, Trigger, UpdateEvent,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    timeout_ms: Option<u32>,
}

/// An event with the message rendered for it.
fn event_with_message(event: &UpdateEvent, message: &Message) -> Value {
    let mut json = event_to_json(event);
    if let Value::Object(object) = &mut json {
        object.insert("title".into(), message.title.clone().into());
        object.insert("body".into(), message.body.clone().into());
    }
    json
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

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let body = match delivery {
            Delivery::One(event) => event_with_message(event, message),
            Delivery::Batch(events) => Value::Array(
                events
                    .iter()
                    .map(|event| event_with_message(event, message))
                    .collect(),
            ),
        };
        let request = Request::new(&self.method, &self.url)
            .headers(self.headers.iter().cloned())
            .json(&body)
            .timeout_ms(self.timeout_ms);
        exchange("webhook", request).map(drop)
    }
}

crowsnest_plugin_sdk::export_trigger!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

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
    fn events_carry_the_message_in_camel_case() {
        let json = event_with_message(&event("web"), &message("New tag", "web 1.25 → 1.26"));
        assert_eq!(json["containerName"], "web");
        assert_eq!(json["semverDiff"], "minor");
        assert_eq!(json["remoteValue"], "1.26");
        assert_eq!(json["title"], "New tag");
        assert_eq!(json["body"], "web 1.25 → 1.26");
    }
}
