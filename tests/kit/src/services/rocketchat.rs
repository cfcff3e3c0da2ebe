//! Rocket.Chat's REST API: `POST /api/v1/chat.postMessage` with `X-User-Id`
//! and `X-Auth-Token`, `{channel, text, alias?}`; answered `{"success":
//! true, "message"}`, errors `{"success": false, "error", "errorType"}`
//! (429 `error-too-many-requests`, with `X-RateLimit-*` but no wait).

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_header, expect_route, expect_text, expect_value};
use super::{Answer, Received, Service};

/// A Rocket.Chat server with one user's credentials and one channel.
pub struct RocketChat {
    /// `X-User-Id`.
    pub user_id: String,
    /// `X-Auth-Token`.
    pub auth_token: String,
    /// The channel messages must go to.
    pub channel: String,
}

fn error(status: u16, error: &str, kind: &str) -> Answer {
    Answer::json(
        status,
        json!({"success": false, "error": error, "errorType": kind}),
    )
}

impl Service for RocketChat {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", "/api/v1/chat.postMessage");
        problems.extend(request.json_problems());
        problems.extend(expect_header(request, "x-user-id", &self.user_id));
        problems.extend(expect_header(request, "x-auth-token", &self.auth_token));
        problems.extend(expect_value(&body, "/channel", &json!(self.channel)));
        problems.extend(expect_text(&body, "/text"));
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let body = request.json();
        Answer::json(
            200,
            json!({"success": true, "channel": self.channel, "ts": 1_700_000_000_000u64,
                   "message": {"_id": "7aDSXtjMA3KPLxLjt", "rid": "GENERAL", "msg": body["text"]}}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(400, &problems.join("; "), "error-invalid-params")
    }

    fn fail(&self) -> Answer {
        error(500, "Internal server error", "error-internal")
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        error(
            429,
            &format!("Error, too many requests. Please slow down. You must wait {} seconds before trying this endpoint again. [error-too-many-requests]", wait.as_secs().max(1)),
            "error-too-many-requests",
        )
        .with_header("X-RateLimit-Limit", "10")
        .with_header("X-RateLimit-Remaining", "0")
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
