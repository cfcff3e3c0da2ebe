//! `acme`: a registry plugin for Acme's in-house registry — an example to copy.
//!
//! What it shows, beyond what the generic `oci` plugin does:
//!
//! - it serves the registry's own domain **and** `acme-mirror` (with any
//!   port), a pull-through mirror whose images are looked up on the upstream;
//! - credentials: a bearer `token`, else `username`/`password`, else anonymous;
//! - it hides work-in-progress tags (ending in `-wip`) from version strategies.
//!
//! ```toml
//! [registries.acme]
//! plugin = "acme"
//! url = "https://registry.acme.internal:5000"
//! username = "ci-bot"
//! password_file = "/run/secrets/acme-password"
//! ```

use crowsnest_plugin_sdk::log;
use crowsnest_plugin_sdk::registry::{
    basic_auth_from, oci, same_domain, Auth, ImageRef, Location, RegistryError, RegistryProvider,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// The mirror's domain as written in image references (`acme-mirror/team/app`
/// or `acme-mirror:5001/team/app`).
const MIRROR_HOST: &str = "acme-mirror";

/// Tags with this suffix are never offered as updates.
const WIP_SUFFIX: &str = "-wip";

/// Above the generic `oci` plugin (10) so this plugin wins for Acme's hosts.
const PRIORITY: u32 = 100;

/// One configured Acme registry.
pub struct AcmeRegistry {
    /// Upstream base URL, e.g. `https://registry.acme.internal:5000`.
    registry_url: String,
    /// Upstream `host:port`, the domain its images are written with.
    domain: String,
    credentials: Auth,
}

impl AcmeRegistry {
    fn is_mirror(domain: &str) -> bool {
        let host = domain.split(':').next().unwrap_or(domain);
        same_domain(host, MIRROR_HOST)
    }
}

impl RegistryProvider for AcmeRegistry {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "acme",
            env!("CARGO_PKG_VERSION"),
            "Acme's in-house registry and its mirror",
        )
        .key(ConfigKey::required(
            "url",
            "Registry URL, e.g. https://registry.acme.internal:5000",
        ))
        .key(ConfigKey::optional("username", "User name"))
        .key(ConfigKey::optional("password", "Password").secret())
        .key(ConfigKey::optional("token", "Bearer token (instead of username/password)").secret())
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let url = settings.require_http_url("url")?;
        let credentials = match (settings.get("token"), settings.get("username")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    "token",
                    "give either token or username/password",
                ))
            }
            (Some(token), None) => Auth::Bearer(token.to_string()),
            (None, _) => basic_auth_from(settings)?,
        };
        Ok(Self {
            registry_url: url.registry_base(),
            domain: url.authority().to_string(),
            credentials,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        let served = same_domain(&image.domain, &self.domain) || Self::is_mirror(&image.domain);
        served.then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        if Self::is_mirror(&image.domain) {
            log::debug(&format!(
                "{}/{} is looked up on {}",
                image.domain, image.path, self.domain
            ));
        }
        Ok(Location {
            registry_url: self.registry_url.clone(),
            repository: image.path.clone(),
            display: format!("{}/{}", self.domain, image.path),
        })
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        Ok(self.credentials.clone())
    }

    fn list_tags(&self, target: &Location) -> Result<Vec<String>, RegistryError> {
        oci::list_tags(target, &self.credentials).map(without_wip)
    }
}

/// Drops work-in-progress tags so that no strategy ever offers one.
fn without_wip(mut tags: Vec<String>) -> Vec<String> {
    tags.retain(|tag| !tag.ends_with(WIP_SUFFIX));
    tags
}

crowsnest_plugin_sdk::export_registry!(AcmeRegistry);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    fn configured(pairs: &[(&str, &str)]) -> Result<AcmeRegistry, ConfigError> {
        configure_from(pairs.iter().copied())
    }

    #[test]
    fn mirror_images_are_looked_up_upstream() {
        let acme = configured(&[("url", "https://registry.acme.internal:5000")]).unwrap();
        for domain in [
            "registry.acme.internal:5000",
            "acme-mirror",
            "acme-mirror:5001",
        ] {
            assert_eq!(
                acme.matches(&image(domain, "team/app")),
                Some(PRIORITY),
                "{domain}"
            );
            let location = acme.locate(&image(domain, "team/app")).unwrap();
            assert_eq!(location.registry_url, "https://registry.acme.internal:5000");
            assert_eq!(location.display, "registry.acme.internal:5000/team/app");
        }
        assert_eq!(acme.matches(&image("docker.io", "library/nginx")), None);
    }

    #[test]
    fn wip_tags_are_hidden() {
        let tags = ["1.0", "1.1-wip", "1.1", "2.0-wip"]
            .map(String::from)
            .to_vec();
        assert_eq!(without_wip(tags), vec!["1.0", "1.1"]);
    }

    #[test]
    fn credentials_prefer_token() {
        let token = configured(&[("url", "https://r.acme"), ("token", "t")]).unwrap();
        assert_eq!(token.credentials, Auth::Bearer("t".to_string()));
        let both = configured(&[("url", "https://r.acme"), ("token", "t"), ("username", "u")]);
        assert_eq!(both.err().and_then(|err| err.key).as_deref(), Some("token"));
        let unknown = configured(&[("url", "https://r.acme"), ("insecure", "true")]);
        assert_eq!(
            unknown.err().and_then(|err| err.key).as_deref(),
            Some("insecure")
        );
    }
}
