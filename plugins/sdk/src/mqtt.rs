//! Publishing to the MQTT broker the host is configured with for this
//! trigger instance (`[triggers.NAME.mqtt]`): the host holds broker, TLS,
//! credentials and the topics the instance may publish to.

pub use crowsnest_plugin_world_trigger::crowsnest::plugin::mqtt::{MqttError, Publication, Qos};

use crowsnest_plugin_world_trigger::crowsnest::plugin::mqtt as wit_mqtt;

/// Publishes `messages` in order over one connection and waits for the
/// broker's acknowledgements. Outside wasm there is no host: it fails with
/// [`MqttError::Transport`].
pub fn publish(messages: &[Publication]) -> Result<(), MqttError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(MqttError::Transport(
            "no crowsnest host outside wasm: MQTT is only available to the component".into(),
        ));
    }
    wit_mqtt::publish(messages)
}

/// The error in words.
pub fn describe(error: &MqttError) -> String {
    match error {
        MqttError::NotAllowed(detail) => format!("not allowed: {detail}"),
        MqttError::InvalidTopic(detail) => format!("invalid topic: {detail}"),
        MqttError::Refused(detail) => format!("refused: {detail}"),
        MqttError::Transport(detail) => format!("transport error: {detail}"),
    }
}

/// `0`, `1` or `2` as a quality of service.
pub fn qos_from_number(level: u32) -> Option<Qos> {
    match level {
        0 => Some(Qos::AtMostOnce),
        1 => Some(Qos::AtLeastOnce),
        2 => Some(Qos::ExactlyOnce),
        _ => None,
    }
}
