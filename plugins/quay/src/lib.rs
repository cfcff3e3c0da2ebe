//! `quay`: Red Hat Quay (`quay.io`; `url` reaches it somewhere else).
//! Anonymous by default; a robot account `namespace+name` with its token
//! (or a user and an encrypted password) is sent to Quay's token endpoint
//! (`/v2/auth`) by the host, which also follows every page of tags.

crowsnest_plugin_sdk::domain_registry!(
    Quay,
    "quay",
    "Red Hat Quay (quay.io)",
    ["quay.io"],
    "Robot account `namespace+name` (or a user name)",
    "Robot token (or the user's encrypted password)",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{
        configure_from, image_ref as image, Auth, RegistryProvider,
    };

    #[test]
    fn robot_accounts_on_quay() {
        let quay: Quay = configure_from([("username", "team+ci"), ("password", "TOKEN")]).unwrap();
        assert_eq!(quay.matches(&image("quay.io", "team/app")), Some(100));
        assert_eq!(quay.matches(&image("ghcr.io", "team/app")), None);
        let location = quay.locate(&image("quay.io", "team/app")).unwrap();
        assert_eq!(location.registry_url, "https://quay.io");
        assert_eq!(
            quay.credentials(&location).unwrap(),
            Auth::Basic(("team+ci".into(), "TOKEN".into()))
        );
    }
}
