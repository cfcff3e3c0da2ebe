//! Registry-provider plugin instances.

use std::sync::Arc;

use crowsnest_oci::HostAllowList;

use crate::bindings::registry::RegistryProvider;
use crate::component::{PluginComponent, WorldPre};
use crate::pool::{guest_call, InstancePool, InstanceSpec};
use crate::{PluginError, PluginKind};

pub use crate::bindings::registry::crowsnest::plugin::registry_types::{
    Auth, ImageRef, Location, ManifestInfo, Platform, RegistryError,
};

/// Largest tag list accepted from a plugin (a defence against a flood).
pub const MAX_TAGS: usize = 200_000;
/// Longest string accepted in a plugin's registry answer.
pub const MAX_FIELD_LEN: usize = 4096;

/// Why a registry call failed: the registry said so, or the plugin broke.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryCallError {
    /// The plugin (or the host client on its behalf) reported a registry error.
    #[error("{}", explain(.0))]
    Registry(RegistryError),
    /// The plugin trapped or answered nonsense.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A registry error in words, with its spec code.
pub fn explain(error: &RegistryError) -> String {
    let (code, message) = match error {
        RegistryError::NameUnknown(m) => ("repository not found (NAME_UNKNOWN)", m),
        RegistryError::ManifestUnknown(m) => ("manifest not found (MANIFEST_UNKNOWN)", m),
        RegistryError::Unauthorized(m) => ("authentication required or refused (UNAUTHORIZED)", m),
        RegistryError::Denied(m) => ("access denied (DENIED)", m),
        RegistryError::TooManyRequests(m) => ("rate limited (TOOMANYREQUESTS)", m),
        RegistryError::NotAllowed(m) => ("host not allowed for this plugin", m),
        RegistryError::Transport(m) => ("transport error", m),
        RegistryError::Protocol(m) => ("registry protocol error", m),
        RegistryError::Unsupported(m) => ("unsupported by this registry plugin", m),
    };
    if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    }
}

/// A configured registry-provider plugin instance (e.g. `[registries.hub]`).
pub struct RegistryPlugin {
    plugin: String,
    instance: String,
    allow: Arc<HostAllowList>,
    pool: InstancePool<RegistryProvider>,
}

impl RegistryPlugin {
    /// Instantiate and configure `component` for the registry instance
    /// `instance` (e.g. `hub` from `[registries.hub]`). `spec.capabilities`
    /// must lend HTTP (its allow-list is the instance's) and usually OCI.
    pub async fn new(
        component: &PluginComponent,
        instance: &str,
        spec: InstanceSpec,
    ) -> Result<Self, PluginError> {
        let WorldPre::Registry(pre) = &component.pre else {
            return Err(PluginError::Unknown {
                name: component.info.name.clone(),
                kind: PluginKind::RegistryProvider,
            });
        };
        let allow = spec
            .capabilities
            .http
            .as_ref()
            .map(|http| http.allow_list().clone())
            .unwrap_or_default();
        let label: Arc<str> = Arc::from(format!("{} (registry {instance})", component.info.name));
        let pool = InstancePool::new(pre.clone(), label, spec).await?;
        Ok(Self {
            plugin: component.info.name.clone(),
            instance: instance.to_string(),
            allow,
            pool,
        })
    }

    /// The plugin's name (e.g. `oci`).
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The instance name (e.g. `hub`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The hosts this instance may reach now.
    pub fn allow_list(&self) -> &HostAllowList {
        &self.allow
    }

    fn malformed(&self, reason: String) -> RegistryCallError {
        PluginError::Malformed {
            plugin: self.pool.label().to_string(),
            reason,
        }
        .into()
    }

    /// Priority with which this instance serves `image`; `None` if it does not.
    pub async fn matches(&self, image: &ImageRef) -> Result<Option<u32>, PluginError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_registry().call_matches(store, image))
    }

    /// Where to look `image` up (normalised name, mirror mapped to upstream).
    pub async fn locate(&self, image: &ImageRef) -> Result<Location, RegistryCallError> {
        let location = guest_call!(pool: &self.pool, |bindings, store| bindings
            .crowsnest_plugin_registry()
            .call_locate(store, image))?
        .map_err(RegistryCallError::Registry)?;
        super::validate::location(&location).map_err(|reason| self.malformed(reason))?;
        Ok(location)
    }

    /// Credentials for `target`.
    pub async fn credentials(&self, target: &Location) -> Result<Auth, RegistryCallError> {
        guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_registry().call_credentials(store, target))?
            .map_err(RegistryCallError::Registry)
    }

    /// All tags of `target`.
    pub async fn list_tags(&self, target: &Location) -> Result<Vec<String>, RegistryCallError> {
        let tags = guest_call!(pool: &self.pool, |bindings, store| bindings.crowsnest_plugin_registry().call_list_tags(store, target))?
            .map_err(RegistryCallError::Registry)?;
        super::validate::tags(&tags).map_err(|reason| self.malformed(reason))?;
        Ok(tags)
    }

    /// Resolve `reference` (tag or digest) for `platform`.
    pub async fn resolve(
        &self,
        target: &Location,
        reference: &str,
        platform: Option<&Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryCallError> {
        let info = guest_call!(pool: &self.pool, |bindings, store| bindings
            .crowsnest_plugin_registry()
            .call_resolve(store, target, reference, platform, with_created))?
        .map_err(RegistryCallError::Registry)?;
        super::validate::manifest_info(&info).map_err(|reason| self.malformed(reason))?;
        Ok(info)
    }
}
