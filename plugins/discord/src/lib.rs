//! `discord`: posts to a Discord webhook (`{content, username, avatar_url,
//! embeds}`, answered 204). The message becomes an embed (title, body, the
//! release notes as its link in simple mode), or plain content with
//! `embeds = false`. A 429 says how long to wait in its JSON `retry_after`
//! (seconds, fractional), which the host honours.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Map, Value};
use crowsnest_plugin_sdk::trigger::{
    check_status, compose, http_failure, seconds_to_ms, truncate, Delivery, DeliveryError, Message,
    TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Discord's limits: content, embed title, embed description.
const MAX_CONTENT: usize = 2000;
const MAX_EMBED_TITLE: usize = 256;
const MAX_EMBED_DESCRIPTION: usize = 4096;
/// The embed's colour (crowsnest blue).
const EMBED_COLOUR: u32 = 0x001F_6FEB;

/// One configured Discord webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discord {
    url: String,
    username: Option<String>,
    avatar_url: Option<String>,
    embeds: bool,
}

impl Discord {
    fn body(&self, message: &Message, delivery: Delivery<'_>) -> Value {
        let mut body = Map::new();
        if let Some(username) = &self.username {
            body.insert("username".into(), username.clone().into());
        }
        if let Some(avatar) = &self.avatar_url {
            body.insert("avatar_url".into(), avatar.clone().into());
        }
        if self.embeds {
            let mut embed = json!({
                "title": truncate(&message.title, MAX_EMBED_TITLE),
                "description": truncate(&message.body, MAX_EMBED_DESCRIPTION),
                "color": EMBED_COLOUR,
            });
            if let Delivery::One(event) = delivery {
                if let Some(link) = &event.link {
                    embed["url"] = link.clone().into();
                }
            }
            body.insert("embeds".into(), json!([embed]));
        } else {
            body.insert(
                "content".into(),
                truncate(&compose(message, ("**", "**")), MAX_CONTENT).into(),
            );
        }
        Value::Object(body)
    }
}

impl Trigger for Discord {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "discord",
            env!("CARGO_PKG_VERSION"),
            "Posts to a Discord webhook",
        )
        .key(ConfigKey::required("url", "Webhook URL").secret())
        .key(ConfigKey::optional("username", "Name shown as the sender"))
        .key(ConfigKey::optional("avatar_url", "Avatar image URL"))
        .key(ConfigKey::optional(
            "embeds",
            "Send an embed (default true) or plain content",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            url: settings.require_http_url("url")?.as_string(),
            username: settings.get("username").map(str::to_string),
            avatar_url: settings.http_url("avatar_url")?.map(|url| url.as_string()),
            embeds: settings.bool_or("embeds", true)?,
        })
    }

    fn format(&self) -> TextFormat {
        TextFormat::Markdown
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let request = Request::post(&self.url).json(&self.body(message, delivery));
        let response = request.send().map_err(|err| http_failure("discord", err))?;
        if response.status == 429 {
            // The body's `retry_after` is precise (fractional seconds); the header rounds.
            let asked = response
                .json()
                .ok()
                .and_then(|body| body["retry_after"].as_f64())
                .and_then(seconds_to_ms);
            return Err(DeliveryError::rate_limited(
                "discord answered HTTP status 429: rate limited",
                asked,
            ));
        }
        check_status("discord", response).map(drop)
    }
}

crowsnest_plugin_sdk::export_trigger!(Discord);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn embed_or_content() {
        let discord: Discord = configure_from([
            ("url", "https://discord.test/api/webhooks/1/x"),
            ("username", "crowsnest"),
        ])
        .unwrap();
        let body = discord.body(&message("T", "B"), Delivery::One(&event("web")));
        assert_eq!(body["username"], "crowsnest");
        assert_eq!(body["embeds"][0]["title"], "T");
        assert_eq!(body["embeds"][0]["description"], "B");
        assert_eq!(
            body["embeds"][0]["url"],
            "https://example.test/releases/1.26"
        );
        let plain: Discord = configure_from([("url", "https://d/x"), ("embeds", "false")]).unwrap();
        let long = "x".repeat(3000);
        let body = plain.body(&message("T", &long), Delivery::Batch(&[]));
        assert_eq!(
            body["content"].as_str().unwrap().chars().count(),
            MAX_CONTENT
        );
        assert!(body.get("embeds").is_none());
    }
}
