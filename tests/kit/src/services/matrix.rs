//! A Matrix homeserver's client-server API, the parts a notifier uses:
//! `POST /_matrix/client/v3/login` (password), `POST …/join/{roomIdOrAlias}`
//! (resolving the alias), `PUT …/rooms/{roomId}/send/m.room.message/{txnId}`
//! with a Bearer token. A repeated transaction id is answered with the same
//! event and not delivered again, as the spec requires. Errors are
//! `{errcode, error}`; 429 `M_LIMIT_EXCEEDED` with `retry_after_ms`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::emulator::expect_text;
use super::{Answer, Received, Service};

const PREFIX: &str = "/_matrix/client/v3/";

/// A homeserver with one user, one room and its alias.
pub struct Matrix {
    /// The user's id (`@crow:example.test`).
    pub user: String,
    /// The user's password.
    pub password: String,
    /// The room's alias (`#ops:example.test`).
    pub alias: String,
    /// The room's id (`!abc:example.test`).
    pub room_id: String,
    /// Transaction ids seen, with the event each created.
    transactions: Mutex<BTreeMap<String, String>>,
    /// Access tokens issued by login.
    tokens: Mutex<Vec<String>>,
}

impl Matrix {
    /// A homeserver for `user`/`password` with the room `alias` → `room_id`.
    pub fn new(user: &str, password: &str, alias: &str, room_id: &str) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            alias: alias.into(),
            room_id: room_id.into(),
            transactions: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    fn route<'a>(&self, request: &'a Received) -> Option<(&'a str, Vec<String>)> {
        let rest = request.path.strip_prefix(PREFIX)?;
        let parts: Vec<String> = rest
            .split('/')
            .map(|part| {
                url::form_urlencoded::parse(format!("x={}", part.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        Some((rest, parts))
    }

    fn authorized(&self, request: &Received) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| tokens.iter().any(|issued| issued == token))
    }

    /// Adds `token` as valid (an access token configured instead of a login).
    pub fn issue(&self, token: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.to_string());
    }

    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer::json(status, json!({"errcode": code, "error": message}))
    }
}

impl Service for Matrix {
    fn is_delivery(&self, request: &Received) -> bool {
        request.method == "PUT" && request.path.contains("/send/m.room.message/")
    }

    fn check(&self, request: &Received) -> Vec<String> {
        let Some((_, parts)) = self.route(request) else {
            return vec![format!("{} is not a client-server API path", request.path)];
        };
        let body = request.json();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let mut problems = Vec::new();
        match (request.method.as_str(), parts.as_slice()) {
            ("POST", ["login"]) => {
                problems.extend(request.json_problems());
                if body["type"] != "m.login.password" || body["identifier"]["type"] != "m.id.user" {
                    problems
                        .push("not an m.login.password login with an m.id.user identifier".into());
                }
                let user = body["identifier"]["user"].as_str().unwrap_or_default();
                if (user != self.user && !self.user.starts_with(&format!("@{user}:")))
                    || body["password"] != json!(self.password)
                {
                    problems.push("M_FORBIDDEN: invalid username or password".into());
                }
            }
            ("POST", ["join", room]) => {
                if !self.authorized(request) {
                    problems.push("M_UNKNOWN_TOKEN: unknown access token".into());
                }
                if *room != self.alias && *room != self.room_id {
                    problems.push(format!("M_NOT_FOUND: no room {room}"));
                }
            }
            ("PUT", ["rooms", room, "send", "m.room.message", txn]) => {
                problems.extend(request.json_problems());
                if !self.authorized(request) {
                    problems.push("M_UNKNOWN_TOKEN: unknown access token".into());
                }
                if *room != self.room_id {
                    problems.push(format!(
                        "M_FORBIDDEN: not joined to {room} (send needs the room id)"
                    ));
                }
                if txn.is_empty() {
                    problems.push("empty transaction id".into());
                }
                if body["msgtype"] != "m.text" {
                    problems.push("msgtype is not m.text".into());
                }
                problems.extend(expect_text(&body, "/body"));
                if body.get("formatted_body").is_some()
                    && body["format"] != "org.matrix.custom.html"
                {
                    problems.push("formatted_body without format org.matrix.custom.html".into());
                }
            }
            (method, _) => problems.push(format!("M_UNRECOGNIZED: {method} {}", request.path)),
        }
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let Some((_, parts)) = self.route(request) else {
            return Self::error(404, "M_UNRECOGNIZED", "Unrecognized request");
        };
        match parts.first().map(String::as_str) {
            Some("login") => {
                let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                let token = format!("syt_issued_{}", tokens.len() + 1);
                tokens.push(token.clone());
                Answer::json(
                    200,
                    json!({"access_token": token, "user_id": self.user, "device_id": "CROWSNEST"}),
                )
            }
            Some("join") => Answer::json(200, json!({"room_id": self.room_id})),
            _ => {
                let txn = parts.last().cloned().unwrap_or_default();
                let mut transactions = self.transactions.lock().unwrap_or_else(|p| p.into_inner());
                let next = format!("$event{}", transactions.len() + 1);
                let event = transactions.entry(txn).or_insert(next).clone();
                Answer::json(200, json!({"event_id": event}))
            }
        }
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (status, code) = match first.split(':').next().unwrap_or_default() {
            "M_FORBIDDEN" => (403, "M_FORBIDDEN"),
            "M_UNKNOWN_TOKEN" => (401, "M_UNKNOWN_TOKEN"),
            "M_NOT_FOUND" => (404, "M_NOT_FOUND"),
            "M_UNRECOGNIZED" => (404, "M_UNRECOGNIZED"),
            _ => (400, "M_BAD_JSON"),
        };
        Self::error(status, code, &problems.join("; "))
    }

    fn fail(&self) -> Answer {
        Self::error(502, "M_UNKNOWN", "Internal server error")
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::json(
            429,
            json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": wait.as_millis() as u64}),
        )
    }

    fn text(&self, request: &Received) -> String {
        request.json()["body"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
