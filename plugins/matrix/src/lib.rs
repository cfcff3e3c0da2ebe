//! `matrix`: sends an `m.text` message to a room through the client-server
//! API: with an access token, or after a password login
//! (`POST /_matrix/client/v3/login`, token kept for the instance's life); the
//! room (id `!…` or alias `#…`) is joined once (`POST …/join/{room}`, which
//! resolves an alias), then `PUT …/rooms/{id}/send/m.room.message/{txnId}`
//! with a transaction id from the host's clock. A 429 `M_LIMIT_EXCEEDED`
//! carries `retry_after_ms`; an expired token of a password login is
//! dropped, so the next attempt logs in again.

use std::cell::{Cell, RefCell};

use crowsnest_plugin_sdk::clock;
use crowsnest_plugin_sdk::encoding::percent_encode;
use crowsnest_plugin_sdk::http::{Request, Response};
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    compose, http_failure, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// How the plugin authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Token(String),
    Password { user: String, password: String },
}

/// One configured homeserver account and room.
#[derive(Debug)]
pub struct Matrix {
    base: String,
    login: Login,
    room: String,
    html: bool,
    /// The access token in use (from the settings or a login).
    token: RefCell<Option<String>>,
    /// The room id, once joined.
    room_id: RefCell<Option<String>>,
    /// Transactions sent by this instance (with the clock, a unique id).
    sent: Cell<u64>,
}

/// A client-server API failure in words, with Matrix's retry advice.
fn failure(step: &str, response: &Response) -> DeliveryError {
    let body = response.json().unwrap_or(Value::Null);
    let code = body["errcode"].as_str().unwrap_or("no errcode");
    let error = body["error"].as_str().unwrap_or("");
    let message = format!(
        "matrix {step} answered HTTP status {}: {code} {error}",
        response.status
    );
    match (response.status, code) {
        (429, _) | (_, "M_LIMIT_EXCEEDED") => {
            DeliveryError::rate_limited(message, body["retry_after_ms"].as_u64())
        }
        (500..=599, _) => DeliveryError::retryable(message),
        _ => DeliveryError::permanent(message),
    }
}

impl Matrix {
    fn api(&self, path: &str) -> String {
        format!("{}/_matrix/client/v3/{path}", self.base)
    }

    fn call(&self, step: &str, request: Request) -> Result<Value, DeliveryError> {
        let response = request
            .send()
            .map_err(|err| http_failure(&format!("matrix {step}"), err))?;
        if !response.is_success() {
            let error = failure(step, &response);
            if response.status == 401 {
                if let Login::Password { .. } = self.login {
                    // An expired login: the next attempt logs in afresh.
                    self.token.replace(None);
                    return Err(DeliveryError::retryable(error.message));
                }
            }
            return Err(error);
        }
        response
            .json()
            .map_err(|err| DeliveryError::retryable(format!("matrix {step}: {err}")))
    }

    fn token(&self) -> Result<String, DeliveryError> {
        if let Some(token) = self.token.borrow().clone() {
            return Ok(token);
        }
        let Login::Password { user, password } = &self.login else {
            return Err(DeliveryError::permanent("matrix: no access token"));
        };
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "initial_device_display_name": "crowsnest",
        });
        let answer = self.call("login", Request::post(self.api("login")).json(&body))?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| DeliveryError::retryable("matrix login: no access_token in the answer"))?
            .to_string();
        self.token.replace(Some(token.clone()));
        Ok(token)
    }

    fn room_id(&self, token: &str) -> Result<String, DeliveryError> {
        if let Some(id) = self.room_id.borrow().clone() {
            return Ok(id);
        }
        let request = Request::post(self.api(&format!("join/{}", percent_encode(&self.room))))
            .header("Authorization", format!("Bearer {token}"))
            .json(&json!({}));
        let answer = self.call("join", request)?;
        let id = answer["room_id"]
            .as_str()
            .ok_or_else(|| DeliveryError::retryable("matrix join: no room_id in the answer"))?
            .to_string();
        self.room_id.replace(Some(id.clone()));
        Ok(id)
    }

    fn content(&self, message: &Message) -> Value {
        if self.html {
            let html = compose(message, ("<strong>", "</strong>")).replace('\n', "<br>");
            let plain = compose(message, ("", ""));
            json!({"msgtype": "m.text", "body": plain, "format": "org.matrix.custom.html", "formatted_body": html})
        } else {
            json!({"msgtype": "m.text", "body": compose(message, ("", ""))})
        }
    }

    fn transaction_id(&self) -> String {
        let (seconds, nanos) = clock::now();
        let sent = self.sent.get();
        self.sent.set(sent + 1);
        format!("crowsnest.{seconds}.{nanos:09}.{sent}")
    }
}

