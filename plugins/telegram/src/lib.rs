//! `telegram`: `sendMessage` through the Bot API (`POST
//! {url}/bot{token}/sendMessage`), HTML (default), MarkdownV2 or plain text,
//! optionally into a forum topic. The API answers `{"ok": true, …}`, or
//! `{"ok": false, "error_code", "description", "parameters": {"retry_after"}}`.
//! The token is part of the URL: errors never quote the URL.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    compose, http_failure, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// How Telegram reads the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseMode {
    Html,
    MarkdownV2,
    Plain,
}

/// One configured bot and chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram {
    base: String,
    token: String,
    chat_id: Value,
    parse_mode: ParseMode,
    thread_id: Option<i64>,
    silent: bool,
}

impl Telegram {
    fn body(&self, message: &Message) -> Value {
        let (text, mode) = match self.parse_mode {
            ParseMode::Html => (compose(message, ("<b>", "</b>")), Some("HTML")),
            ParseMode::MarkdownV2 => (compose(message, ("*", "*")), Some("MarkdownV2")),
            ParseMode::Plain => (compose(message, ("", "")), None),
        };
        let mut body = json!({ "chat_id": self.chat_id, "text": text });
        if let Some(mode) = mode {
            body["parse_mode"] = mode.into();
        }
        if let Some(thread) = self.thread_id {
            body["message_thread_id"] = thread.into();
        }
        if self.silent {
            body["disable_notification"] = true.into();
        }
        body
    }
}

/// The Bot API's answer in words, with its own retry advice.
fn outcome(status: u16, body: Option<Value>) -> Result<(), DeliveryError> {
    let body = body.unwrap_or(Value::Null);
    if (200..300).contains(&status) && body["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    let code = body["error_code"].as_u64().unwrap_or(u64::from(status));
    let description = body["description"].as_str().unwrap_or("no description");
    let message = format!("telegram sendMessage failed: {code} {description}");
    let retry_after = body["parameters"]["retry_after"].as_u64();
    Err(match (code, retry_after) {
        (429, _) | (_, Some(_)) => {
            DeliveryError::rate_limited(message, retry_after.map(|s| s * 1000))
        }
        (500..=599, _) => DeliveryError::retryable(message),
        _ => DeliveryError::permanent(message),
    })
}

impl Trigger for Telegram {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "telegram",
            env!("CARGO_PKG_VERSION"),
            "Sends a Telegram message through a bot",
        )
        .key(ConfigKey::required("token", "Bot token (123456:ABC…)").secret())
        .key(ConfigKey::required(
            "chat_id",
            "Chat id or @channelusername",
        ))
        .key(ConfigKey::optional(
            "url",
            "Bot API base URL (default https://api.telegram.org)",
        ))
        .key(ConfigKey::optional(
            "parse_mode",
            "HTML (default), MarkdownV2 or none",
        ))
        .key(ConfigKey::optional(
            "message_thread_id",
            "Forum topic to post in",
        ))
        .key(ConfigKey::optional(
            "disable_notification",
            "Send silently (true/false)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let chat = settings.require("chat_id")?.trim();
        let chat_id = match chat.parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) if chat.starts_with('@') => Value::from(chat),
            Err(_) => {
                return Err(ConfigError::key(
                    "chat_id",
                    "must be a number or @channelusername",
                ))
            }
        };
        let parse_mode = match settings
            .string_or("parse_mode", "HTML")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "html" => ParseMode::Html,
            "markdownv2" => ParseMode::MarkdownV2,
            "none" | "" => ParseMode::Plain,
            other => {
                return Err(ConfigError::key(
                    "parse_mode",
                    format!("`{other}` is not HTML, MarkdownV2 or none"),
                ))
            }
        };
        let token = settings.require("token")?.trim().to_string();
        if !token.contains(':') || token.contains(['/', '?', '#']) {
            return Err(ConfigError::key(
                "token",
                "is not a bot token (digits:letters)",
            ));
        }
        Ok(Self {
            base: settings.http_url("url")?.map_or_else(
                || "https://api.telegram.org".to_string(),
                |url| url.registry_base(),
            ),
            token,
            chat_id,
            parse_mode,
            thread_id: settings.i64("message_thread_id")?,
            silent: settings.bool_or("disable_notification", false)?,
        })
    }

    fn format(&self) -> TextFormat {
        match self.parse_mode {
            ParseMode::Html => TextFormat::Html,
            ParseMode::MarkdownV2 => TextFormat::TelegramMarkdownV2,
            ParseMode::Plain => TextFormat::Plain,
        }
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let url = format!("{}/bot{}/sendMessage", self.base, self.token);
        let response = Request::post(url)
            .json(&self.body(message))
            .send()
            .map_err(|err| http_failure("telegram", err))?;
        outcome(response.status, response.json().ok())
    }
}

crowsnest_plugin_sdk::export_trigger!(Telegram);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::message;

    #[test]
    fn html_message_into_a_topic() {
        let bot: Telegram = configure_from([
            ("token", "123:abc"),
            ("chat_id", "-100200"),
            ("message_thread_id", "7"),
        ])
        .unwrap();
        assert_eq!(
            bot.body(&message("T", "B")),
            json!({"chat_id": -100200, "text": "<b>T</b>\n\nB", "parse_mode": "HTML", "message_thread_id": 7})
        );
        let channel: Telegram = configure_from([
            ("token", "1:x"),
            ("chat_id", "@ops"),
            ("parse_mode", "none"),
        ])
        .unwrap();
        assert_eq!(
            channel.body(&message("T", "B")),
            json!({"chat_id": "@ops", "text": "T\n\nB"})
        );
    }

    #[test]
    fn answers_say_whether_to_retry() {
        assert!(outcome(200, Some(json!({"ok": true, "result": {}}))).is_ok());
        let limited = outcome(429, Some(json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}))).unwrap_err();
        assert_eq!(
            (limited.retryable, limited.retry_after_ms),
            (true, Some(3000))
        );
        let refused = outcome(400, Some(json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}))).unwrap_err();
        assert!(!refused.retryable);
        assert!(refused.message.contains("chat not found"));
        assert!(outcome(502, None).unwrap_err().retryable);
    }

    #[test]
    fn rejects_bad_settings_by_key() {
        let cases: [(&[(&str, &str)], &str); 3] = [
            (&[("token", "nocolon"), ("chat_id", "1")], "token"),
            (&[("token", "1:a"), ("chat_id", "ops")], "chat_id"),
            (
                &[("token", "1:a"), ("chat_id", "1"), ("parse_mode", "rtf")],
                "parse_mode",
            ),
        ];
        for (pairs, key) in cases {
            assert_eq!(
                configure_from::<Telegram>(pairs.iter().copied())
                    .unwrap_err()
                    .key
                    .as_deref(),
                Some(key)
            );
        }
    }
}
