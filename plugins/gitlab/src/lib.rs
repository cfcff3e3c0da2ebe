//! `gitlab`: GitLab's container registry — `registry.gitlab.com`, or a
//! self-managed one at `url`. The registry's challenge names GitLab's
//! `/jwt/auth`; the host asks it with Basic `username:password`, where the
//! pair is a user + personal access token, a deploy token
//! (`gitlab+deploy-token-N`) or a CI job token (`gitlab-ci-token`).

use crowsnest_plugin_sdk::registry::{
    with_common_keys, Auth, ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::{ConfigError, PluginInfo, Settings};

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;
/// GitLab.com's registry.
const GITLAB_COM: &str = "registry.gitlab.com";

/// One configured GitLab registry.
pub struct Gitlab {
    /// `registry.gitlab.com`, or the `url`'s `host[:port]` when self-managed.
    domain: String,
    upstream: Upstream,
}

impl RegistryProvider for Gitlab {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new(
                "gitlab",
                env!("CARGO_PKG_VERSION"),
                "GitLab container registry (registry.gitlab.com or self-managed at `url`)",
            ),
            "User, deploy token user (gitlab+deploy-token-N) or gitlab-ci-token",
            "Personal access token (read_registry), deploy token or CI job token",
        )
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let domain = settings
            .http_url("url")?
            .map_or_else(|| GITLAB_COM.to_string(), |url| url.authority().to_string());
        Ok(Self {
            domain,
            upstream: Upstream::configure_default(GITLAB_COM, settings)?,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.upstream
            .serves(&image.domain, [self.domain.as_str(), GITLAB_COM])
            .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.upstream.locate_as_written(image)
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        Ok(self.upstream.credentials.clone())
    }
}

crowsnest_plugin_sdk::export_registry!(Gitlab);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn gitlab_com_and_self_managed() {
        let com: Gitlab =
            configure_from([("username", "gitlab-ci-token"), ("password", "j")]).unwrap();
        assert_eq!(com.matches(&image("registry.gitlab.com", "g/p")), Some(100));
        let own: Gitlab = configure_from([("url", "https://gitlab.example:5050")]).unwrap();
        assert_eq!(own.matches(&image("gitlab.example:5050", "g/p")), Some(100));
        let location = own
            .locate(&image("gitlab.example:5050", "g/sub/p"))
            .unwrap();
        assert_eq!(location.registry_url, "https://gitlab.example:5050");
        assert_eq!(location.repository, "g/sub/p");
        assert_eq!(own.credentials(&location).unwrap(), Auth::Anonymous);
    }
}
