//! `oci`: the generic registry plugin for any OCI-distribution registry.
//!
//! Serves the images whose domain is the configured `url`'s `host[:port]`, or
//! one of the `mirrors` (whose images are looked up on `url`), with a low
//! priority so that vendor plugins win for their own hosts.

use crowsnest_plugin_sdk::registry::{
    repository_path, Auth, ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Priority of the generic plugin: below any vendor plugin for the same host.
const PRIORITY: u32 = 10;

/// One configured OCI registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRegistry {
    /// `host[:port]` of the `url` setting: the image domain served.
    domain: String,
    /// The registry at `url`, with the mirror domains whose images live there.
    upstream: Upstream,
}

impl RegistryProvider for OciRegistry {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "oci",
            env!("CARGO_PKG_VERSION"),
            "Any OCI-distribution registry, by URL, with optional mirror domains",
        )
        .key(ConfigKey::required(
            "url",
            "Registry base URL, e.g. https://registry.example.com:5000",
        ))
        .key(ConfigKey::optional(
            "username",
            "User name for the registry",
        ))
        .key(ConfigKey::optional("password", "Password or token for the registry").secret())
        .key(ConfigKey::optional(
            "mirrors",
            "Extra domains whose images are looked up on `url`, e.g. [\"mirror.local:5000\"]",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let url = settings.require_http_url("url")?;
        Ok(Self {
            domain: url.authority().to_string(),
            upstream: Upstream::configure(url.registry_base(), settings)?,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.upstream
            .serves(&image.domain, [self.domain.as_str()])
            .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        let path = repository_path(image)?;
        Ok(self
            .upstream
            .location(path.to_string(), format!("{}/{path}", self.domain)))
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        Ok(self.upstream.credentials.clone())
    }
}

crowsnest_plugin_sdk::export_registry!(OciRegistry);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    fn configured(pairs: &[(&str, &str)]) -> Result<OciRegistry, ConfigError> {
        configure_from(pairs.iter().copied())
    }

    #[test]
    fn matches_own_host_and_mirrors_with_low_priority() {
        let registry = configured(&[
            ("url", "http://127.0.0.1:5000/v2/"),
            ("mirrors", r#"["Mirror.Local:5001"]"#),
        ])
        .unwrap();
        assert_eq!(
            registry.matches(&image("127.0.0.1:5000", "team/app")),
            Some(10)
        );
        assert_eq!(
            registry.matches(&image("mirror.local:5001", "team/app")),
            Some(10)
        );
        assert_eq!(registry.matches(&image("127.0.0.1:5001", "team/app")), None);
        assert_eq!(registry.matches(&image("docker.io", "library/nginx")), None);
    }

    #[test]
    fn locates_on_url_with_path_unchanged() {
        let registry = configured(&[
            ("url", "https://Registry.Example:5000/"),
            ("mirrors", r#"["mirror.local:5001"]"#),
        ])
        .unwrap();
        let location = registry
            .locate(&image("mirror.local:5001", "nginx"))
            .unwrap();
        assert_eq!(location.registry_url, "https://registry.example:5000");
        assert_eq!(location.repository, "nginx");
        assert_eq!(location.display, "registry.example:5000/nginx");
    }

    #[test]
    fn credentials_follow_username() {
        let anonymous = configured(&[("url", "http://r:5000")]).unwrap();
        assert_eq!(anonymous.upstream.credentials, Auth::Anonymous);
        let basic = configured(&[
            ("url", "http://r:5000"),
            ("username", "u"),
            ("password", "p"),
        ])
        .unwrap();
        assert_eq!(
            basic.upstream.credentials,
            Auth::Basic(("u".to_string(), "p".to_string()))
        );
    }

    #[test]
    fn rejects_bad_settings_by_key() {
        let missing = configured(&[]).unwrap_err();
        assert_eq!(missing.key.as_deref(), Some("url"));
        let scheme = configured(&[("url", "registry.example")]).unwrap_err();
        assert_eq!(scheme.key.as_deref(), Some("url"));
        let mirror =
            configured(&[("url", "http://r"), ("mirrors", r#"["https://m"]"#)]).unwrap_err();
        assert_eq!(mirror.key.as_deref(), Some("mirrors"));
        let unknown = configured(&[("url", "http://r"), ("insecure", "true")]).unwrap_err();
        assert_eq!(unknown.key.as_deref(), Some("insecure"));
    }
}
