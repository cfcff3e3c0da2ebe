//! The Telegram Bot API: `POST /bot{token}/sendMessage` with `{chat_id,
//! text, parse_mode?, message_thread_id?}`; answered `{"ok": true,
//! "result"}`, errors `{"ok": false, "error_code", "description",
//! "parameters": {"retry_after"}}`.

use std::time::Duration;

use serde_json::{json, Value};

use super::emulator::{expect_route, expect_text, expect_value};
use super::{Answer, Received, Service};

/// A bot with its token, talking to one chat.
pub struct Telegram {
    /// `123456:ABC…`.
    pub token: String,
    /// The chat messages must go to.
    pub chat_id: Value,
}

fn error(code: u16, description: &str) -> Answer {
    Answer::json(
        code,
        json!({"ok": false, "error_code": code, "description": description}),
    )
}

impl Service for Telegram {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems =
            expect_route(request, "POST", &format!("/bot{}/sendMessage", self.token));
        problems.extend(request.json_problems());
        problems.extend(expect_value(&body, "/chat_id", &self.chat_id));
        problems.extend(expect_text(&body, "/text"));
        if let Some(mode) = body.get("parse_mode") {
            if !["HTML", "MarkdownV2", "Markdown"].contains(&mode.as_str().unwrap_or_default()) {
                problems.push(format!("parse_mode {mode} is not one Telegram knows"));
            }
        }
        if body["text"]
            .as_str()
            .is_some_and(|t| t.chars().count() > 4096)
        {
            problems.push("text over 4096 characters".into());
        }
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let body = request.json();
        Answer::json(
            200,
            json!({"ok": true, "result": {"message_id": 42, "date": 1_700_000_000,
                   "chat": {"id": self.chat_id, "type": "group"}, "text": body["text"]}}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(400, &format!("Bad Request: {}", problems.join("; ")))
    }

    fn fail(&self) -> Answer {
        error(500, "Internal Server Error")
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        let seconds = wait.as_secs().max(1);
        Answer::json(
            429,
            json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {seconds}"),
                   "parameters": {"retry_after": seconds}}),
        )
    }

    fn text(&self, request: &Received) -> String {
        request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
