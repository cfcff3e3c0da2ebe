//! `ghcr`: GitHub Container Registry (`ghcr.io`) and LinuxServer's `lscr.io`,
//! which fronts it. Anonymous by default (the host fetches GHCR's anonymous
//! token from the challenge); with `username` + a personal access token as
//! `password`, the same token endpoint is asked with Basic credentials.

crowsnest_plugin_sdk::domain_registry!(
    Ghcr,
    "ghcr",
    "GitHub Container Registry (ghcr.io, lscr.io)",
    ["ghcr.io", "lscr.io"],
    "GitHub user name (with a personal access token as password)",
    "Personal access token with read:packages",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{
        configure_from, image_ref as image, Auth, RegistryProvider,
    };

    #[test]
    fn serves_ghcr_and_lscr() {
        let ghcr: Ghcr = configure_from([("username", "octo"), ("password", "ghp_x")]).unwrap();
        for domain in ["ghcr.io", "lscr.io", "GHCR.io"] {
            assert_eq!(ghcr.matches(&image(domain, "o/r")), Some(100), "{domain}");
        }
        assert_eq!(ghcr.matches(&image("docker.io", "o/r")), None);
        let location = ghcr
            .locate(&image("lscr.io", "linuxserver/sonarr"))
            .unwrap();
        assert_eq!(location.registry_url, "https://lscr.io");
        assert_eq!(location.display, "lscr.io/linuxserver/sonarr");
        assert_eq!(
            ghcr.credentials(&location).unwrap(),
            Auth::Basic(("octo".into(), "ghp_x".into()))
        );
    }
}
