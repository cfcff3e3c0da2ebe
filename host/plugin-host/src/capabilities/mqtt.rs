//! `mqtt`: publishing to the one MQTT broker configured for a trigger
//! instance, only to the topics its filters allow. The host holds the broker,
//! TLS, credentials and client id; the guest only says what to publish. One
//! connection per `publish` call (rumqttc), closed once every QoS 1/2 message
//! is acknowledged; calls of one instance take turns, so a fixed client id
//! never kicks out its own other connection.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS,
    TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use super::{error_chain, pem_certificates};
use crate::bindings::trigger::crowsnest::plugin::mqtt;
use crate::capabilities::smtp::SetupError;
use crate::HostState;

/// Largest message the host publishes (payload and topic).
const MAX_PACKET: usize = 256 << 10;

/// The broker of one trigger instance, as configured.
#[derive(Clone)]
pub struct MqttBroker {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Connect with TLS (`mqtts://`).
    pub tls: bool,
    /// Extra trusted CA certificates (PEM), besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key (PEM), for brokers that want one.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    /// Client id; `None`: `crowsnest-<random>` per connection.
    pub client_id: Option<String>,
    /// Topic filters the instance may publish to (`+` and `#` wildcards).
    pub topics: Vec<String>,
    /// Limit for one `publish` call, connection to last acknowledgement.
    pub timeout: Duration,
}

impl fmt::Debug for MqttBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttBroker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("client_id", &self.client_id)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

/// The MQTT capability of one trigger instance.
#[derive(Clone)]
pub struct MqttCapability {
    broker: Arc<MqttBroker>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// One connection at a time per instance.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl MqttCapability {
    /// A capability publishing to `broker`; a bad filter, certificate or key
    /// is reported here, naming its setting.
    pub fn new(broker: MqttBroker) -> Result<Self, SetupError> {
        if broker.topics.is_empty() {
            return Err(SetupError::new("topics", "allows no topic"));
        }
        if let Some(bad) = broker.topics.iter().find(|f| !rumqttc::valid_filter(f)) {
            return Err(SetupError::new(
                "topics",
                format!("`{bad}` is not an MQTT topic filter"),
            ));
        }
        let tls = broker.tls.then(|| tls_config(&broker)).transpose()?;
        Ok(Self {
            broker: Arc::new(broker),
            tls,
            turn: Arc::default(),
        })
    }

    /// Whether the instance may publish to `topic`.
    fn allows(&self, topic: &str) -> bool {
        self.broker
            .topics
            .iter()
            .any(|filter| rumqttc::matches(topic, filter))
    }

    fn check(&self, messages: &[mqtt::Publication]) -> Result<(), mqtt::MqttError> {
        for message in messages {
            let topic = &message.topic;
            if topic.is_empty() || topic.len() > 65_535 || !rumqttc::valid_topic(topic) {
                return Err(mqtt::MqttError::InvalidTopic(format!(
                    "`{topic}` is not a topic name (empty, too long, or with a wildcard)"
                )));
            }
            if !self.allows(topic) {
                return Err(mqtt::MqttError::NotAllowed(format!(
                    "topic `{topic}` is outside this trigger's allowed topics ({})",
                    self.broker.topics.join(", ")
                )));
            }
            if topic.len() + message.payload.len() > MAX_PACKET {
                return Err(mqtt::MqttError::InvalidTopic(format!(
                    "the message to `{topic}` is over {MAX_PACKET} bytes"
                )));
            }
        }
        Ok(())
    }

