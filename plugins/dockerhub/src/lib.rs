//! `dockerhub`: Docker Hub (`docker.io`) and the mirrors / accelerators /
//! pull-through caches in front of it, whose images are looked up on Hub.

use crowsnest_plugin_sdk::registry::{
    repository_path, Auth, ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;

/// The domains under which Docker Hub images are written.
const HUB_DOMAINS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Well-known public mirrors and accelerators of Docker Hub: images written
/// under them are Hub images, looked up on Hub with no configuration.
/// `*.` matches any subdomain (personal accelerators such as
/// `abc123.mirror.aliyuncs.com`).
const KNOWN_MIRRORS: [&str; 12] = [
    "mirror.gcr.io",
    "*.mirror.aliyuncs.com",
    "mirror.ccs.tencentyun.com",
    "docker.m.daocloud.io",
    "hub-mirror.c.163.com",
    "docker.mirrors.ustc.edu.cn",
    "dockerproxy.com",
    "docker.nju.edu.cn",
    "mirror.baidubce.com",
    "dockerhub.azk8s.cn",
    "docker.mirrors.sjtug.sjtu.edu.cn",
    "registry.docker-cn.com",
];

/// Priority of a known mirror: above the vendor plugin of the mirror's own
/// domain (`mirror.gcr.io` is no Google registry).
const KNOWN_MIRROR_PRIORITY: u32 = 110;

/// Whether `domain` (`host[:port]`, any case) is a well-known Hub mirror.
pub fn is_known_mirror(domain: &str) -> bool {
    let host = domain.to_ascii_lowercase();
    KNOWN_MIRRORS
        .iter()
        .any(|known| match known.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            None => host == *known,
        })
}

/// Where Hub's registry API lives.
const DEFAULT_URL: &str = "https://registry-1.docker.io";

/// One configured Docker Hub instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHub {
    /// Hub's registry API (its URL overridable to point tests at a local
    /// registry), with the mirror domains whose images are Hub images.
    upstream: Upstream,
}

/// Hub's name for a repository: one-component names live under `library/`.
pub fn hub_repository(path: &str) -> String {
    if path.contains('/') {
        path.to_string()
    } else {
        format!("library/{path}")
    }
}

impl RegistryProvider for DockerHub {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "dockerhub",
            env!("CARGO_PKG_VERSION"),
            "Docker Hub (docker.io), including mirrors and pull-through caches of it",
        )
        .key(ConfigKey::optional(
            "url",
            "Registry API URL (default https://registry-1.docker.io)",
        ))
        .key(ConfigKey::optional("username", "Docker Hub user name"))
        .key(ConfigKey::optional("password", "Docker Hub password or access token").secret())
        .key(ConfigKey::optional(
            "mirrors",
            "Mirror / accelerator domains whose images are looked up on Hub, e.g. [\"mirror.local:5000\"]",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let registry_url = settings
            .http_url("url")?
            .map_or_else(|| DEFAULT_URL.to_string(), |url| url.registry_base());
        Ok(Self {
            upstream: Upstream::configure(registry_url, settings)?,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        if is_known_mirror(&image.domain) {
            return Some(KNOWN_MIRROR_PRIORITY);
        }
        self.upstream
            .serves(&image.domain, HUB_DOMAINS)
            .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        let repository = hub_repository(&repository_path(image)?.to_ascii_lowercase());
        let display = format!("docker.io/{repository}");
        Ok(self.upstream.location(repository, display))
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        Ok(self.upstream.credentials.clone())
    }
}

crowsnest_plugin_sdk::export_registry!(DockerHub);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    fn configured(pairs: &[(&str, &str)]) -> Result<DockerHub, ConfigError> {
        configure_from(pairs.iter().copied())
    }

    #[test]
    fn serves_hub_domains_and_mirrors() {
        let hub = configured(&[("mirrors", r#"["mirror.local:5000"]"#)]).unwrap();
        for domain in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Mirror.Local:5000",
        ] {
            assert_eq!(hub.matches(&image(domain, "nginx")), Some(100), "{domain}");
        }
        assert_eq!(hub.matches(&image("ghcr.io", "org/app")), None);
    }

    #[test]
    fn known_mirrors_need_no_configuration() {
        let hub = configured(&[]).unwrap();
        for domain in [
            "mirror.gcr.io",
            "abc123.mirror.aliyuncs.com",
            "Docker.M.DaoCloud.io",
            "mirror.ccs.tencentyun.com",
            "hub-mirror.c.163.com",
            "docker.mirrors.ustc.edu.cn",
            "dockerproxy.com",
            "mirror.baidubce.com",
        ] {
            assert_eq!(hub.matches(&image(domain, "nginx")), Some(110), "{domain}");
            let location = hub.locate(&image(domain, "nginx")).unwrap();
            assert_eq!(location.display, "docker.io/library/nginx", "{domain}");
        }
        for domain in [
            "mirror.aliyuncs.com",
            ".mirror.aliyuncs.com",
            "evilmirror.aliyuncs.com",
            "registry.cn-hangzhou.aliyuncs.com",
            "gcr.io",
            "xmirror.gcr.io",
            "ccr.ccs.tencentyun.com",
        ] {
            assert_eq!(hub.matches(&image(domain, "nginx")), None, "{domain}");
        }
    }

    #[test]
    fn normalises_official_images() {
        let hub = configured(&[]).unwrap();
        let official = hub.locate(&image("docker.io", "nginx")).unwrap();
        assert_eq!(official.registry_url, "https://registry-1.docker.io");
        assert_eq!(official.repository, "library/nginx");
        assert_eq!(official.display, "docker.io/library/nginx");
        let user = hub.locate(&image("docker.io", "grafana/grafana")).unwrap();
        assert_eq!(user.repository, "grafana/grafana");
    }

    #[test]
    fn mirror_images_are_looked_up_on_the_configured_url() {
        let hub = configured(&[
            ("url", "http://127.0.0.1:5555/"),
            ("mirrors", r#"["mirror.local:5000"]"#),
            ("username", "u"),
            ("password", "p"),
        ])
        .unwrap();
        let location = hub.locate(&image("mirror.local:5000", "redis")).unwrap();
        assert_eq!(location.registry_url, "http://127.0.0.1:5555");
        assert_eq!(location.repository, "library/redis");
        assert_eq!(
            hub.credentials(&location).unwrap(),
            Auth::Basic(("u".to_string(), "p".to_string()))
        );
    }

    #[test]
    fn rejects_bad_url_by_key() {
        assert_eq!(
            configured(&[("url", "registry-1.docker.io")])
                .unwrap_err()
                .key
                .as_deref(),
            Some("url")
        );
    }
}
