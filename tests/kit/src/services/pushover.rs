//! Pushover: `POST /1/messages.json` with `{token, user, message, title?,
//! priority?, …}`; answered `{"status": 1, "request"}`, errors 4xx
//! `{"status": 0, "errors": […]}`; over the quota, 429 with `X-Limit-App-*`.

use std::time::Duration;

use serde_json::json;

use super::emulator::{expect_route, expect_text, expect_value, text_fields};
use super::{Answer, Received, Service};

/// Pushover with one application token and one user key.
pub struct Pushover {
    /// Application token.
    pub token: String,
    /// User key.
    pub user: String,
}

fn errors(status: u16, errors: &[String]) -> Answer {
    Answer::json(
        status,
        json!({"status": 0, "errors": errors, "request": "5042853c-402d-4a18-abcb-168734a801de"}),
    )
}

impl Service for Pushover {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", "/1/messages.json");
        problems.extend(request.json_problems());
        if body["token"] != json!(self.token) {
            problems.push("application token is invalid".into());
        }
        problems.extend(expect_value(&body, "/user", &json!(self.user)));
        problems.extend(expect_text(&body, "/message"));
        if body["message"]
            .as_str()
            .is_some_and(|m| m.chars().count() > 1024)
        {
            problems.push("message is too long".into());
        }
        if body
            .get("priority")
            .is_some_and(|p| !p.as_i64().is_some_and(|p| (-2..=2).contains(&p)))
        {
            problems.push("priority is invalid".into());
        }
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        Answer::json(
            200,
            json!({"status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b"}),
        )
        .with_header("X-Limit-App-Limit", "10000")
        .with_header("X-Limit-App-Remaining", "7496")
        .with_header("X-Limit-App-Reset", "1393653600")
    }

    fn reject(&self, problems: &[String]) -> Answer {
        errors(400, problems)
    }

    fn fail(&self) -> Answer {
        Answer::text(500, "Internal Server Error")
    }

    fn rate_limit(&self, _: Duration) -> Answer {
        errors(429, &["application has exceeded its message quota".into()])
            .with_header("X-Limit-App-Limit", "10000")
            .with_header("X-Limit-App-Remaining", "0")
            .with_header("X-Limit-App-Reset", "1393653600")
    }

    fn text(&self, request: &Received) -> String {
        text_fields(request, &["title", "message"])
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
