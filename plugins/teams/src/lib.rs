//! `teams`: posts to Microsoft Teams, as an adaptive card to a Workflows
//! (Power Automate) webhook — the default — or as a MessageCard to a legacy
//! Office 365 connector (`card = "message-card"`). In simple mode the card
//! lists the update's facts. Workflows answer 200 or 202; a connector may
//! answer 200 with "HTTP error 429" in its body, which is a rate limit too.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    exchange, Delivery, DeliveryError, Message, TextFormat, Trigger, UpdateEvent,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Which card the endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    /// Adaptive card in a `message` (Workflows).
    Adaptive,
    /// Legacy connector MessageCard.
    MessageCard,
}

/// One configured Teams endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teams {
    url: String,
    card: Card,
}

/// The facts of one update: (name, value).
fn facts(event: &UpdateEvent) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Container", event.display_name.clone()),
        ("Image", event.image.clone()),
        ("Current", event.local_value.clone()),
        ("Available", event.remote_value.clone()),
    ];
    if let Some(diff) = &event.semver_diff {
        facts.push(("Update", diff.clone()));
    }
    if let Some(link) = &event.link {
        facts.push(("Release notes", link.clone()));
    }
    facts
}

impl Teams {
    fn body(&self, message: &Message, delivery: Delivery<'_>) -> Value {
        let facts = match delivery {
            Delivery::One(event) => facts(event),
            Delivery::Batch(_) => Vec::new(),
        };
        match self.card {
            Card::Adaptive => {
                let mut blocks = vec![
                    json!({"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": true}),
                    json!({"type": "TextBlock", "text": message.body, "wrap": true}),
                ];
                if !facts.is_empty() {
                    let facts: Vec<Value> = facts
                        .iter()
                        .map(|(name, value)| json!({"title": name, "value": value}))
                        .collect();
                    blocks.push(json!({"type": "FactSet", "facts": facts}));
                }
                json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": null,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.2",
                            "body": blocks,
                        }
                    }]
                })
            }
            Card::MessageCard => {
                let facts: Vec<Value> = facts
                    .iter()
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect();
                json!({
                    "@type": "MessageCard",
                    "@context": "https://schema.org/extensions",
                    "themeColor": "1F6FEB",
                    "summary": message.title,
                    "sections": [{
                        "activityTitle": message.title,
                        "text": message.body,
                        "facts": facts,
                        "markdown": true,
                    }]
                })
            }
        }
    }
}

impl Trigger for Teams {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "teams",
            env!("CARGO_PKG_VERSION"),
            "Posts a card to Microsoft Teams",
        )
        .key(ConfigKey::required("url", "Workflows webhook URL (or a legacy connector's)").secret())
        .key(ConfigKey::optional(
            "card",
            "`adaptive` (Workflows, default) or `message-card` (legacy connector)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let card = match settings
            .string_or("card", "adaptive")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "adaptive" => Card::Adaptive,
            "message-card" | "messagecard" => Card::MessageCard,
            other => {
                return Err(ConfigError::key(
                    "card",
                    format!("`{other}` is not adaptive or message-card"),
                ))
            }
        };
        Ok(Self {
            url: settings.require_http_url("url")?.as_string(),
            card,
        })
    }

    fn format(&self) -> TextFormat {
        TextFormat::Markdown
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let response = exchange(
            "teams",
            Request::post(&self.url).json(&self.body(message, delivery)),
        )?;
        // Legacy connectors report a throttled post in a 200 answer.
        if response.text().contains("HTTP error 429") {
            return Err(DeliveryError::rate_limited(
                "teams connector answered: HTTP error 429",
                None,
            ));
        }
        Ok(())
    }
}

crowsnest_plugin_sdk::export_trigger!(Teams);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn adaptive_card_with_facts() {
        let teams: Teams =
            configure_from([("url", "https://x.logic.azure.test/workflows/1")]).unwrap();
        let body = teams.body(&message("T", "B"), Delivery::One(&event("web")));
        let card = &body["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][0]["text"], "T");
        assert_eq!(card["body"][2]["facts"][3]["value"], "1.26");
    }

    #[test]
    fn message_card() {
        let teams: Teams =
            configure_from([("url", "https://o.test/webhook"), ("card", "message-card")]).unwrap();
        let body = teams.body(&message("T", "B"), Delivery::Batch(&[event("a")]));
        assert_eq!(body["@type"], "MessageCard");
        assert_eq!(body["sections"][0]["text"], "B");
        assert_eq!(
            configure_from::<Teams>([("url", "https://o"), ("card", "x")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("card")
        );
    }
}
