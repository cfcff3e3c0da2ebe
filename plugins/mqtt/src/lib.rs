//! `mqtt`: publishes updates to the MQTT broker configured for the trigger
//! (`[triggers.NAME.mqtt]`: broker, TLS, credentials and allowed topics are
//! the host's). Each container's update goes, retained, to
//! `{topic}/container/{watcher}/{name}` as JSON (the event with the rendered
//! title and body); a batch also goes to `{topic}/batch`. With
//! `hass_discovery`, each container also appears in Home Assistant as an
//! update entity: its discovery config on
//! `{hass_prefix}/update/crowsnest_{watcher}_{name}/config` and its state
//! (installed and latest version) on `{topic}/update/{watcher}/{name}`.

use crowsnest_plugin_sdk::mqtt::{self, MqttError, Publication, Qos};
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    event_to_json, truncate, Delivery, DeliveryError, Message, Trigger, UpdateEvent,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Home Assistant's limit on `release_summary`.
const MAX_RELEASE_SUMMARY: usize = 255;

/// One configured publication scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mqtt {
    topic: String,
    qos: Qos,
    retain: bool,
    hass_prefix: Option<String>,
}

/// A name as one topic level (no level separator or wildcard in it).
fn level(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A name as a Home Assistant object id (`[a-zA-Z0-9_-]`).
fn object_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Mqtt {
    fn publication(&self, topic: String, payload: &Value, retain: bool) -> Publication {
        Publication {
            topic,
            payload: payload.to_string().into_bytes(),
            qos: self.qos,
            retain,
        }
    }

    fn container(&self, event: &UpdateEvent, message: &Message, single: bool) -> Vec<Publication> {
        let (watcher, name) = (level(&event.watcher), level(&event.container_name));
        let mut payload = event_to_json(event);
        if single {
            payload["title"] = message.title.clone().into();
            payload["body"] = message.body.clone().into();
        }
        let mut publications = vec![self.publication(
            format!("{}/container/{watcher}/{name}", self.topic),
            &payload,
            self.retain,
        )];
        if let Some(prefix) = &self.hass_prefix {
            let id = format!(
                "crowsnest_{}_{}",
                object_id(&event.watcher),
                object_id(&event.container_name)
            );
            let state_topic = format!("{}/update/{watcher}/{name}", self.topic);
            let config = json!({
                "name": event.display_name,
                "unique_id": id,
                "object_id": id,
                "state_topic": state_topic,
                "device": {
                    "identifiers": [format!("crowsnest_{}", object_id(&event.watcher))],
                    "name": format!("crowsnest ({})", event.watcher),
                    "manufacturer": "crowsnest",
                },
            });
            let summary = if single { message.body.as_str() } else { "" };
            let mut state = json!({
                "installed_version": event.local_value,
                "latest_version": event.remote_value,
                "title": event.image,
                "release_summary": truncate(summary, MAX_RELEASE_SUMMARY),
            });
            if let Some(link) = &event.link {
                state["release_url"] = link.clone().into();
            }
            // Discovery configs and states are always retained: Home Assistant reads them on start.
            publications.push(self.publication(
                format!("{prefix}/update/{id}/config"),
                &config,
                true,
            ));
            publications.push(self.publication(state_topic, &state, true));
        }
        publications
    }

    fn publications(&self, message: &Message, delivery: Delivery<'_>) -> Vec<Publication> {
        let mut publications: Vec<Publication> = delivery
            .events()
            .iter()
            .flat_map(|event| self.container(event, message, !delivery.is_batch()))
            .collect();
        if let Delivery::Batch(events) = delivery {
            let payload = json!({
                "title": message.title,
                "body": message.body,
                "count": events.len(),
                "containers": events.iter().map(event_to_json).collect::<Vec<_>>(),
            });
            publications.push(self.publication(format!("{}/batch", self.topic), &payload, false));
        }
        publications
    }
}

/// What the host's MQTT client reported, with whether to try again.
fn failure(error: &MqttError) -> DeliveryError {
    let message = format!("mqtt: {}", mqtt::describe(error));
    match error {
        MqttError::Transport(_) => DeliveryError::retryable(message),
        _ => DeliveryError::permanent(message),
    }
}

impl Trigger for Mqtt {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "mqtt",
            env!("CARGO_PKG_VERSION"),
            "Publishes updates to the trigger's MQTT broker",
        )
        .key(ConfigKey::optional(
            "topic",
            "Base topic (default crowsnest)",
        ))
        .key(ConfigKey::optional("qos", "0, 1 (default) or 2"))
        .key(ConfigKey::optional(
            "retain",
            "Retain the container topics (default true)",
        ))
        .key(ConfigKey::optional(
            "hass_discovery",
            "Publish Home Assistant update entities (default false)",
        ))
        .key(ConfigKey::optional(
            "hass_prefix",
            "Home Assistant discovery prefix (default homeassistant)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let topic = settings
            .string_or("topic", "crowsnest")
            .trim()
            .trim_end_matches('/')
            .to_string();
        if topic.is_empty() || topic.contains(['+', '#']) {
            return Err(ConfigError::key(
                "topic",
                "must be a topic without wildcards",
            ));
        }
        let qos = settings.u32("qos")?.unwrap_or(1);
        let qos = mqtt::qos_from_number(qos)
            .ok_or_else(|| ConfigError::key("qos", "must be 0, 1 or 2"))?;
        let prefix = settings
            .string_or("hass_prefix", "homeassistant")
            .trim()
            .trim_end_matches('/')
            .to_string();
        if prefix.is_empty() || prefix.contains(['+', '#']) {
            return Err(ConfigError::key(
                "hass_prefix",
                "must be a topic without wildcards",
            ));
        }
        Ok(Self {
            topic,
            qos,
            retain: settings.bool_or("retain", true)?,
            hass_prefix: settings.bool_or("hass_discovery", false)?.then_some(prefix),
        })
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        mqtt::publish(&self.publications(message, delivery)).map_err(|err| failure(&err))
    }
}

crowsnest_plugin_sdk::export_trigger!(Mqtt);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    fn payload(publication: &Publication) -> Value {
        crowsnest_plugin_sdk::serde_json::from_slice(&publication.payload).unwrap()
    }

    #[test]
    fn container_topics_and_home_assistant_entities() {
        let mqtt: Mqtt = configure_from([("topic", "cn/"), ("hass_discovery", "true")]).unwrap();
        let publications = mqtt.publications(&message("T", "B"), Delivery::One(&event("web.1")));
        let topics: Vec<&str> = publications.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "cn/container/local/web.1",
                "homeassistant/update/crowsnest_local_web_1/config",
                "cn/update/local/web.1"
            ]
        );
        assert!(publications
            .iter()
            .all(|p| p.retain && p.qos == Qos::AtLeastOnce));
        assert_eq!(payload(&publications[0])["title"], "T");
        assert_eq!(
            payload(&publications[1])["state_topic"],
            "cn/update/local/web.1"
        );
        assert_eq!(payload(&publications[2])["latest_version"], "1.26");
        assert_eq!(payload(&publications[2])["release_summary"], "B");
    }

    #[test]
    fn batches_also_publish_the_message() {
        let mqtt: Mqtt = configure_from([("qos", "0"), ("retain", "false")]).unwrap();
        let publications = mqtt.publications(
            &message("T", "B"),
            Delivery::Batch(&[event("a"), event("b")]),
        );
        assert_eq!(publications.len(), 3);
        let batch = &publications[2];
        assert_eq!(
            (batch.topic.as_str(), batch.retain),
            ("crowsnest/batch", false)
        );
        assert_eq!(payload(batch)["count"], 2);
        assert!(payload(&publications[0]).get("title").is_none());
        assert_eq!(
            configure_from::<Mqtt>([("qos", "3")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("qos")
        );
        assert_eq!(
            configure_from::<Mqtt>([("topic", "a/#")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("topic")
        );
    }
}
