//! The sub-tables of `[triggers.NAME]` the host reads itself: the message
//! templates, and the SMTP server (`[triggers.NAME.smtp]`) and MQTT broker
//! (`[triggers.NAME.mqtt]`) lent to the trigger's plugin. The plugin never
//! sees these settings: it composes messages, the host sends them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::sections::from_text;

/// What a secret is shown as.
const MASK: &str = "********";

/// A secret setting (a password): never shown, neither by `Debug` nor when
/// the configuration is served through the API.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// A secret holding `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS, required (port 587 by default).
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
    /// No TLS (port 25 by default): only for a relay on the same host.
    None,
}

impl FromStr for SmtpTls {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(format!("`{other}` is not starttls, tls or none")),
        }
    }
}

/// `[triggers.NAME.smtp]`: the mail server a trigger sends through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    rename_all(serialize = "camelCase", deserialize = "snake_case")
)]
pub struct SmtpConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port (default: 587 for STARTTLS, 465 for TLS, 25 for none).
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(deserialize_with = "from_text")]
    pub tls: SmtpTls,
    /// SMTP AUTH username.
    pub username: Option<String>,
    /// SMTP AUTH password (or `password_file`).
    pub password: Option<SecretText>,
    /// A CA certificate file (PEM) trusted besides the system's.
    pub ca: Option<PathBuf>,
    /// Sender, `Name <address>` or `address`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Limit for one message, seconds.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: None,
            tls: SmtpTls::default(),
            username: None,
            password: None,
            ca: None,
            from: String::new(),
            to: Vec::new(),
            timeout_secs: 30,
        }
    }
}

impl SmtpConfig {
    /// The checks serde cannot make: the key at fault (under `smtp.`) and why.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.host.trim().is_empty() {
            return Err(("smtp.host", "missing: the SMTP server's host".into()));
        }
        if self.from.trim().is_empty() {
            return Err(("smtp.from", "missing: the sender address".into()));
        }
        if self.to.is_empty() {
            return Err(("smtp.to", "missing: at least one recipient".into()));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err((
                "smtp.username",
                "missing: a password needs a username".into(),
            ));
        }
        if self.timeout_secs == 0 {
            return Err(("smtp.timeout_secs", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `[triggers.NAME.mqtt]`: the broker a trigger publishes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    rename_all(serialize = "camelCase", deserialize = "snake_case")
)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]` (TLS).
    pub url: String,
    /// Username.
    pub username: Option<String>,
    /// Password (or `password_file`).
    pub password: Option<SecretText>,
    /// Client id (default: a fresh `crowsnest-…` per connection).
    pub client_id: Option<String>,
    /// A CA certificate file (PEM) trusted besides the system's.
    pub ca: Option<PathBuf>,
    /// Client certificate file (PEM), for brokers that want one; needs `key`.
    pub cert: Option<PathBuf>,
    /// Client private key file (PEM); needs `cert`.
    pub key: Option<PathBuf>,
    /// Topic filters the trigger may publish to.
    pub topics: Vec<String>,
    /// Limit for one delivery (connect, publish, acknowledgements), seconds.
    pub timeout_secs: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            username: None,
            password: None,
            client_id: None,
            ca: None,
            cert: None,
            key: None,
            topics: vec!["crowsnest/#".into(), "homeassistant/#".into()],
            timeout_secs: 30,
        }
    }
}

/// Where an MQTT broker is: host, port, TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connect with TLS.
    pub tls: bool,
}

impl MqttConfig {
    /// The broker `url` names.
    pub fn address(&self) -> Result<BrokerAddress, String> {
        let (scheme, rest) = self
            .url
            .trim()
            .split_once("://")
            .ok_or_else(|| format!("`{}` is not mqtt://host[:port] or mqtts://…", self.url))?;
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (false, 1883),
            "mqtts" | "ssl" => (true, 8883),
            other => return Err(format!("scheme `{other}` is not mqtt or mqtts")),
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "`{}` must be just mqtt(s)://host[:port] (credentials go in username/password)",
                self.url
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && !port.ends_with(']') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("`{port}` is not a port"))?,
            ),
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("`{}` has no host", self.url));
        }
        Ok(BrokerAddress {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// The checks serde cannot make: the key at fault (under `mqtt.`) and why.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.url.trim().is_empty() {
            return Err((
                "mqtt.url",
                "missing: mqtt://host[:port] or mqtts://…".into(),
            ));
        }
        self.address().map_err(|message| ("mqtt.url", message))?;
        if self.password.is_some() && self.username.is_none() {
            return Err((
                "mqtt.username",
                "missing: a password needs a username".into(),
            ));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(("mqtt.cert", "`cert` and `key` go together".into()));
        }
        if self.topics.is_empty() {
            return Err(("mqtt.topics", "allows no topic".into()));
        }
        if self.timeout_secs == 0 {
            return Err(("mqtt.timeout_secs", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(url: &str) -> MqttConfig {
        MqttConfig {
            url: url.into(),
            ..MqttConfig::default()
        }
    }

    #[test]
    fn broker_addresses() {
        let cases = [
            ("mqtt://127.0.0.1", Ok(("127.0.0.1", 1883, false))),
            ("mqtts://broker.lan:18883/", Ok(("broker.lan", 18883, true))),
            ("mqtt://[::1]:1884", Ok(("::1", 1884, false))),
            ("http://x", Err("scheme")),
            ("mqtt://user:pw@host", Err("credentials")),
            ("mqtt://host:port", Err("port")),
            ("host:1883", Err("mqtt://")),
        ];
        for (url, expected) in cases {
            let found = mqtt(url).address();
            match (found, expected) {
                (Ok(address), Ok((host, port, tls))) => {
                    assert_eq!(
                        (address.host.as_str(), address.port, address.tls),
                        (host, port, tls),
                        "{url}"
                    );
                }
                (Err(message), Err(words)) => assert!(message.contains(words), "{url}: {message}"),
                (found, expected) => panic!("{url}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let secret = SecretText::new("hunter2");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            format!("\"{MASK}\"")
        );
        assert_eq!(secret.expose(), "hunter2");
    }
}
