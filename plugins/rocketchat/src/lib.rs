//! `rocketchat`: posts to Rocket.Chat, through the REST API (`POST
//! {url}/api/v1/chat.postMessage` with `X-User-Id` and `X-Auth-Token`, to a
//! `channel`) or, without credentials, through an incoming webhook (`url` =
//! `…/hooks/{id}/{token}`). Both answer `{"success": true}`, or
//! `{"success": false, "error", "errorType"}`.

use crowsnest_plugin_sdk::http::{Request, Response};
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    check_status, compose, http_failure, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Webhook(String),
    Rest {
        base: String,
        user_id: String,
        auth_token: String,
        channel: String,
    },
}

/// One configured Rocket.Chat destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocketChat {
    endpoint: Endpoint,
    alias: Option<String>,
    emoji: Option<String>,
    avatar: Option<String>,
}

/// The answer's `success`, or its error (a 4xx other than 429 is final).
fn outcome(response: Response) -> Result<(), DeliveryError> {
    let body = response.json().unwrap_or(Value::Null);
    let error = body["error"].as_str().map(str::to_string);
    let status = response.status;
    check_status("rocket.chat", response).map_err(|mut err| {
        if let Some(error) = &error {
            err.message = format!("rocket.chat answered HTTP status {status}: {error}");
        }
        err
    })?;
    if body["success"].as_bool() == Some(true) {
        return Ok(());
    }
    Err(DeliveryError::permanent(format!(
        "rocket.chat refused the message: {}",
        error.unwrap_or_else(|| "no success in its answer".into())
    )))
}

impl RocketChat {
    fn body(&self, message: &Message) -> Value {
        let mut body = json!({ "text": compose(message, ("*", "*")) });
        if let Endpoint::Rest { channel, .. } = &self.endpoint {
            body["channel"] = channel.clone().into();
        }
        for (key, value) in [
            ("alias", &self.alias),
            ("emoji", &self.emoji),
            ("avatar", &self.avatar),
        ] {
            if let Some(value) = value {
                body[key] = value.clone().into();
            }
        }
        body
    }
}

impl Trigger for RocketChat {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "rocketchat",
            env!("CARGO_PKG_VERSION"),
            "Posts to Rocket.Chat (REST API or incoming webhook)",
        )
        .key(ConfigKey::required("url", "Server base URL (REST) or incoming webhook URL").secret())
        .key(ConfigKey::optional("user_id", "REST: X-User-Id"))
        .key(ConfigKey::optional("auth_token", "REST: X-Auth-Token").secret())
        .key(ConfigKey::optional(
            "channel",
            "REST: #channel, @user or room id",
        ))
        .key(ConfigKey::optional("alias", "Name shown as the sender"))
        .key(ConfigKey::optional("emoji", "Avatar emoji"))
        .key(ConfigKey::optional("avatar", "Avatar image URL"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let url = settings.require_http_url("url")?;
        let endpoint = match (settings.get("user_id"), settings.get("auth_token")) {
            (Some(user_id), Some(auth_token)) => Endpoint::Rest {
                base: url.registry_base(),
                user_id: user_id.trim().to_string(),
                auth_token: auth_token.trim().to_string(),
                channel: settings.require("channel")?.trim().to_string(),
            },
            (None, None) => Endpoint::Webhook(url.as_string()),
            (Some(_), None) => {
                return Err(ConfigError::key(
                    "auth_token",
                    "the REST API needs user_id and auth_token",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::key(
                    "user_id",
                    "the REST API needs user_id and auth_token",
                ))
            }
        };
        Ok(Self {
            endpoint,
            alias: settings.get("alias").map(str::to_string),
            emoji: settings.get("emoji").map(str::to_string),
            avatar: settings.http_url("avatar")?.map(|url| url.as_string()),
        })
    }

    fn format(&self) -> TextFormat {
        TextFormat::Markdown
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let request = match &self.endpoint {
            Endpoint::Webhook(url) => Request::post(url),
            Endpoint::Rest {
                base,
                user_id,
                auth_token,
                ..
            } => Request::post(format!("{base}/api/v1/chat.postMessage"))
                .header("X-User-Id", user_id.clone())
                .header("X-Auth-Token", auth_token.clone()),
        };
        let response = request
            .json(&self.body(message))
            .send()
            .map_err(|err| http_failure("rocket.chat", err))?;
        outcome(response)
    }
}

crowsnest_plugin_sdk::export_trigger!(RocketChat);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::message;

    #[test]
    fn rest_or_webhook() {
        let rest: RocketChat = configure_from([
            ("url", "https://rc.test/"),
            ("user_id", "u"),
            ("auth_token", "t"),
            ("channel", "#ops"),
            ("alias", "crowsnest"),
        ])
        .unwrap();
        assert_eq!(
            rest.body(&message("T", "B")),
            json!({"text": "*T*\n\nB", "channel": "#ops", "alias": "crowsnest"})
        );
        let hook: RocketChat = configure_from([("url", "https://rc.test/hooks/a/b")]).unwrap();
        assert_eq!(
            hook.endpoint,
            Endpoint::Webhook("https://rc.test/hooks/a/b".into())
        );
        assert_eq!(
            configure_from::<RocketChat>([("url", "https://r"), ("user_id", "u")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("auth_token")
        );
    }

    #[test]
    fn success_false_is_final() {
        let answer = |status: u16, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert!(outcome(answer(200, r#"{"success":true}"#)).is_ok());
        let refused = outcome(answer(
            400,
            r#"{"success":false,"error":"error-invalid-channel"}"#,
        ))
        .unwrap_err();
        assert!(!refused.retryable && refused.message.contains("error-invalid-channel"));
    }
}
