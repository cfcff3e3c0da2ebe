//! `mattermost`: posts to a Mattermost incoming webhook (`POST
//! {server}/hooks/{key}`, `{text, channel, username, icon_url, icon_emoji}`),
//! answered 200 with the text `ok`. The title is a Markdown heading.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    compose, exchange, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured Mattermost webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mattermost {
    url: String,
    extra: Vec<(&'static str, String)>,
}

impl Mattermost {
    fn body(&self, message: &Message) -> Value {
        let mut body = json!({ "text": compose(message, ("#### ", "")) });
        for (key, value) in &self.extra {
            body[*key] = value.clone().into();
        }
        body
    }
}

impl Trigger for Mattermost {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "mattermost",
            env!("CARGO_PKG_VERSION"),
            "Posts to a Mattermost incoming webhook",
        )
        .key(ConfigKey::required("url", "Incoming webhook URL").secret())
        .key(ConfigKey::optional(
            "channel",
            "Channel to post in instead of the webhook's",
        ))
        .key(ConfigKey::optional("username", "Name shown as the sender"))
        .key(ConfigKey::optional("icon_url", "Avatar image URL"))
        .key(ConfigKey::optional("icon_emoji", "Avatar emoji"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let extra = ["channel", "username", "icon_url", "icon_emoji"]
            .into_iter()
            .filter_map(|key| {
                settings
                    .get(key)
                    .map(|value| (key, value.trim().to_string()))
            })
            .collect();
        Ok(Self {
            url: settings.require_http_url("url")?.as_string(),
            extra,
        })
    }

    fn format(&self) -> TextFormat {
        TextFormat::Markdown
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        exchange(
            "mattermost",
            Request::post(&self.url).json(&self.body(message)),
        )
        .map(drop)
    }
}

crowsnest_plugin_sdk::export_trigger!(Mattermost);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::message;

    #[test]
    fn heading_and_overrides() {
        let hook: Mattermost = configure_from([
            ("url", "https://mm.test/hooks/k"),
            ("channel", "ops"),
            ("username", "crowsnest"),
        ])
        .unwrap();
        assert_eq!(
            hook.body(&message("T", "B")),
            json!({"text": "#### T\n\nB", "channel": "ops", "username": "crowsnest"})
        );
    }
}