    fn options(&self) -> MqttOptions {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
        let broker = &self.broker;
        let client_id = broker.client_id.clone().unwrap_or_else(|| {
            format!(
                "crowsnest-{}-{}",
                std::process::id(),
                CONNECTIONS.fetch_add(1, Ordering::Relaxed)
            )
        });
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET + 1024, MAX_PACKET + 1024);
        if let Some((username, password)) = &broker.credentials {
            options.set_credentials(username.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::clone(tls),
            )));
        }
        options
    }

    async fn publish(&self, messages: Vec<mqtt::Publication>) -> Result<(), mqtt::MqttError> {
        self.check(&messages)?;
        if messages.is_empty() {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        let broker = format!("{}:{}", self.broker.host, self.broker.port);
        match tokio::time::timeout(self.broker.timeout, self.exchange(messages)).await {
            Ok(result) => result.map_err(|err| match err {
                ConnectionError::ConnectionRefused(code) => mqtt::MqttError::Refused(format!(
                    "{broker} refused the connection: {}",
                    refusal(code)
                )),
                other => mqtt::MqttError::Transport(format!("{broker}: {}", error_chain(&other))),
            }),
            Err(_) => Err(mqtt::MqttError::Transport(format!(
                "{broker}: no acknowledgement within {:?}",
                self.broker.timeout
            ))),
        }
    }

    /// Connect, publish every message, wait for the acknowledgements, disconnect.
    async fn exchange(&self, messages: Vec<mqtt::Publication>) -> Result<(), ConnectionError> {
        let total = messages.len();
        let acknowledged = messages
            .iter()
            .filter(|m| !matches!(m.qos, mqtt::Qos::AtMostOnce))
            .count();
        let (client, mut events) = AsyncClient::new(self.options(), total + 2);
        for message in messages {
            let qos = match message.qos {
                mqtt::Qos::AtMostOnce => QoS::AtMostOnce,
                mqtt::Qos::AtLeastOnce => QoS::AtLeastOnce,
                mqtt::Qos::ExactlyOnce => QoS::ExactlyOnce,
            };
            // The channel holds every request: this never waits.
            if client
                .try_publish(message.topic, qos, message.retain, message.payload)
                .is_err()
            {
                return Err(ConnectionError::RequestsDone);
            }
        }
        let (mut sent, mut acks, mut leaving) = (0, 0, false);
        loop {
            match events.poll().await? {
                Event::Outgoing(Outgoing::Publish(_)) => sent += 1,
                Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)) => acks += 1,
                Event::Outgoing(Outgoing::Disconnect) => return Ok(()),
                _ => {}
            }
            if !leaving && sent >= total && acks >= acknowledged {
                leaving = true;
                if client.try_disconnect().is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// A CONNACK refusal in words.
fn refusal(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::BadUserNamePassword => "bad username or password",
        ConnectReturnCode::NotAuthorized => "not authorized",
        ConnectReturnCode::BadClientId => "client id rejected",
        ConnectReturnCode::ServiceUnavailable => "service unavailable",
        ConnectReturnCode::RefusedProtocolVersion => "protocol version refused",
        ConnectReturnCode::Success => "success",
    }
}

/// The TLS client configuration: the system's roots plus the configured CA,
/// and the client identity when one is configured.
fn tls_config(broker: &MqttBroker) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot read is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    if let Some(pem) = &broker.ca_pem {
        for certificate in pem_certificates("ca", pem)? {
            roots
                .add(certificate)
                .map_err(|err| SetupError::new("ca", err.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| SetupError::new("url", err.to_string()))?
        .with_root_certificates(roots);
    let config = match &broker.client_identity {
        Some((chain, key)) => {
            let chain = pem_certificates("cert", chain)?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|err| SetupError::new("key", format!("not a PEM private key: {err}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| SetupError::new("cert", err.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl mqtt::Host for HostState {
    async fn publish(&mut self, messages: Vec<mqtt::Publication>) -> Result<(), mqtt::MqttError> {
        let Some(capability) = self.capabilities.mqtt.clone() else {
            return Err(mqtt::MqttError::NotAllowed(
                "no MQTT broker is configured for this trigger ([triggers.NAME.mqtt])".into(),
            ));
        };
        let started = Instant::now();
        let result = capability.publish(messages).await;
        self.clock.add_host_time(started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(topics: &[&str]) -> MqttBroker {
        MqttBroker {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
            ca_pem: None,
            client_identity: None,
            credentials: None,
            client_id: None,
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            timeout: Duration::from_secs(5),
        }
    }

    fn publication(topic: &str) -> mqtt::Publication {
        mqtt::Publication {
            topic: topic.into(),
            payload: b"{}".to_vec(),
            qos: mqtt::Qos::AtLeastOnce,
            retain: false,
        }
    }

    #[test]
    fn topics_must_match_a_filter() {
        let mqtt =
            MqttCapability::new(broker(&["crowsnest/#", "homeassistant/update/+/config"])).unwrap();
        for allowed in [
            "crowsnest/web",
            "crowsnest/a/b",
            "homeassistant/update/web/config",
        ] {
            assert!(mqtt.check(&[publication(allowed)]).is_ok(), "{allowed}");
        }
        let refused = [
            ("other/web", "NotAllowed"),
            ("homeassistant/update/web/state", "NotAllowed"),
            ("crowsnest/+", "InvalidTopic"),
            ("", "InvalidTopic"),
        ];
        for (topic, kind) in refused {
            let err = mqtt.check(&[publication(topic)]).unwrap_err();
            let found = match err {
                mqtt::MqttError::NotAllowed(_) => "NotAllowed",
                mqtt::MqttError::InvalidTopic(_) => "InvalidTopic",
                _ => "other",
            };
            assert_eq!(found, kind, "{topic}");
        }
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases = [
            (broker(&[]), "topics"),
            (broker(&["a/#/b"]), "topics"),
            (
                MqttBroker {
                    tls: true,
                    ca_pem: Some(b"garbage".to_vec()),
                    ..broker(&["a"])
                },
                "ca",
            ),
        ];
        for (broker, key) in cases {
            match MqttCapability::new(broker) {
                Err(err) => assert_eq!(err.key, key, "{err}"),
                Ok(_) => panic!("accepted"),
            }
        }
    }
}
