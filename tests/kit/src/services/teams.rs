//! Microsoft Teams: a Workflows webhook (`POST
//! /workflows/{id}/triggers/manual/paths/invoke?api-version=…&sig=…`) taking
//! a `message` with one adaptive card, answered 202; 429 with `Retry-After`.

use std::time::Duration;

use serde_json::{json, Value};

use super::emulator::{expect_route, expect_value, retry_after_seconds};
use super::{Answer, Received, Service};

/// A Workflows webhook with its signature.
pub struct Teams {
    /// The workflow's path.
    pub path: String,
    /// The `sig` query parameter it must carry.
    pub sig: String,
}

impl Service for Teams {
    fn check(&self, request: &Received) -> Vec<String> {
        let body = request.json();
        let mut problems = expect_route(request, "POST", &self.path);
        problems.extend(request.json_problems());
        if request.query.get("sig") != Some(&self.sig) || !request.query.contains_key("api-version")
        {
            problems.push("sig or api-version missing or wrong".into());
        }
        problems.extend(expect_value(&body, "/type", &json!("message")));
        problems.extend(expect_value(
            &body,
            "/attachments/0/contentType",
            &json!("application/vnd.microsoft.card.adaptive"),
        ));
        problems.extend(expect_value(
            &body,
            "/attachments/0/content/type",
            &json!("AdaptiveCard"),
        ));
        let blocks = body
            .pointer("/attachments/0/content/body")
            .and_then(Value::as_array);
        if !blocks.is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "TextBlock")) {
            problems.push("the card has no TextBlock".into());
        }
        problems
    }

    fn accept(&self, _: &Received) -> Answer {
        Answer::empty(202)
    }

    fn reject(&self, problems: &[String]) -> Answer {
        Answer::json(
            400,
            json!({"error": {"code": "InvalidRequestContent", "message": problems.join("; ")}}),
        )
    }

    fn fail(&self) -> Answer {
        Answer::json(
            500,
            json!({"error": {"code": "ServiceProviderError", "message": "internal error"}}),
        )
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::json(429, json!({"error": {"code": "WorkflowRequestsThrottled", "message": "Rate limit is exceeded"}}))
            .with_header("Retry-After", retry_after_seconds(wait))
    }

    fn text(&self, request: &Received) -> String {
        let body = request.json();
        let blocks = body
            .pointer("/attachments/0/content/body")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        blocks
            .iter()
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
