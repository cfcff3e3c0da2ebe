//! `harbor`: a Harbor registry at `url`. Users and robot accounts
//! (`robot$name`, `robot$project+name`) are sent to Harbor's
//! `/service/token` by the host. Images of proxy-cache projects
//! (`proxy_projects = { dockerhub = "docker.io" }`) are looked up on their
//! upstream registry, anonymously, since Harbor only holds what was pulled.

use crowsnest_plugin_sdk::registry::{
    domain_matches, repository_path, with_common_keys, Auth, ImageRef, Location, RegistryError,
    RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;

/// One configured Harbor.
pub struct Harbor {
    /// `url`'s `host[:port]`: the domain images are written under.
    domain: String,
    upstream: Upstream,
    /// Proxy-cache project -> upstream registry domain.
    proxy_projects: Vec<(String, String)>,
}

/// The registry API base of an upstream domain: Docker Hub's API host for
/// `docker.io`, plain HTTP for loopback (as the Docker engine does), else HTTPS.
fn upstream_url(domain: &str) -> String {
    if domain_matches(domain, "docker.io") {
        return "https://registry-1.docker.io".into();
    }
    let host = domain.rsplit_once(':').map_or(domain, |(host, _)| host);
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    format!("{}://{domain}", if loopback { "http" } else { "https" })
}

impl RegistryProvider for Harbor {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new("harbor", env!("CARGO_PKG_VERSION"), "Harbor (at `url`), with proxy-cache projects"),
            "User or robot account (`robot$name`, `robot$project+name`)",
            "Password or robot secret",
        )
        .key(ConfigKey::optional(
            "proxy_projects",
            "Proxy-cache projects and their upstream, e.g. { dockerhub = \"docker.io\" } (add the upstream to allowed_hosts)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let url = settings.require_http_url("url")?;
        let proxy_projects = settings.string_map("proxy_projects")?;
        if let Some((project, _)) = proxy_projects.iter().find(|(project, upstream)| {
            project.contains('/') || upstream.contains('/') || upstream.is_empty()
        }) {
            return Err(ConfigError::key(
                "proxy_projects",
                format!(
                    "`{project}` must map a project name to a registry domain like \"docker.io\""
                ),
            ));
        }
        Ok(Self {
            domain: url.authority().to_string(),
            upstream: Upstream::configure(url.registry_base(), settings)?,
            proxy_projects,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.upstream
            .serves(&image.domain, [self.domain.as_str()])
            .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        let path = repository_path(image)?;
        let proxied = path.split_once('/').and_then(|(project, rest)| {
            let (_, upstream) = self
                .proxy_projects
                .iter()
                .find(|(name, _)| name == project)?;
            Some((upstream, rest))
        });
        let Some((upstream, rest)) = proxied else {
            return Ok(self
                .upstream
                .location(path.to_string(), format!("{}/{path}", self.domain)));
        };
        let repository = if domain_matches(upstream, "docker.io") && !rest.contains('/') {
            format!("library/{rest}")
        } else {
            rest.to_string()
        };
        Ok(Location {
            registry_url: upstream_url(upstream),
            display: format!("{upstream}/{repository}"),
            repository,
        })
    }

    fn credentials(&self, target: &Location) -> Result<Auth, RegistryError> {
        // Harbor's credentials never leave for a proxy project's upstream.
        Ok(if target.registry_url == self.upstream.registry_url {
            self.upstream.credentials.clone()
        } else {
            Auth::Anonymous
        })
    }
}

crowsnest_plugin_sdk::export_registry!(Harbor);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn proxy_projects_are_looked_up_on_their_upstream() {
        let harbor: Harbor = configure_from([
            ("url", "https://harbor.example"),
            ("username", "robot$ci"),
            ("password", "s"),
            (
                "proxy_projects",
                r#"{"dockerhub": "docker.io", "local": "127.0.0.1:5001"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(harbor.matches(&image("harbor.example", "p/app")), Some(100));
        let own = harbor.locate(&image("harbor.example", "p/app")).unwrap();
        assert_eq!(own.registry_url, "https://harbor.example");
        assert_eq!(
            harbor.credentials(&own).unwrap(),
            Auth::Basic(("robot$ci".into(), "s".into()))
        );
        let hub = harbor
            .locate(&image("harbor.example", "dockerhub/nginx"))
            .unwrap();
        assert_eq!(hub.registry_url, "https://registry-1.docker.io");
        assert_eq!(hub.repository, "library/nginx");
        assert_eq!(hub.display, "docker.io/library/nginx");
        assert_eq!(harbor.credentials(&hub).unwrap(), Auth::Anonymous);
        let local = harbor
            .locate(&image("harbor.example", "local/team/app"))
            .unwrap();
        assert_eq!(local.registry_url, "http://127.0.0.1:5001");
        assert_eq!(local.repository, "team/app");
    }

    #[test]
    fn rejects_a_bad_proxy_project() {
        let bad = configure_from::<Harbor>([
            ("url", "https://h"),
            ("proxy_projects", r#"{"a": "https://x/y"}"#),
        ]);
        assert_eq!(
            bad.err().and_then(|e| e.key).as_deref(),
            Some("proxy_projects")
        );
    }
}
