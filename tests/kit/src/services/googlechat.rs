//! Google Chat incoming webhooks: `POST /v1/spaces/{space}/messages?key=…
//! &token=…` with `{"text"}`; answered with the created message
//! (`{"name": "spaces/…/messages/…"}`); errors in Google's JSON shape
//! (429 `RESOURCE_EXHAUSTED`, without a wait).

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_route, expect_text};
use super::{Answer, Received, Service};

/// One space's webhook with its key and token.
pub struct GoogleChat {
    /// The space id.
    pub space: String,
    /// The `key` query parameter.
    pub key: String,
    /// The `token` query parameter.
    pub token: String,
}

fn error(code: u16, status: &str, message: &str) -> Answer {
    Answer::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

impl Service for GoogleChat {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems = expect_route(
            request,
            "POST",
            &format!("/v1/spaces/{}/messages", self.space),
        );
        problems.extend(request.json_problems());
        if request.query.get("key") != Some(&self.key)
            || request.query.get("token") != Some(&self.token)
        {
            problems.push("key or token missing or wrong".into());
        }
        problems.extend(expect_text(&request.json(), "/text"));
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let body = request.json();
        Answer::json(
            200,
            json!({"name": format!("spaces/{}/messages/abc.abc", self.space), "text": body["text"],
                   "thread": {"name": format!("spaces/{}/threads/t1", self.space)}}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(400, "INVALID_ARGUMENT", &problems.join("; "))
    }

    fn fail(&self) -> Answer {
        error(503, "UNAVAILABLE", "The service is currently unavailable.")
    }

    fn rate_limit(&self, _: Duration) -> Answer {
        error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        )
    }

    fn text(&self, request: &Received) -> String {
        request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
