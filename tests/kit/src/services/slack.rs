//! Slack: an incoming webhook (`POST /services/T…/B…/X…`, `{text}`, answered
//! `ok`; errors as text codes) or the Web API (`POST /api/chat.postMessage`
//! with a Bearer bot token, answered `{"ok": true}` or HTTP 200
//! `{"ok": false, "error"}`); 429 with `Retry-After`.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_header, expect_route, expect_text, retry_after_seconds};
use super::{Answer, Received, Service};

/// Which Slack API is played.
pub enum Slack {
    /// An incoming webhook at this path.
    Webhook {
        /// `/services/T…/B…/X…`.
        path: String,
    },
    /// The Web API, with a bot token and a channel.
    Api {
        /// `xoxb-…`.
        token: String,
        /// The channel messages must go to.
        channel: String,
    },
}

impl Service for Slack {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = match self {
            Self::Webhook { path } => expect_route(request, "POST", path),
            Self::Api { token, channel } => {
                let mut problems = expect_route(request, "POST", "/api/chat.postMessage");
                problems.extend(expect_header(
                    request,
                    "authorization",
                    &format!("Bearer {token}"),
                ));
                if body["channel"] != json!(channel) {
                    problems.push(format!("channel {} is not {channel}", body["channel"]));
                }
                problems
            }
        };
        problems.extend(request.json_problems());
        problems.extend(expect_text(&body, "/text"));
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        match self {
            Self::Webhook { .. } => Answer::text(200, "ok"),
            Self::Api { channel, .. } => Answer::json(
                200,
                json!({"ok": true, "channel": channel, "ts": "1700000000.000100"}),
            ),
        }
    }

    fn reject(&self, _: &[String]) -> Answer {
        match self {
            Self::Webhook { .. } => Answer::text(400, "invalid_payload"),
            Self::Api { .. } => {
                Answer::json(200, json!({"ok": false, "error": "invalid_arguments"}))
            }
        }
    }

    fn fail(&self) -> Answer {
        match self {
            Self::Webhook { .. } => Answer::text(500, "internal_error"),
            Self::Api { .. } => Answer::json(500, json!({"ok": false, "error": "internal_error"})),
        }
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        let answer = match self {
            Self::Webhook { .. } => Answer::text(429, "rate_limited"),
            Self::Api { .. } => Answer::json(429, json!({"ok": false, "error": "ratelimited"})),
        };
        answer.with_header("Retry-After", retry_after_seconds(wait))
    }

    fn text(&self, request: &Received) -> String {
        request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
