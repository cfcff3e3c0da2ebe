//! The Apprise API, stateful: `POST /notify/{key}` with `{body, title?,
//! type?, format?, tag?}` as JSON; answered 200; 424 when some of the
//! services behind it failed. Apprise itself does not rate-limit: the 429
//! with `Retry-After` is what the reverse proxy in front of it answers.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_route, expect_text, retry_after_seconds, text_fields};
use super::{Answer, Received, Service};

/// An Apprise API server with one saved configuration key.
pub struct Apprise {
    /// The configuration key.
    pub key: String,
}

impl Service for Apprise {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", &format!("/notify/{}", self.key));
        problems.extend(request.json_problems());
        problems.extend(expect_text(&body, "/body"));
        if let Some(kind) = body.get("type") {
            if !["info", "success", "warning", "failure"]
                .contains(&kind.as_str().unwrap_or_default())
            {
                problems.push(format!(
                    "type {kind} is not info, success, warning or failure"
                ));
            }
        }
        if let Some(format) = body.get("format") {
            if !["text", "markdown", "html"].contains(&format.as_str().unwrap_or_default()) {
                problems.push(format!("format {format} is not text, markdown or html"));
            }
        }
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        Answer::text(200, "Notification(s) sent.")
    }

    fn reject(&self, problems: &[String]) -> Answer {
        Answer::json(400, json!({"error": problems.join("; ")}))
    }

    fn fail(&self) -> Answer {
        Answer::json(
            424,
            json!({"error": "One or more notification could not be sent."}),
        )
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::text(429, "Too Many Requests").with_header("Retry-After", retry_after_seconds(wait))
    }

    fn text(&self, request: &Received) -> String {
        text_fields(request, &["title", "body"])
    }
}
