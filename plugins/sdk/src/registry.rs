//! Registry providers (`registry-provider` world, cargo feature `registry`).
//!
//! Implement [`RegistryProvider`] and export it with [`export_registry!`](crate::export_registry):
//!
//! ```ignore
//! use crowsnest_plugin_sdk::registry::*;
//! use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};
//!
//! struct Acme { url: String }
//!
//! impl RegistryProvider for Acme {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("acme", "0.1.0", "Acme registry")
//!             .key(ConfigKey::required("url", "registry URL"))
//!     }
//!     fn configure(settings: &Settings) -> Result<Self, ConfigError> {
//!         Ok(Self { url: settings.require_http_url("url")?.registry_base() })
//!     }
//!     fn matches(&self, image: &ImageRef) -> Option<u32> {
//!         (image.domain == "registry.acme.internal").then_some(100)
//!     }
//!     fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
//!         Ok(Location {
//!             registry_url: self.url.clone(),
//!             repository: image.path.clone(),
//!             display: format!("registry.acme.internal/{}", image.path),
//!         })
//!     }
//! }
//!
//! crowsnest_plugin_sdk::export_registry!(Acme);
//! ```

use std::marker::PhantomData;

use crate::instance::{not_configured_message, InstanceSlot};
use crate::{PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_registry as bindings;

pub use bindings::crowsnest::plugin::registry_types::{
    Auth, ImageRef, Location, ManifestInfo, Platform, RegistryError,
};

use bindings::crowsnest::plugin::types as wit_types;
use bindings::exports::crowsnest::plugin::{meta, registry};

crate::info::impl_world_conversions!(
    crate::registry::bindings::crowsnest::plugin::types,
    RegistryProvider
);

/// A registry provider: which images it serves, where they are looked up and
/// with which credentials. Tag listing and manifest resolution default to the
/// host's OCI distribution client, which handles challenges, tokens,
/// pagination and digests.
pub trait RegistryProvider: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, crate::ConfigError>;

    /// Priority with which this instance serves `image`; `None` = not served.
    /// Generic registries answer low (10), vendor plugins higher (100).
    fn matches(&self, image: &ImageRef) -> Option<u32>;

    /// Normalises the name and maps mirrors to their upstream.
    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError>;

    /// Credentials for `target`; anonymous unless overridden.
    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        Ok(Auth::Anonymous)
    }

    /// All tags of the repository, through the host's OCI client.
    fn list_tags(&self, target: &Location) -> Result<Vec<String>, RegistryError> {
        let credentials = self.credentials(target)?;
        oci::list_tags(target, &credentials)
    }

    /// Resolves `reference` (tag or digest), through the host's OCI client.
    fn resolve(
        &self,
        target: &Location,
        reference: &str,
        platform: Option<&Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryError> {
        let credentials = self.credentials(target)?;
        oci::resolve(target, reference, &credentials, platform, with_created)
    }
}

/// The host's OCI distribution client (challenges, cached tokens, pagination,
/// Accept headers, digests), limited to the instance's allowed hosts.
pub mod oci {
    use super::bindings::crowsnest::plugin::oci_client;
    use super::{Auth, Location, ManifestInfo, Platform, RegistryError};

    const NO_HOST: &str =
        "no crowsnest host outside wasm: the OCI client is only available to the component";

    /// All tags of `target`'s repository, every page followed. Outside wasm
    /// (native unit tests) there is no host: [`RegistryError::Unsupported`].
    pub fn list_tags(target: &Location, credentials: &Auth) -> Result<Vec<String>, RegistryError> {
        if !cfg!(target_arch = "wasm32") {
            return Err(RegistryError::Unsupported(NO_HOST.to_string()));
        }
        oci_client::list_tags(target, credentials)
    }

