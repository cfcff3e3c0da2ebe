//! `slack`: posts to Slack, through an incoming webhook (`url`, answered
//! with the text `ok`) or through the Web API's `chat.postMessage` with a bot
//! token and a channel (answered `{"ok": true}`, or HTTP 200 with
//! `{"ok": false, "error": …}`). Text is mrkdwn: the title in bold.

use crowsnest_plugin_sdk::http::{Request, Response};
use crowsnest_plugin_sdk::serde_json::json;
use crowsnest_plugin_sdk::trigger::{
    compose, exchange, retry_after_ms, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// An incoming webhook URL.
    Webhook(String),
    /// The Web API (base URL) with a bot token and a channel.
    Api {
        base: String,
        token: String,
        channel: String,
    },
}

/// One configured Slack destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slack {
    endpoint: Endpoint,
}

/// The Web API's answer: `ok`, or the error code (rate limits come as HTTP 429).
fn api_outcome(response: Response) -> Result<(), DeliveryError> {
    let body = response.json().map_err(|err| {
        DeliveryError::retryable(format!("slack chat.postMessage answered {err}"))
    })?;
    if body["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    let code = body["error"].as_str().unwrap_or("unknown error");
    let message = format!("slack chat.postMessage refused the message: {code}");
    Err(match code {
        "ratelimited" => DeliveryError::rate_limited(
            message,
            response.header("retry-after").and_then(retry_after_ms),
        ),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            DeliveryError::retryable(message)
        }
        _ => DeliveryError::permanent(message),
    })
}

impl Trigger for Slack {
    fn describe() -> PluginInfo {
        PluginInfo::new("slack", env!("CARGO_PKG_VERSION"), "Posts to Slack (incoming webhook or Web API)")
            .key(ConfigKey::optional("url", "Incoming webhook URL; with `token`, the Web API base (default https://slack.com/api)").secret())
            .key(ConfigKey::optional("token", "Bot token (xoxb-…) for chat.postMessage").secret())
            .key(ConfigKey::optional("channel", "Channel id or name, with `token`"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let endpoint = match settings.get("token") {
            Some(token) => Endpoint::Api {
                base: settings.http_url("url")?.map_or_else(
                    || "https://slack.com/api".to_string(),
                    |url| url.registry_base(),
                ),
                token: token.trim().to_string(),
                channel: settings.require("channel")?.trim().to_string(),
            },
            None => {
                if settings.get("channel").is_some() {
                    return Err(ConfigError::key(
                        "channel",
                        "a webhook posts to its own channel; `channel` needs `token`",
                    ));
                }
                Endpoint::Webhook(settings.require_http_url("url")?.as_string())
            }
        };
        Ok(Self { endpoint })
    }

    fn format(&self) -> TextFormat {
        TextFormat::SlackMrkdwn
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let text = compose(message, ("*", "*"));
        match &self.endpoint {
            Endpoint::Webhook(url) => exchange(
                "slack webhook",
                Request::post(url).json(&json!({ "text": text })),
            )
            .map(drop),
            Endpoint::Api {
                base,
                token,
                channel,
            } => {
                let request = Request::post(format!("{base}/chat.postMessage"))
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Content-Type", "application/json; charset=utf-8")
                    .json(&json!({ "channel": channel, "text": text, "mrkdwn": true }));
                api_outcome(exchange("slack chat.postMessage", request)?)
            }
        }
    }
}

crowsnest_plugin_sdk::export_trigger!(Slack);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;

    fn response(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn webhook_or_api() {
        let hook: Slack =
            configure_from([("url", "https://hooks.slack.test/services/T/B/X")]).unwrap();
        assert!(matches!(hook.endpoint, Endpoint::Webhook(_)));
        let api: Slack = configure_from([("token", "xoxb-1"), ("channel", "#ops")]).unwrap();
        assert_eq!(
            api.endpoint,
            Endpoint::Api {
                base: "https://slack.com/api".into(),
                token: "xoxb-1".into(),
                channel: "#ops".into()
            }
        );
        assert_eq!(
            configure_from::<Slack>([("token", "x")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("channel")
        );
        assert_eq!(
            configure_from::<Slack>([("url", "https://h/x"), ("channel", "c")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("channel")
        );
    }

    #[test]
    fn api_errors_in_a_200_answer() {
        assert!(api_outcome(response(r#"{"ok":true,"ts":"1"}"#)).is_ok());
        let refused =
            api_outcome(response(r#"{"ok":false,"error":"channel_not_found"}"#)).unwrap_err();
        assert!(!refused.retryable);
        assert!(refused.message.contains("channel_not_found"));
        assert!(
            api_outcome(response(r#"{"ok":false,"error":"internal_error"}"#))
                .unwrap_err()
                .retryable
        );
    }
}
