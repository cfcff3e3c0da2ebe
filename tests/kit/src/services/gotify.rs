//! Gotify: `POST {base}/message` with the application token in
//! `X-Gotify-Key`, `{title, message, priority, extras}`; answered with the
//! stored message; errors `{error, errorCode, errorDescription}`.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_header, expect_route, expect_text, retry_after_seconds, text_fields};
use super::{Answer, Received, Service};

/// A Gotify server with one application token.
pub struct Gotify {
    /// The application token.
    pub token: String,
}

fn error(status: u16, error: &str, description: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": error, "errorCode": status, "errorDescription": description}),
    )
}

impl Service for Gotify {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", "/message");
        problems.extend(request.json_problems());
        problems.extend(expect_header(request, "x-gotify-key", &self.token));
        problems.extend(expect_text(&body, "/message"));
        if body.get("priority").is_some_and(|p| !p.is_i64()) {
            problems.push("priority is not an integer".into());
        }
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let body = request.json();
        Answer::json(
            200,
            json!({"id": 25, "appid": 5, "message": body["message"], "title": body["title"],
                   "priority": body["priority"], "date": "2024-01-01T00:00:00Z", "extras": body["extras"]}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(400, "Bad Request", &problems.join("; "))
    }

    fn fail(&self) -> Answer {
        error(500, "Internal Server Error", "database is locked")
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        error(429, "Too Many Requests", "slow down")
            .with_header("Retry-After", retry_after_seconds(wait))
    }

    fn text(&self, request: &Received) -> String {
        text_fields(request, &["title", "message"])
    }
}
