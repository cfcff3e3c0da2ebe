//! What setting up a configured plugin instance (registry or trigger) needs
//! on both sides: its allow-list entry from a URL, and its failures as
//! configuration errors at the key the plugin blamed (or at its `plugin` key
//! when it blamed none).

use crowsnest_config::{Config, ConfigError, PluginInstance};
use crowsnest_oci::HostAllowList;
use crowsnest_plugin_host::PluginError;

/// `err`, raised while setting up the instance at `table` (e.g.
/// `["registries", "hub"]`), as a configuration error at the right key.
pub(crate) fn config_error(config: &Config, table: &[&str], err: PluginError) -> ConfigError {
    let (key, message) = match err {
        PluginError::Config {
            key: Some(key),
            message,
            ..
        } => (key, message),
        PluginError::Config {
            key: None, message, ..
        } => ("plugin".to_string(), message),
        other => ("plugin".to_string(), other.to_string()),
    };
    let mut path = table.to_vec();
    path.push(&key);
    config.error_at(&path, message)
}

/// The hosts a configured instance's plugin may reach: its `url` setting's
/// host (when unset, the built-in plugin's own service hosts listed in
/// `defaults`), the instance's `allowed_hosts` and the drop-in's `grants`;
/// an error names the key at fault.
pub(crate) fn allow_list<H>(
    instance: &PluginInstance<H>,
    allowed_hosts: &[String],
    grants: &[String],
    defaults: &[(&str, &[&str])],
) -> Result<HostAllowList, (&'static str, String)> {
    let mut hosts: Vec<String> = grants.to_vec();
    match instance.get_str("url") {
        Some(url) => hosts.push(url_host(url).map_err(|message| ("url", message))?),
        None => {
            if let Some((_, hosts_of)) = defaults
                .iter()
                .find(|(plugin, _)| *plugin == instance.plugin)
            {
                hosts.extend(hosts_of.iter().map(|host| (*host).to_string()));
            }
        }
    }
    hosts.extend(allowed_hosts.iter().cloned());
    HostAllowList::new(&hosts).map_err(|message| ("allowed_hosts", message))
}

/// `host[:port]` of a URL setting, as an allow-list entry.
pub(crate) fn url_host(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` has no host"))?;
    // `host_str` keeps an IPv6 address in brackets, as the allow-list wants it.
    Ok(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}
