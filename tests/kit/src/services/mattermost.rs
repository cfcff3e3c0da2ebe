//! Mattermost incoming webhooks: `POST /hooks/{key}` with `{text, channel?,
//! username?, icon_url?}`; answered `ok`; errors as `{id, message,
//! status_code}`; 429 with `Retry-After` and `X-Ratelimit-*`.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_route, expect_text, retry_after_seconds};
use super::{Answer, Received, Service};

/// One incoming webhook.
pub struct Mattermost {
    /// Its key.
    pub key: String,
}

fn error(status: u16, id: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"id": id, "message": message, "detailed_error": "", "status_code": status}),
    )
}

impl Service for Mattermost {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems = expect_route(request, "POST", &format!("/hooks/{}", self.key));
        problems.extend(request.json_problems());
        problems.extend(expect_text(&request.json(), "/text"));
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        Answer::text(200, "ok")
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(
            400,
            "web.incoming_webhook.parse.app_error",
            &problems.join("; "),
        )
    }

    fn fail(&self) -> Answer {
        error(
            500,
            "web.incoming_webhook.general.app_error",
            "Unable to create post.",
        )
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::text(429, "limit exceeded")
            .with_header("Retry-After", retry_after_seconds(wait))
            .with_header("X-Ratelimit-Limit", "10")
            .with_header("X-Ratelimit-Remaining", "0")
    }

    fn text(&self, request: &Received) -> String {
        request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
