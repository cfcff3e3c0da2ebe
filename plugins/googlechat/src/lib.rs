//! `googlechat`: posts to a Google Chat space through its incoming webhook
//! (`POST …/v1/spaces/{space}/messages?key=…&token=…`, `{"text"}`),
//! optionally into a thread (`threadKey`, falling back to a new thread).
//! Answered 200 with the created message (`{"name": "spaces/…/messages/…"}`).

use crowsnest_plugin_sdk::encoding::percent_encode;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::json;
use crowsnest_plugin_sdk::trigger::{compose, exchange, Delivery, DeliveryError, Message, Trigger};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured space webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleChat {
    url: String,
}

impl Trigger for GoogleChat {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "googlechat",
            env!("CARGO_PKG_VERSION"),
            "Posts to a Google Chat space",
        )
        .key(ConfigKey::required("url", "Space webhook URL (with its key and token)").secret())
        .key(ConfigKey::optional(
            "thread_key",
            "Thread to post in (created when missing)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let mut url = settings.require_http_url("url")?.as_string();
        if let Some(thread) = settings.get("thread_key") {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!(
                "{url}{separator}threadKey={}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
                percent_encode(thread.trim())
            );
        }
        Ok(Self { url })
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let request = Request::post(&self.url)
            .header("Content-Type", "application/json; charset=UTF-8")
            .json(&json!({ "text": compose(message, ("*", "*")) }));
        let response = exchange("google chat", request)?;
        match response
            .json()
            .ok()
            .and_then(|body| body["name"].as_str().map(str::to_string))
        {
            Some(_) => Ok(()),
            None => Err(DeliveryError::retryable(
                "google chat answered 2xx without the created message",
            )),
        }
    }
}

crowsnest_plugin_sdk::export_trigger!(GoogleChat);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;

    #[test]
    fn thread_key_joins_the_query() {
        let chat: GoogleChat = configure_from([
            (
                "url",
                "https://chat.test/v1/spaces/S/messages?key=k&token=t",
            ),
            ("thread_key", "crow nest"),
        ])
        .unwrap();
        assert_eq!(
            chat.url,
            "https://chat.test/v1/spaces/S/messages?key=k&token=t&threadKey=crow%20nest&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        );
    }
}