    /// Resolves `reference` with a manifest HEAD; with a platform, also selects
    /// that platform's manifest from an index; `with_created` reads the config
    /// blob. Outside wasm: [`RegistryError::Unsupported`].
    pub fn resolve(
        target: &Location,
        reference: &str,
        credentials: &Auth,
        platform: Option<&Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryError> {
        if !cfg!(target_arch = "wasm32") {
            return Err(RegistryError::Unsupported(NO_HOST.to_string()));
        }
        oci_client::resolve(target, reference, credentials, platform, with_created)
    }
}

/// Case-insensitive comparison of registry domains (`host[:port]`).
pub fn same_domain(left: &str, right: &str) -> bool {
    left.eq_ignore_ascii_case(right)
}

/// Reads a setting holding a JSON array of registry domains (`host[:port]`,
/// no scheme or path), e.g. `mirrors = ["mirror.local:5000"]`; lowercased.
pub fn domain_list(settings: &Settings, key: &str) -> Result<Vec<String>, crate::ConfigError> {
    let domains = settings.string_list(key)?;
    for domain in &domains {
        if domain.is_empty() || domain.contains("://") || domain.contains('/') {
            return Err(crate::ConfigError::key(
                key,
                format!("`{domain}` is not a registry domain like `mirror.local:5000`"),
            ));
        }
    }
    Ok(domains
        .into_iter()
        .map(|domain| domain.to_ascii_lowercase())
        .collect())
}

/// [`Auth::Basic`] from the `username` and `password` settings when a
/// username is set, else [`Auth::Anonymous`]; a password alone is an error.
pub fn basic_auth_from(settings: &Settings) -> Result<Auth, crate::ConfigError> {
    let username = settings.get("username").filter(|user| !user.is_empty());
    let password = settings
        .get("password")
        .filter(|password| !password.is_empty());
    match (username, password) {
        (Some(username), password) => Ok(Auth::Basic((
            username.to_string(),
            password.unwrap_or_default().to_string(),
        ))),
        (None, Some(_)) => Err(crate::ConfigError::key(
            "password",
            "a password needs a username",
        )),
        (None, None) => Ok(Auth::Anonymous),
    }
}

/// Adapts a [`RegistryProvider`] to the generated export traits.
#[doc(hidden)]
pub struct RegistryExport<T>(PhantomData<T>);

thread_local! {
    static INSTANCE: InstanceSlot = const { InstanceSlot::new() };
}

fn with_instance<T: RegistryProvider, R>(
    call: &str,
    body: impl FnOnce(&T) -> Result<R, RegistryError>,
) -> Result<R, RegistryError> {
    match INSTANCE.with(|slot| slot.get::<T>()) {
        Some(instance) => body(&instance),
        None => Err(RegistryError::Unsupported(not_configured_message(
            &T::describe().name,
            call,
        ))),
    }
}

impl<T: RegistryProvider> meta::Guest for RegistryExport<T> {
    fn describe() -> wit_types::PluginInfo {
        plugin_info_to_wit(T::describe())
    }

    fn configure(settings: Vec<wit_types::Setting>) -> Result<(), wit_types::ConfigError> {
        INSTANCE.with(InstanceSlot::clear);
        let info = T::describe();
        let settings = Settings::new(settings_from_wit(settings), &info.config_keys)
            .map_err(config_error_to_wit)?;
        let instance = T::configure(&settings).map_err(config_error_to_wit)?;
        INSTANCE.with(|slot| slot.install(instance));
        Ok(())
    }
}

impl<T: RegistryProvider> registry::Guest for RegistryExport<T> {
    fn matches(image: ImageRef) -> Option<u32> {
        match INSTANCE.with(|slot| slot.get::<T>()) {
            Some(instance) => instance.matches(&image),
            None => {
                crate::log::warn(&not_configured_message(&T::describe().name, "matches"));
                None
            }
        }
    }

    fn locate(image: ImageRef) -> Result<Location, RegistryError> {
        with_instance::<T, _>("locate", |instance| instance.locate(&image))
    }

    fn credentials(target: Location) -> Result<Auth, RegistryError> {
        with_instance::<T, _>("credentials", |instance| instance.credentials(&target))
    }

    fn list_tags(target: Location) -> Result<Vec<String>, RegistryError> {
        with_instance::<T, _>("list-tags", |instance| instance.list_tags(&target))
    }

    fn resolve(
        target: Location,
        reference: String,
        platform: Option<Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryError> {
        with_instance::<T, _>("resolve", |instance| {
            instance.resolve(&target, &reference, platform.as_ref(), with_created)
        })
    }
}

/// Exports a [`RegistryProvider`] implementation as this component's
/// `registry-provider` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_registry {
    ($provider:ty) => {
        // Exports exist only in wasm: native builds (unit tests, clippy) cannot
        // link symbol names such as `crowsnest:plugin/meta@0.1.0#describe`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __CrowsnestRegistryExport = $crate::registry::RegistryExport<$provider>;
        #[cfg(target_arch = "wasm32")]
        $crate::registry::bindings::export_world!(
            __CrowsnestRegistryExport with_types_in $crate::registry::bindings
        );
    };
}
