//! ntfy in JSON mode: `POST {base}/` with `{topic, message, title, …}` and
//! an access token; answered 200 with the message; errors
//! `{code, http, error, link}` (429: 42901, no `Retry-After`).

use std::time::Duration;

use serde_json::{json, Value};

use super::emulator::{expect_header, expect_route, expect_text, expect_value, text_fields};
use super::{Answer, Received, Service};

/// An ntfy server with one topic and one access token.
pub struct Ntfy {
    /// The topic deliveries must publish to.
    pub topic: String,
    /// The access token (`tk_…`) they must carry as Bearer.
    pub token: String,
}

fn error(http: u16, code: u32, error: &str) -> Answer {
    Answer::json(
        http,
        json!({"code": code, "http": http, "error": error, "link": "https://ntfy.sh/docs/publish/"}),
    )
}

impl Service for Ntfy {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", "/");
        problems.extend(request.json_problems());
        problems.extend(expect_header(
            request,
            "authorization",
            &format!("Bearer {}", self.token),
        ));
        problems.extend(expect_value(
            &body,
            "/topic",
            &Value::from(self.topic.clone()),
        ));
        problems.extend(expect_text(&body, "/message"));
        if let Some(priority) = body.get("priority") {
            if !priority.as_u64().is_some_and(|p| (1..=5).contains(&p)) {
                problems.push(format!("priority {priority} is not 1-5"));
            }
        }
        if body.get("tags").is_some_and(|tags| !tags.is_array()) {
            problems.push("tags is not an array".into());
        }
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        let body = request.json();
        Answer::json(
            200,
            json!({"id": "sPs71M8A2T", "time": 1_700_000_000, "expires": 1_700_043_200,
                   "event": "message", "topic": self.topic, "title": body["title"], "message": body["message"]}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        error(400, 40010, &problems.join("; "))
    }

    fn fail(&self) -> Answer {
        error(500, 50001, "internal server error")
    }

    fn rate_limit(&self, _: Duration) -> Answer {
        error(
            429,
            42901,
            "limit reached: too many requests, please be nice",
        )
    }

    fn text(&self, request: &Received) -> String {
        text_fields(request, &["title", "message"])
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
