//! A watcher: one Docker engine to watch, as configured (`[watchers.NAME]`),
//! and where its engine listens.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::DiscoveryError;

/// Socket used by a watcher that names neither `socket` nor `host`.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Name of the watcher used when the configuration defines none.
pub const DEFAULT_WATCHER_NAME: &str = "local";

/// One Docker engine to watch, as written in the configuration (`[watchers.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    /// Unix socket of the engine, e.g. `/var/run/docker.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Remote engine, `tcp://host:port` or `https://host:port` (`unix://PATH` is accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// CA certificate (PEM) that signed the engine's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Watch containers that carry no `crowsnest.watch` label.
    #[serde(default = "default_true")]
    pub watch_by_default: bool,
    /// Include stopped containers, not only running ones.
    #[serde(default)]
    pub watch_all: bool,
    /// Cron expression for periodic scans of this watcher (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Random delay, in seconds, added before each scheduled scan (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// The engine is a Swarm manager: its services are watched (and updated
    /// by `service update`) instead of their task containers.
    #[serde(default)]
    pub swarm: bool,
}

fn default_true() -> bool {
    true
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self {
            socket: None,
            host: None,
            ca: None,
            cert: None,
            key: None,
            watch_by_default: true,
            watch_all: false,
            schedule: None,
            jitter: None,
            swarm: false,
        }
    }
}

impl WatcherConfig {
    /// Works out how to reach the engine, validating the combination of fields.
    pub fn endpoint(&self, watcher: &str) -> Result<Endpoint, DiscoveryError> {
        let invalid = |reason: String| DiscoveryError::InvalidConfig {
            watcher: watcher.to_owned(),
            reason,
        };
        let tls_files = [&self.ca, &self.cert, &self.key];
        let any_tls_file = tls_files.iter().any(|file| file.is_some());
        match (&self.socket, &self.host) {
            (Some(_), Some(_)) => Err(invalid("set either `socket` or `host`, not both".into())),
            (socket, None) => {
                if any_tls_file {
                    return Err(invalid(
                        "`ca`/`cert`/`key` only apply to a `host` watcher".into(),
                    ));
                }
                let socket = socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
                Ok(Endpoint::Unix(socket))
            }
            (None, Some(host)) => {
                if let Some(path) = host.strip_prefix("unix://") {
                    if any_tls_file {
                        return Err(invalid("`ca`/`cert`/`key` do not apply to unix://".into()));
                    }
                    return Ok(Endpoint::Unix(PathBuf::from(path)));
                }
                let (scheme, authority) = host.split_once("://").ok_or_else(|| {
                    invalid(format!(
                        "`host` must start with tcp://, https:// or unix://, got `{host}`"
                    ))
                })?;
                if authority.is_empty() {
                    return Err(invalid(format!("`host` has no address: `{host}`")));
                }
                let wants_tls = match scheme {
                    "https" => true,
                    "tcp" | "http" => any_tls_file,
                    other => {
                        return Err(invalid(format!(
                            "unsupported scheme `{other}://` in `host` (use tcp, https or unix)"
                        )))
                    }
                };
                if !wants_tls {
                    return Ok(Endpoint::Tcp(format!("tcp://{authority}")));
                }
                match (&self.ca, &self.cert, &self.key) {
                    (Some(ca), Some(cert), Some(key)) => Ok(Endpoint::Tls {
                        address: format!("tcp://{authority}"),
                        ca: ca.clone(),
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => Err(invalid(
                        "TLS needs all three of `ca`, `cert` and `key`".into(),
                    )),
                }
            }
        }
    }
}

/// The configured watchers, or the single `local` socket watcher when none is configured.
pub fn watchers_or_default(
    configured: &BTreeMap<String, WatcherConfig>,
) -> BTreeMap<String, WatcherConfig> {
    if configured.is_empty() {
        BTreeMap::from([(DEFAULT_WATCHER_NAME.to_owned(), WatcherConfig::default())])
    } else {
        configured.clone()
    }
}

/// Where a Docker engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local unix socket.
    Unix(PathBuf),
    /// Plain, unauthenticated TCP (`tcp://host:port`).
    Tcp(String),
    /// TCP with TLS and a client certificate.
    Tls {
        /// `tcp://host:port`.
        address: String,
        /// CA certificate file.
        ca: PathBuf,
        /// Client certificate file.
        cert: PathBuf,
        /// Client key file.
        key: PathBuf,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(address) => f.write_str(address),
            Endpoint::Tls { address, .. } => write!(f, "{address} (TLS)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_defaults_to_local_socket() {
        let endpoint = WatcherConfig::default().endpoint("local").unwrap();
        assert_eq!(endpoint, Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)));
        let defaults = watchers_or_default(&BTreeMap::new());
        assert_eq!(defaults.keys().collect::<Vec<_>>(), vec!["local"]);
    }

    #[test]
    fn endpoint_parses_hosts() {
        let tcp = WatcherConfig {
            host: Some("tcp://10.0.0.1:2375".into()),
            ..Default::default()
        };
        assert_eq!(
            tcp.endpoint("w").unwrap(),
            Endpoint::Tcp("tcp://10.0.0.1:2375".into())
        );

        let tls = WatcherConfig {
            host: Some("https://h:2376".into()),
            ca: Some("ca.pem".into()),
            cert: Some("cert.pem".into()),
            key: Some("key.pem".into()),
            ..Default::default()
        };
        assert!(
            matches!(tls.endpoint("w").unwrap(), Endpoint::Tls { address, .. } if address == "tcp://h:2376")
        );

        let half_tls = WatcherConfig {
            host: Some("https://h:2376".into()),
            ca: Some("ca.pem".into()),
            ..Default::default()
        };
        let error = half_tls.endpoint("remote").unwrap_err().to_string();
        assert!(
            error.contains("remote") && error.contains("`key`"),
            "{error}"
        );

        let both = WatcherConfig {
            socket: Some("/s".into()),
            host: Some("tcp://h:1".into()),
            ..Default::default()
        };
        assert!(both.endpoint("w").is_err());

        let bad_scheme = WatcherConfig {
            host: Some("ftp://h".into()),
            ..Default::default()
        };
        assert!(bad_scheme.endpoint("w").is_err());
    }

    #[test]
    fn watcher_config_rejects_unknown_fields_and_defaults() {
        let config: WatcherConfig = toml::from_str("socket = \"/run/docker.sock\"").unwrap();
        assert!(config.watch_by_default);
        assert!(!config.watch_all);
        assert!(toml::from_str::<WatcherConfig>("sockett = \"/x\"").is_err());
    }
}
