//! `ntfy`: publishes to an ntfy topic (ntfy.sh or self-hosted) in JSON mode:
//! `POST {url}/` with `{topic, title, message, priority, tags, click, icon,
//! markdown}`, a Bearer token or Basic credentials. In simple mode the
//! notification opens the release notes (`click`) unless one is configured.

use crowsnest_plugin_sdk::encoding::basic_auth;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Map, Value};
use crowsnest_plugin_sdk::trigger::{
    exchange, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured ntfy topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ntfy {
    base: String,
    topic: String,
    priority: Option<u8>,
    tags: Vec<String>,
    click: Option<String>,
    icon: Option<String>,
    markdown: bool,
    authorization: Option<String>,
}

/// `1`–`5` or min/low/default/high/urgent (max).
fn parse_priority(raw: &str) -> Result<u8, ConfigError> {
    let priority = match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "urgent" | "max" => 5,
        _ => {
            return Err(ConfigError::key(
                "priority",
                format!("`{raw}` is not 1-5, min, low, default, high or urgent"),
            ))
        }
    };
    Ok(priority)
}

impl Ntfy {
    fn body(&self, message: &Message, delivery: Delivery<'_>) -> Value {
        let mut body = Map::new();
        body.insert("topic".into(), self.topic.clone().into());
        body.insert("title".into(), message.title.clone().into());
        body.insert("message".into(), message.body.clone().into());
        if let Some(priority) = self.priority {
            body.insert("priority".into(), priority.into());
        }
        if !self.tags.is_empty() {
            body.insert("tags".into(), json!(self.tags));
        }
        let click = match delivery {
            Delivery::One(event) => self.click.clone().or_else(|| event.link.clone()),
            Delivery::Batch(_) => self.click.clone(),
        };
        if let Some(click) = click {
            body.insert("click".into(), click.into());
        }
        if let Some(icon) = &self.icon {
            body.insert("icon".into(), icon.clone().into());
        }
        if self.markdown {
            body.insert("markdown".into(), true.into());
        }
        Value::Object(body)
    }
}

impl Trigger for Ntfy {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "ntfy",
            env!("CARGO_PKG_VERSION"),
            "Publishes to an ntfy topic (ntfy.sh or self-hosted)",
        )
        .key(ConfigKey::required("topic", "Topic to publish to"))
        .key(ConfigKey::optional(
            "url",
            "Server base URL (default https://ntfy.sh)",
        ))
        .key(ConfigKey::optional(
            "priority",
            "1-5 or min, low, default, high, urgent",
        ))
        .key(ConfigKey::optional(
            "tags",
            "Tags or emoji short codes, an array",
        ))
        .key(ConfigKey::optional(
            "click",
            "URL opened on click (default: the release notes)",
        ))
        .key(ConfigKey::optional("icon", "Notification icon URL"))
        .key(ConfigKey::optional(
            "markdown",
            "Render the body as Markdown (true/false)",
        ))
        .key(ConfigKey::optional("token", "Access token (tk_…)").secret())
        .key(ConfigKey::optional("username", "Basic auth user"))
        .key(ConfigKey::optional("password", "Basic auth password").secret())
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let base = match settings.http_url("url")? {
            Some(url) => url.registry_base(),
            None => "https://ntfy.sh".to_string(),
        };
        let topic = settings.require("topic")?.trim().to_string();
        if topic.contains(['/', '?', '#', ' ']) {
            return Err(ConfigError::key("topic", "a topic is one path segment"));
        }
        let authorization = match (settings.get("token"), settings.get("username")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    "token",
                    "use either token or username/password",
                ))
            }
            (Some(token), None) => Some(format!("Bearer {}", token.trim())),
            (None, Some(user)) => Some(basic_auth(user, settings.require("password")?)),
            (None, None) => None,
        };
        Ok(Self {
            base,
            topic,
            priority: settings.get("priority").map(parse_priority).transpose()?,
            tags: settings.string_list("tags")?,
            click: settings.http_url("click")?.map(|url| url.as_string()),
            icon: settings.http_url("icon")?.map(|url| url.as_string()),
            markdown: settings.bool_or("markdown", false)?,
            authorization,
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
        let mut request =
            Request::post(format!("{}/", self.base)).json(&self.body(message, delivery));
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization.clone());
        }
        exchange("ntfy", request).map(drop)
    }
}

crowsnest_plugin_sdk::export_trigger!(Ntfy);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn json_mode_body_with_click_to_the_release_notes() {
        let ntfy: Ntfy = configure_from([
            ("topic", "updates"),
            ("priority", "high"),
            ("tags", r#"["whale"]"#),
            ("token", "tk_abc"),
        ])
        .unwrap();
        assert_eq!(ntfy.base, "https://ntfy.sh");
        assert_eq!(ntfy.authorization.as_deref(), Some("Bearer tk_abc"));
        let body = ntfy.body(&message("T", "B"), Delivery::One(&event("web")));
        assert_eq!(
            body,
            json!({"topic": "updates", "title": "T", "message": "B", "priority": 4,
                   "tags": ["whale"], "click": "https://example.test/releases/1.26"})
        );
        let batch = ntfy.body(&message("T", "B"), Delivery::Batch(&[event("a")]));
        assert!(batch.get("click").is_none());
    }

    #[test]
    fn rejects_bad_settings_by_key() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[], "topic"),
            (&[("topic", "a/b")], "topic"),
            (&[("topic", "t"), ("priority", "9")], "priority"),
            (&[("topic", "t"), ("username", "u")], "password"),
        ];
        for (pairs, key) in cases {
            let err = configure_from::<Ntfy>(pairs.iter().copied()).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{pairs:?}");
        }
    }
}
