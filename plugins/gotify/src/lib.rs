//! `gotify`: posts to a Gotify server: `POST {url}/message` with the
//! application token in `X-Gotify-Key` (never in the URL, where logs keep
//! it) and `{title, message, priority, extras}`.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    exchange, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured Gotify application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gotify {
    base: String,
    token: String,
    priority: i64,
    markdown: bool,
}

impl Gotify {
    fn body(&self, message: &Message, delivery: Delivery<'_>) -> Value {
        let mut body = json!({
            "title": message.title,
            "message": message.body,
            "priority": self.priority,
        });
        let mut extras = json!({});
        if self.markdown {
            extras["client::display"] = json!({"contentType": "text/markdown"});
        }
        if let Delivery::One(event) = delivery {
            if let Some(link) = &event.link {
                extras["client::notification"] = json!({"click": {"url": link}});
            }
        }
        if extras != json!({}) {
            body["extras"] = extras;
        }
        body
    }
}

impl Trigger for Gotify {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "gotify",
            env!("CARGO_PKG_VERSION"),
            "Posts to a Gotify server",
        )
        .key(ConfigKey::required("url", "Gotify base URL"))
        .key(ConfigKey::required("token", "Application token").secret())
        .key(ConfigKey::optional(
            "priority",
            "Message priority (default 5)",
        ))
        .key(ConfigKey::optional(
            "markdown",
            "Render the body as Markdown (true/false)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            base: settings.require_http_url("url")?.registry_base(),
            token: settings.require("token")?.trim().to_string(),
            priority: settings.i64("priority")?.unwrap_or(5),
            markdown: settings.bool_or("markdown", false)?,
        })
    }

    fn format(&self) -> TextFormat {
        if self.markdown {
            TextFormat::Markdown
        } else {
            TextFormat::Plain
        }
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let request = Request::post(format!("{}/message", self.base))
            .header("X-Gotify-Key", self.token.clone())
            .json(&self.body(message, delivery));
        exchange("gotify", request).map(drop)
    }
}

crowsnest_plugin_sdk::export_trigger!(Gotify);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn message_with_markdown_and_click() {
        let gotify: Gotify = configure_from([
            ("url", "https://gotify.example/"),
            ("token", "A1b2"),
            ("markdown", "true"),
            ("priority", "8"),
        ])
        .unwrap();
        assert_eq!(gotify.base, "https://gotify.example");
        let body = gotify.body(&message("T", "B"), Delivery::One(&event("web")));
        assert_eq!(body["priority"], 8);
        assert_eq!(
            body["extras"]["client::display"]["contentType"],
            "text/markdown"
        );
        assert_eq!(
            body["extras"]["client::notification"]["click"]["url"],
            "https://example.test/releases/1.26"
        );
    }

    #[test]
    fn needs_url_and_token() {
        assert_eq!(
            configure_from::<Gotify>([("url", "http://g")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("token")
        );
    }
}
