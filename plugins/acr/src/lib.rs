//! `acr`: Azure Container Registry (`*.azurecr.io`) with the admin user, a
//! repository-scoped token or a service principal's id and secret as
//! `username`/`password`: ACR's `/oauth2/token` takes them as Basic
//! credentials, which the host presents to the registry's challenge.

crowsnest_plugin_sdk::domain_registry!(
    Acr,
    "acr",
    "Azure Container Registry (*.azurecr.io)",
    ["*.azurecr.io"],
    "Admin user, token name, or service principal (client) id",
    "Admin password, token password, or client secret",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image, RegistryProvider};

    #[test]
    fn azurecr_subdomains() {
        let acr: Acr = configure_from([("username", "myreg"), ("password", "p")]).unwrap();
        assert_eq!(acr.matches(&image("myreg.azurecr.io", "app")), Some(100));
        assert_eq!(acr.matches(&image("azurecr.io", "app")), None);
        assert_eq!(
            acr.locate(&image("myreg.azurecr.io", "app"))
                .unwrap()
                .registry_url,
            "https://myreg.azurecr.io"
        );
    }
}
