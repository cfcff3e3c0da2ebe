//! `pushover`: `POST {url}/1/messages.json` with the application token and
//! the user (or group) key, `{title, message, priority, …}`. Answered
//! `{"status": 1, "request"}`, or a 4xx `{"status": 0, "errors": […]}`.
//! Priority 2 (emergency) needs `retry` (≥ 30 s) and `expire`.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    check_status, http_failure, truncate, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Pushover's limits: title and message.
const MAX_TITLE: usize = 250;
const MAX_MESSAGE: usize = 1024;

/// One configured Pushover application and recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushover {
    base: String,
    token: String,
    user: String,
    device: Option<String>,
    priority: Option<i64>,
    sound: Option<String>,
    retry: Option<i64>,
    expire: Option<i64>,
    ttl: Option<i64>,
    html: bool,
}

impl Pushover {
    fn body(&self, message: &Message, delivery: Delivery<'_>) -> Value {
        let mut body = json!({
            "token": self.token,
            "user": self.user,
            "title": truncate(&message.title, MAX_TITLE),
            "message": truncate(&message.body, MAX_MESSAGE),
        });
        let optional = [
            ("device", self.device.clone().map(Value::from)),
            ("priority", self.priority.map(Value::from)),
            ("sound", self.sound.clone().map(Value::from)),
            ("retry", self.retry.map(Value::from)),
            ("expire", self.expire.map(Value::from)),
            ("ttl", self.ttl.map(Value::from)),
            ("html", self.html.then_some(Value::from(1))),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        if let Delivery::One(event) = delivery {
            if let Some(link) = &event.link {
                body["url"] = link.clone().into();
                body["url_title"] = "Release notes".into();
            }
        }
        body
    }
}

impl Trigger for Pushover {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "pushover",
            env!("CARGO_PKG_VERSION"),
            "Sends a Pushover notification",
        )
        .key(ConfigKey::required("token", "Application API token").secret())
        .key(ConfigKey::required("user", "User or group key").secret())
        .key(ConfigKey::optional(
            "url",
            "API base URL (default https://api.pushover.net)",
        ))
        .key(ConfigKey::optional("device", "Only this device"))
        .key(ConfigKey::optional("priority", "-2 to 2"))
        .key(ConfigKey::optional("sound", "Notification sound"))
        .key(ConfigKey::optional(
            "retry",
            "Priority 2: seconds between repeats (≥ 30)",
        ))
        .key(ConfigKey::optional(
            "expire",
            "Priority 2: seconds to keep repeating",
        ))
        .key(ConfigKey::optional(
            "ttl",
            "Seconds before the message is deleted",
        ))
        .key(ConfigKey::optional("html", "The body is HTML (true/false)"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let priority = settings.i64("priority")?;
        if priority.is_some_and(|p| !(-2..=2).contains(&p)) {
            return Err(ConfigError::key("priority", "must be from -2 to 2"));
        }
        let retry = settings.i64("retry")?;
        let expire = settings.i64("expire")?;
        if priority == Some(2) {
            if retry.is_none_or(|r| r < 30) {
                return Err(ConfigError::key(
                    "retry",
                    "priority 2 needs retry of at least 30 seconds",
                ));
            }
            if expire.is_none() {
                return Err(ConfigError::key("expire", "priority 2 needs expire"));
            }
        }
        Ok(Self {
            base: settings.http_url("url")?.map_or_else(
                || "https://api.pushover.net".to_string(),
                |url| url.registry_base(),
            ),
            token: settings.require("token")?.trim().to_string(),
            user: settings.require("user")?.trim().to_string(),
            device: settings.get("device").map(str::to_string),
            priority,
            sound: settings.get("sound").map(str::to_string),
            retry,
            expire,
            ttl: settings.i64("ttl")?,
            html: settings.bool_or("html", false)?,
        })
    }

    fn format(&self) -> TextFormat {
        if self.html {
            TextFormat::Html
        } else {
            TextFormat::Plain
        }
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let response = Request::post(format!("{}/1/messages.json", self.base))
            .json(&self.body(message, delivery))
            .send()
            .map_err(|err| http_failure("pushover", err))?;
        let body = response.json().ok();
        let errors = body
            .as_ref()
            .and_then(|body| body["errors"].as_array())
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            });
        let status = response.status;
        let response = check_status("pushover", response).map_err(|mut err| {
            if let Some(errors) = &errors {
                err.message = format!("pushover answered HTTP status {status}: {errors}");
            }
            err
        })?;
        drop(response);
        match body.as_ref().and_then(|body| body["status"].as_i64()) {
            Some(1) => Ok(()),
            _ => Err(DeliveryError::permanent(format!(
                "pushover did not accept the message: {}",
                errors.unwrap_or_else(|| "no status 1 in its answer".into())
            ))),
        }
    }
}

crowsnest_plugin_sdk::export_trigger!(Pushover);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn form_of_the_message() {
        let pushover: Pushover = configure_from([
            ("token", "a1"),
            ("user", "u1"),
            ("priority", "1"),
            ("sound", "magic"),
        ])
        .unwrap();
        let body = pushover.body(&message("T", "B"), Delivery::One(&event("web")));
        assert_eq!(
            body,
            json!({"token": "a1", "user": "u1", "title": "T", "message": "B", "priority": 1,
                   "sound": "magic", "url": "https://example.test/releases/1.26", "url_title": "Release notes"})
        );
    }

    #[test]
    fn emergency_priority_needs_retry_and_expire() {
        let base = [("token", "a"), ("user", "u"), ("priority", "2")];
        assert_eq!(
            configure_from::<Pushover>(base).unwrap_err().key.as_deref(),
            Some("retry")
        );
        let err =
            configure_from::<Pushover>(base.into_iter().chain([("retry", "60")])).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("expire"));
        assert_eq!(
            configure_from::<Pushover>([("token", "a"), ("user", "u"), ("priority", "3")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("priority")
        );
    }
}
