//! Building the triggers of `[triggers.NAME]` from the configuration: the
//! plugin instance, its allow-list, the SMTP server and MQTT broker lent to
//! it, its templates, and its settings with secrets masked.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crowsnest_config::{Config, ConfigError, MqttConfig, SmtpConfig, SmtpTls};
use crowsnest_plugin_host::{
    Capabilities, Catalog, HttpCapability, InstanceSpec, MqttBroker, MqttCapability, PluginKind,
    PluginObserver, SetupError, SmtpCapability, SmtpSecurity, SmtpServer, TriggerPlugin,
};
use crowsnest_store::Store;

use super::{ConfiguredTrigger, TriggerDispatcher};
use crate::instance_setup::{allow_list, config_error};
use crate::metrics::Metrics;

/// The service hosts a built-in trigger plugin reaches when its `url` is not set.
const BUILTIN_DEFAULT_HOSTS: &[(&str, &[&str])] = &[
    ("ntfy", &["ntfy.sh"]),
    ("pushover", &["api.pushover.net"]),
    ("slack", &["slack.com"]),
    ("telegram", &["api.telegram.org"]),
];

impl TriggerDispatcher {
    /// Instantiates every `[triggers.NAME]` of `config` from `catalog`. A bad
    /// trigger is a configuration error naming its key.
    pub async fn from_config(
        config: &Config,
        catalog: &Catalog,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        Self::from_config_only(config, catalog, store, metrics, None).await
    }

    /// Like [`TriggerDispatcher::from_config`], but only the trigger named
    /// `only` when given (`crowsnest triggers test NAME` sets up no other).
    pub async fn from_config_only(
        config: &Config,
        catalog: &Catalog,
        store: Store,
        metrics: Arc<Metrics>,
        only: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|err| {
                config.error_at(
                    &["triggers"],
                    format!("cannot build the HTTP client: {err}"),
                )
            })?;
        let observer: Arc<dyn PluginObserver> = metrics.clone();
        let mut triggers = Vec::new();
        for (name, instance) in &config.triggers {
            if only.is_some_and(|only| only != name) {
                continue;
            }
            let at =
                |key: &str, message: String| config.error_at(&["triggers", name, key], message);
            let entry = catalog
                .find(&instance.plugin, PluginKind::Trigger)
                .await
                .map_err(|err| at("plugin", err.to_string()))?;
            let allow = allow_list(
                instance,
                &instance.host.allowed_hosts,
                &entry.grants.allowed_hosts,
                BUILTIN_DEFAULT_HOSTS,
            )
            .map_err(|(key, message)| at(key, message))?;
            let settings = instance.plugin_settings();
            let secrets = entry.component.info.secrets(&settings);
            let capabilities = Capabilities {
                http: Some(HttpCapability::new(Arc::new(allow), http.clone())),
                smtp: lend(
                    config,
                    name,
                    "smtp",
                    instance.host.smtp.as_ref(),
                    smtp_capability,
                )?,
                mqtt: lend(
                    config,
                    name,
                    "mqtt",
                    instance.host.mqtt.as_ref(),
                    mqtt_capability,
                )?,
                secrets: Arc::new(secrets.clone()),
                ..Capabilities::default()
            };
            let spec = InstanceSpec {
                settings: settings.clone(),
                limits: crate::plugin_setup::sandbox_limits(&config.plugins),
                capabilities,
                max_instances: 2,
                observer: observer.clone(),
            };
            let plugin = TriggerPlugin::new(&entry.component, name, spec)
                .await
                .map_err(|err| config_error(config, &["triggers", name], err))?;
            let mut trigger = ConfiguredTrigger::new(
                name.clone(),
                instance.plugin.clone(),
                instance.host.clone(),
                Box::new(plugin),
            )
            .map_err(|err| at(err.key, err.message))?;
            trigger.masked_settings = entry.component.info.masked(&settings);
            trigger.secrets = secrets;
            triggers.push(trigger);
        }
        Ok(Self::new(triggers, store, metrics))
    }
}

/// The capability a `[triggers.NAME.TABLE]` sub-table configures, if it is
/// there; a bad setting is an error at its key in that table.
fn lend<S, C>(
    config: &Config,
    name: &str,
    table: &str,
    settings: Option<&S>,
    build: fn(&S, Option<&Path>) -> Result<C, SetupError>,
) -> Result<Option<C>, ConfigError> {
    settings
        .map(|settings| build(settings, config.file()))
        .transpose()
        .map_err(|err| config.error_at(&["triggers", name, table, err.key], err.message))
}

/// A PEM file named by setting `key`, relative to the configuration file.
fn read_pem(
    key: &'static str,
    path: &Path,
    config_file: Option<&Path>,
) -> Result<Vec<u8>, SetupError> {
    let path = match config_file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    std::fs::read(&path)
        .map_err(|err| SetupError::new(key, format!("cannot read {}: {err}", path.display())))
}

/// The SMTP capability `[triggers.NAME.smtp]` describes.
fn smtp_capability(
    smtp: &SmtpConfig,
    config_file: Option<&Path>,
) -> Result<SmtpCapability, SetupError> {
    let security = match smtp.tls {
        SmtpTls::StartTls => SmtpSecurity::StartTls,
        SmtpTls::Tls => SmtpSecurity::Tls,
        SmtpTls::None => SmtpSecurity::None,
    };
    SmtpCapability::new(&SmtpServer {
        host: smtp.host.clone(),
        port: smtp.port.unwrap_or(security.default_port()),
        security,
        credentials: smtp.username.clone().map(|username| {
            let password = smtp.password.as_ref().map(|p| p.expose().to_string());
            (username, password.unwrap_or_default())
        }),
        ca_pem: smtp
            .ca
            .as_deref()
            .map(|ca| read_pem("ca", ca, config_file))
            .transpose()?,
        from: smtp.from.clone(),
        to: smtp.to.clone(),
        timeout: Duration::from_secs(smtp.timeout_secs),
    })
}

/// The MQTT capability `[triggers.NAME.mqtt]` describes.
fn mqtt_capability(
    mqtt: &MqttConfig,
    config_file: Option<&Path>,
) -> Result<MqttCapability, SetupError> {
    let address = mqtt
        .address()
        .map_err(|message| SetupError::new("url", message))?;
    let identity = match (&mqtt.cert, &mqtt.key) {
        (Some(cert), Some(key)) => Some((
            read_pem("cert", cert, config_file)?,
            read_pem("key", key, config_file)?,
        )),
        _ => None,
    };
    MqttCapability::new(MqttBroker {
        host: address.host,
        port: address.port,
        tls: address.tls,
        ca_pem: mqtt
            .ca
            .as_deref()
            .map(|ca| read_pem("ca", ca, config_file))
            .transpose()?,
        client_identity: identity,
        credentials: mqtt.username.clone().map(|username| {
            let password = mqtt.password.as_ref().map(|p| p.expose().to_string());
            (username, password.unwrap_or_default())
        }),
        client_id: mqtt.client_id.clone(),
        topics: mqtt.topics.clone(),
        timeout: Duration::from_secs(mqtt.timeout_secs),
    })
}
