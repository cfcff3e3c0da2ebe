//! Building the triggers of `[triggers.NAME]` from the configuration: the
//! plugin instance, its allow-list, and its settings with secrets masked.

use std::sync::Arc;
use std::time::Duration;

use crowsnest_config::{Config, ConfigError};
use crowsnest_oci::HostAllowList;
use crowsnest_plugin_host::{
    Capabilities, Catalog, HttpCapability, InstanceSpec, PluginKind, PluginObserver, TriggerPlugin,
};
use crowsnest_store::Store;

use super::{ConfiguredTrigger, TriggerDispatcher};
use crate::instance_setup::{config_error, url_host};
use crate::metrics::Metrics;

impl TriggerDispatcher {
    /// Instantiates every `[triggers.NAME]` of `config` from `catalog`. A bad
    /// trigger is a configuration error naming its key.
    pub async fn from_config(
        config: &Config,
        catalog: &Catalog,
        store: Store,
        metrics: Arc<Metrics>,
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
            let at =
                |key: &str, message: String| config.error_at(&["triggers", name, key], message);
            let entry = catalog
                .find(&instance.plugin, PluginKind::Trigger)
                .map_err(|err| at("plugin", err.to_string()))?;
            let mut hosts = instance.host.allowed_hosts.clone();
            hosts.extend(entry.grants.allowed_hosts.iter().cloned());
            if let Some(url) = instance.get_str("url") {
                hosts.push(url_host(url).map_err(|message| at("url", message))?);
            }
            let allow =
                HostAllowList::new(&hosts).map_err(|message| at("allowed_hosts", message))?;
            let settings = instance.plugin_settings();
            let spec = InstanceSpec {
                settings: settings.clone(),
                limits: crate::plugin_setup::sandbox_limits(&config.plugins),
                capabilities: Capabilities {
                    http: Some(HttpCapability::new(Arc::new(allow), http.clone())),
                    oci: None,
                },
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
            );
            trigger.masked_settings = entry.component.info.masked(&settings);
            triggers.push(trigger);
        }
        Ok(Self::new(triggers, store, metrics))
    }
}