impl Trigger for Matrix {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "matrix",
            env!("CARGO_PKG_VERSION"),
            "Sends a message to a Matrix room",
        )
        .key(ConfigKey::required("url", "Homeserver base URL"))
        .key(ConfigKey::required(
            "room",
            "Room id (!…:server) or alias (#…:server)",
        ))
        .key(ConfigKey::optional("access_token", "Access token (or user and password)").secret())
        .key(ConfigKey::optional(
            "user",
            "User to log in as (@name:server or name)",
        ))
        .key(ConfigKey::optional("password", "Password of `user`").secret())
        .key(ConfigKey::optional(
            "html",
            "Also send HTML (formatted_body) (true/false)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let room = settings.require("room")?.trim().to_string();
        if !(room.starts_with('!') || room.starts_with('#')) || !room.contains(':') {
            return Err(ConfigError::key(
                "room",
                "must be a room id (!id:server) or alias (#name:server)",
            ));
        }
        let login = match (settings.get("access_token"), settings.get("user")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    "access_token",
                    "use either access_token or user/password",
                ))
            }
            (Some(token), None) => Login::Token(token.trim().to_string()),
            (None, Some(user)) => Login::Password {
                user: user.trim().to_string(),
                password: settings.require("password")?.to_string(),
            },
            (None, None) => {
                return Err(ConfigError::key(
                    "access_token",
                    "required: access_token, or user and password",
                ))
            }
        };
        let token = match &login {
            Login::Token(token) => Some(token.clone()),
            Login::Password { .. } => None,
        };
        Ok(Self {
            base: settings.require_http_url("url")?.registry_base(),
            login,
            room,
            html: settings.bool_or("html", false)?,
            token: RefCell::new(token),
            room_id: RefCell::new(None),
            sent: Cell::new(0),
        })
    }

    fn format(&self) -> TextFormat {
        if self.html {
            TextFormat::Html
        } else {
            TextFormat::Plain
        }
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let token = self.token()?;
        let room = self.room_id(&token)?;
        let path = format!(
            "rooms/{}/send/m.room.message/{}",
            percent_encode(&room),
            percent_encode(&self.transaction_id())
        );
        let request = Request::new("PUT", self.api(&path))
            .header("Authorization", format!("Bearer {token}"))
            .json(&self.content(message));
        let answer = self.call("send", request)?;
        match answer["event_id"].as_str() {
            Some(_) => Ok(()),
            None => Err(DeliveryError::retryable(
                "matrix send: no event_id in the answer",
            )),
        }
    }
}

crowsnest_plugin_sdk::export_trigger!(Matrix);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::message;

    #[test]
    fn token_or_password_login() {
        let by_token: Matrix = configure_from([
            ("url", "https://m.test"),
            ("room", "#ops:m.test"),
            ("access_token", "syt_x"),
        ])
        .unwrap();
        assert_eq!(by_token.token.borrow().as_deref(), Some("syt_x"));
        let by_password: Matrix = configure_from([
            ("url", "https://m.test"),
            ("room", "!r:m.test"),
            ("user", "crow"),
            ("password", "pw"),
        ])
        .unwrap();
        assert!(by_password.token.borrow().is_none());
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("url", "https://m"), ("room", "ops")], "room"),
            (&[("url", "https://m"), ("room", "#a:m")], "access_token"),
            (
                &[("url", "https://m"), ("room", "#a:m"), ("user", "u")],
                "password",
            ),
            (
                &[
                    ("url", "https://m"),
                    ("room", "#a:m"),
                    ("user", "u"),
                    ("access_token", "t"),
                ],
                "access_token",
            ),
        ];
        for (pairs, key) in cases {
            assert_eq!(
                configure_from::<Matrix>(pairs.iter().copied())
                    .unwrap_err()
                    .key
                    .as_deref(),
                Some(key)
            );
        }
    }

    #[test]
    fn transaction_ids_are_unique_and_content_plain_or_html() {
        let matrix: Matrix = configure_from([
            ("url", "https://m"),
            ("room", "#a:m"),
            ("access_token", "t"),
            ("html", "true"),
        ])
        .unwrap();
        assert_ne!(matrix.transaction_id(), matrix.transaction_id());
        let content = matrix.content(&message("T", "a\nb"));
        assert_eq!(content["body"], "T\n\na\nb");
        assert_eq!(
            content["formatted_body"],
            "<strong>T</strong><br><br>a<br>b"
        );
    }
}
