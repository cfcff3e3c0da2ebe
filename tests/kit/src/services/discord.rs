//! Discord webhooks: `POST /api/webhooks/{id}/{token}` with `{content}` or
//! `{embeds}` (≤ 2000 characters of content, ≤ 10 embeds); answered 204;
//! 429 `{message, retry_after (float seconds), global}` with `Retry-After`.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_route, retry_after_seconds};
use super::{Answer, Received, Service};

/// A Discord webhook at `/api/webhooks/{id}/{token}`.
pub struct Discord {
    /// The webhook's path.
    pub path: String,
}

impl Service for Discord {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", &self.path);
        problems.extend(request.json_problems());
        let content = body["content"].as_str();
        let embeds = body["embeds"].as_array();
        match (content, embeds) {
            (None, None) => problems.push("neither content nor embeds".into()),
            (Some(content), _) if content.chars().count() > 2000 => {
                problems.push("content over 2000 characters".into())
            }
            (_, Some(embeds)) if embeds.len() > 10 || embeds.is_empty() => {
                problems.push("embeds must be 1 to 10".into())
            }
            (_, Some(embeds)) => {
                for embed in embeds {
                    if embed["title"]
                        .as_str()
                        .is_some_and(|t| t.chars().count() > 256)
                    {
                        problems.push("embed title over 256 characters".into());
                    }
                    if embed["description"]
                        .as_str()
                        .is_none_or(|d| d.chars().count() > 4096)
                    {
                        problems.push("embed description missing or over 4096 characters".into());
                    }
                }
            }
            _ => {}
        }
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        Answer::empty(204)
    }

    fn reject(&self, problems: &[String]) -> Answer {
        Answer::json(
            400,
            json!({"message": "Invalid Form Body", "code": 50035, "errors": problems}),
        )
    }

    fn fail(&self) -> Answer {
        Answer::json(502, json!({"message": "502: Bad Gateway", "code": 0}))
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::json(429, json!({"message": "You are being rate limited.", "retry_after": wait.as_secs_f64(), "global": false}))
            .with_header("Retry-After", retry_after_seconds(wait))
            .with_header("X-RateLimit-Scope", "user")
    }

    fn text(&self, request: &Received) -> String {
        let body = request.json();
        match body["content"].as_str() {
            Some(content) => content.to_string(),
            None => format!(
                "{}\n{}",
                body["embeds"][0]["title"].as_str().unwrap_or_default(),
                body["embeds"][0]["description"]
                    .as_str()
                    .unwrap_or_default()
            ),
        }
    }
}
