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

use crate::{ConfigError, PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_registry as bindings;

pub use bindings::crowsnest::plugin::registry_types::{
    Auth, ImageRef, Location, ManifestInfo, Platform, RegistryError,
};

use bindings::exports::crowsnest::plugin::registry;

crate::world::impl_world_glue!(
    types: crate::registry::bindings::crowsnest::plugin::types,
    meta_guest: bindings::exports::crowsnest::plugin::meta::Guest,
    kind: RegistryProvider,
    plugin: RegistryProvider,
    export: RegistryExport,
);

/// A registry provider: which images it serves, where they are looked up and
/// with which credentials. Tag listing and manifest resolution default to the
/// host's OCI distribution client, which handles challenges, tokens,
/// pagination and digests.
pub trait RegistryProvider: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, ConfigError>;

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
pub fn domain_list(settings: &Settings, key: &str) -> Result<Vec<String>, ConfigError> {
    let domains = settings.string_list(key)?;
    for domain in &domains {
        if domain.is_empty() || domain.contains("://") || domain.contains('/') {
            return Err(ConfigError::key(
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

/// The non-empty settings `id_key` and `secret_key` as a pair (an access
/// key and its secret), `None` when neither is set; one alone is an error
/// naming the missing key.
pub fn key_pair(
    settings: &Settings,
    id_key: &str,
    secret_key: &str,
) -> Result<Option<(String, String)>, ConfigError> {
    let text = |key: &str| {
        settings
            .get(key)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    match (text(id_key), text(secret_key)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::key(
            secret_key,
            format!("`{id_key}` needs `{secret_key}`"),
        )),
        (None, Some(_)) => Err(ConfigError::key(
            id_key,
            format!("`{secret_key}` needs `{id_key}`"),
        )),
    }
}

/// [`Auth::Basic`] from the `username` and `password` settings when a
/// username is set, else [`Auth::Anonymous`]; a password alone is an error.
pub fn basic_auth_from(settings: &Settings) -> Result<Auth, ConfigError> {
    let username = settings.get("username").filter(|user| !user.is_empty());
    let password = settings
        .get("password")
        .filter(|password| !password.is_empty());
    match (username, password) {
        (Some(username), password) => Ok(Auth::Basic((
            username.to_string(),
            password.unwrap_or_default().to_string(),
        ))),
        (None, Some(_)) => Err(ConfigError::key("password", "a password needs a username")),
        (None, None) => Ok(Auth::Anonymous),
    }
}

/// The upstream registry of a provider and the mirror domains in front of
/// it, with the credentials for it: the `mirrors`, `username` and `password`
/// settings that `oci`, `dockerhub` and similar providers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Registry API base URL, without trailing slash or `/v2`.
    pub registry_url: String,
    /// Mirror domains (lowercased) whose images are looked up on `registry_url`.
    pub mirrors: Vec<String>,
    /// Credentials for `registry_url`.
    pub credentials: Auth,
}

/// The settings every vendor plugin shares: `url` (the registry reached
/// somewhere else: tests, VPC endpoints, proxies), `username`, `password`
/// and `mirrors`, added to `info`.
pub fn with_common_keys(info: PluginInfo, username: &str, password: &str) -> PluginInfo {
    use crate::ConfigKey;
    info.key(ConfigKey::optional(
        "url",
        "Reach the registry at this URL instead of its own domain (tests, VPC endpoints, proxies)",
    ))
    .key(ConfigKey::optional("username", username))
    .key(ConfigKey::optional("password", password).secret())
    .key(ConfigKey::optional(
        "mirrors",
        "Extra domains whose images are looked up on this registry, e.g. [\"mirror.local:5000\"]",
    ))
}

/// Whether `domain` (`host[:port]`) matches `pattern`, ignoring case: equal,
/// or with one `*` standing for a non-empty part — any subdomain at the
/// start (`*.gcr.io`, `*-docker.pkg.dev`), one label inside
/// (`registry.*.aliyuncs.com`).
pub fn domain_matches(domain: &str, pattern: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    let Some((prefix, suffix)) = pattern.split_once('*') else {
        return domain == pattern;
    };
    let middle = domain
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix));
    match middle {
        Some(middle) => !middle.is_empty() && (prefix.is_empty() || !middle.contains('.')),
        None => false,
    }
}

impl Upstream {
    /// The `url` setting's registry base, else `https://{default_domain}`,
    /// with the common settings (see [`Upstream::configure`]).
    pub fn configure_default(
        default_domain: &str,
        settings: &Settings,
    ) -> Result<Self, ConfigError> {
        let registry_url = settings.http_url("url")?.map_or_else(
            || format!("https://{default_domain}"),
            |url| url.registry_base(),
        );
        Self::configure(registry_url, settings)
    }

    /// The `url` setting's registry base, or empty (look images up on their
    /// own domain, see [`Upstream::locate_as_written`]), with the common settings.
    pub fn configure_optional_url(settings: &Settings) -> Result<Self, ConfigError> {
        let registry_url = settings
            .http_url("url")?
            .map(|url| url.registry_base())
            .unwrap_or_default();
        Self::configure(registry_url, settings)
    }

    /// The image looked up under its own path on this upstream, or, when
    /// no registry URL is configured (an empty one), on `https://{domain}`
    /// of the image; shown as `domain/path` (`domain` lowercased).
    pub fn locate_as_written(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        let path = repository_path(image)?;
        let domain = image.domain.to_ascii_lowercase();
        let mut location = self.location(path.to_string(), format!("{domain}/{path}"));
        if location.registry_url.is_empty() {
            location.registry_url = format!("https://{domain}");
        }
        Ok(location)
    }

    /// `registry_url` with the `mirrors` setting (see [`domain_list`]) and the
    /// `username`/`password` settings (see [`basic_auth_from`]).
    pub fn configure(registry_url: String, settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            registry_url,
            mirrors: domain_list(settings, "mirrors")?,
            credentials: basic_auth_from(settings)?,
        })
    }

    /// Whether images of `domain` are served: it is one of `own_domains` or
    /// one of the mirrors.
    pub fn serves<'a>(
        &'a self,
        domain: &str,
        own_domains: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        own_domains
            .into_iter()
            .chain(self.mirrors.iter().map(String::as_str))
            .any(|served| same_domain(domain, served))
    }

    /// `repository` on the upstream registry, shown to users as `display`.
    pub fn location(&self, repository: String, display: String) -> Location {
        Location {
            registry_url: self.registry_url.clone(),
            repository,
            display,
        }
    }
}

/// The image's repository path; an empty one is [`RegistryError::NameUnknown`].
pub fn repository_path(image: &ImageRef) -> Result<&str, RegistryError> {
    if image.path.is_empty() {
        return Err(RegistryError::NameUnknown(
            "empty repository path".to_string(),
        ));
    }
    Ok(&image.path)
}

/// The reference `domain/path` without tag or digest, e.g. for unit tests
/// of [`RegistryProvider::matches`] and [`RegistryProvider::locate`].
pub fn image_ref(domain: &str, path: &str) -> ImageRef {
    ImageRef {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: None,
        digest: None,
    }
}

/// Adapts a [`RegistryProvider`] to the generated export traits.
#[doc(hidden)]
pub struct RegistryExport<T>(PhantomData<T>);

impl<T: RegistryProvider> registry::Guest for RegistryExport<T> {
    fn matches(image: ImageRef) -> Option<u32> {
        with_instance::<T, _>("matches", |instance| instance.matches(&image)).unwrap_or_else(
            |message| {
                crate::log::warn(&message);
                None
            },
        )
    }

    fn locate(image: ImageRef) -> Result<Location, RegistryError> {
        with_instance::<T, _>("locate", |instance| instance.locate(&image))
            .map_err(RegistryError::Unsupported)?
    }

    fn credentials(target: Location) -> Result<Auth, RegistryError> {
        with_instance::<T, _>("credentials", |instance| instance.credentials(&target))
            .map_err(RegistryError::Unsupported)?
    }

    fn list_tags(target: Location) -> Result<Vec<String>, RegistryError> {
        with_instance::<T, _>("list-tags", |instance| instance.list_tags(&target))
            .map_err(RegistryError::Unsupported)?
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
        .map_err(RegistryError::Unsupported)?
    }
}

/// Exports a [`RegistryProvider`] implementation as this component's
/// `registry-provider` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_registry {
    ($provider:ty) => {
        $crate::__export_world!(registry, RegistryExport, $provider);
    };
}

/// Vendor grants (tokens from a token exchange) kept by the host until they
/// expire (WIT `grant-cache`), so that one exchange serves every repository
/// and every pooled copy of the instance.
pub mod grants {
    use super::bindings::crowsnest::plugin::grant_cache;
    use super::{Auth, RegistryError};

    /// A grant is refreshed this long before its stated expiry, so that a
    /// token is never sent in its last seconds.
    pub const EXPIRY_MARGIN_SECONDS: u64 = 60;

    /// The grant cached under `key`, else the one `exchange` obtains, kept
    /// until its expiry (`(grant, expires-at in Unix seconds)`) less
    /// [`EXPIRY_MARGIN_SECONDS`]. Outside wasm there is no host cache: every
    /// call exchanges.
    pub fn cached(
        key: &str,
        exchange: impl FnOnce() -> Result<(Auth, u64), RegistryError>,
    ) -> Result<Auth, RegistryError> {
        if cfg!(target_arch = "wasm32") {
            if let Some(grant) = grant_cache::get(key) {
                return Ok(grant);
            }
        }
        let (grant, expires_at) = exchange()?;
        if cfg!(target_arch = "wasm32") {
            grant_cache::put(
                key,
                &grant,
                expires_at.saturating_sub(EXPIRY_MARGIN_SECONDS),
            );
        }
        Ok(grant)
    }
}

/// OAuth 2.0 error codes (RFC 6749 section 5.2) that mean the credentials
/// were refused, whatever the status they come with (usually 400).
const OAUTH_REFUSALS: [&str; 3] = ["invalid_grant", "invalid_client", "unauthorized_client"];

/// The error for a vendor API step that failed, naming plugin, step, status
/// and the vendor's error code, e.g. `ecr: GetAuthorizationToken: 403
/// UnrecognizedClientException`; refused credentials (401/403, or an OAuth
/// `invalid_grant`/`invalid_client`/`unauthorized_client` at any status) are
/// [`RegistryError::Unauthorized`], 429 [`RegistryError::TooManyRequests`].
pub fn step_failed(plugin: &str, step: &str, status: u16, code: &str) -> RegistryError {
    let code: String = code.chars().take(300).collect();
    let message = format!("{plugin}: {step}: {status} {code}")
        .trim_end()
        .to_string();
    let refused_by_oauth = OAUTH_REFUSALS
        .iter()
        .any(|refusal| code.split_whitespace().next() == Some(*refusal));
    match status {
        401 | 403 => RegistryError::Unauthorized(message),
        _ if refused_by_oauth => RegistryError::Unauthorized(message),
        429 => RegistryError::TooManyRequests(message),
        _ => RegistryError::Protocol(message),
    }
}

/// The error for a vendor API step that refused the credentials with a
/// status other than 401/403 (e.g. Alibaba's `400 SignatureDoesNotMatch`):
/// [`RegistryError::Unauthorized`], worded as [`step_failed`].
pub fn step_refused(plugin: &str, step: &str, status: u16, code: &str) -> RegistryError {
    match step_failed(plugin, step, status, code) {
        RegistryError::Protocol(message) => RegistryError::Unauthorized(message),
        other => other,
    }
}

/// The error for a vendor API step that got no answer (transport, not allowed).
pub fn step_unreachable(plugin: &str, step: &str, error: &crate::http::HttpError) -> RegistryError {
    let message = format!("{plugin}: {step}: {error}");
    match error {
        crate::http::HttpError::NotAllowed(_) => RegistryError::NotAllowed(message),
        _ => RegistryError::Transport(message),
    }
}

/// The error for a vendor answer that lacks what the protocol promises.
pub fn step_malformed(plugin: &str, step: &str, what: &str) -> RegistryError {
    RegistryError::Protocol(format!("{plugin}: {step}: {what}"))
}

/// Priority of a vendor plugin for its own domains: above the generic `oci` (10).
pub const VENDOR_PRIORITY: u32 = 100;

/// A vendor registry whose accounts are plain registry credentials (users,
/// robots, tokens, fixed passwords), which the host presents to the
/// registry's own challenge: served at fixed domain patterns (see
/// [`domain_matches`]) and the `mirrors`, looked up on `url` when set, else
/// on the image's own domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRegistry {
    /// `url` (empty when unset), mirrors and credentials.
    pub upstream: Upstream,
    domains: &'static [&'static str],
}

impl DomainRegistry {
    /// Reads the common settings for a registry served at `domains`.
    pub fn configure(
        domains: &'static [&'static str],
        settings: &Settings,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            upstream: Upstream::configure_optional_url(settings)?,
            domains,
        })
    }

    /// [`VENDOR_PRIORITY`] for the vendor's domains and the mirrors.
    pub fn matches(&self, image: &ImageRef) -> Option<u32> {
        (self
            .domains
            .iter()
            .any(|pattern| domain_matches(&image.domain, pattern))
            || self.upstream.serves(&image.domain, []))
        .then_some(VENDOR_PRIORITY)
    }
}

/// Defines and exports a registry plugin for a vendor whose accounts are
/// plain registry credentials (see [`DomainRegistry`]):
/// `domain_registry!(Ghcr, "ghcr", "description", ["ghcr.io"], "username doc", "password doc");`
#[macro_export]
macro_rules! domain_registry {
    ($type:ident, $name:literal, $description:literal, [$($domain:literal),+ $(,)?], $username:literal, $password:literal $(,)?) => {
        /// One configured instance of the plugin.
        pub struct $type($crate::registry::DomainRegistry);

        /// The domain patterns the vendor's registry answers on.
        pub const DOMAINS: &[&str] = &[$($domain),+];

        impl $crate::registry::RegistryProvider for $type {
            fn describe() -> $crate::PluginInfo {
                $crate::registry::with_common_keys(
                    $crate::PluginInfo::new($name, env!("CARGO_PKG_VERSION"), $description),
                    $username,
                    $password,
                )
            }

            fn configure(settings: &$crate::Settings) -> Result<Self, $crate::ConfigError> {
                $crate::registry::DomainRegistry::configure(DOMAINS, settings).map(Self)
            }

            fn matches(&self, image: &$crate::registry::ImageRef) -> Option<u32> {
                self.0.matches(image)
            }

            fn locate(
                &self,
                image: &$crate::registry::ImageRef,
            ) -> Result<$crate::registry::Location, $crate::registry::RegistryError> {
                self.0.upstream.locate_as_written(image)
            }

            fn credentials(
                &self,
                _target: &$crate::registry::Location,
            ) -> Result<$crate::registry::Auth, $crate::registry::RegistryError> {
                Ok(self.0.upstream.credentials.clone())
            }
        }

        $crate::export_registry!($type);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_unauthorized_whatever_the_status() {
        let refused = [
            step_failed("gcr", "token exchange", 400, "invalid_grant"),
            step_failed("acr", "AAD token", 401, "invalid_client"),
            step_failed("acr", "AAD token", 400, "unauthorized_client"),
            step_failed(
                "ecr",
                "GetAuthorizationToken",
                403,
                "UnrecognizedClientException",
            ),
        ];
        for error in refused {
            assert!(matches!(error, RegistryError::Unauthorized(_)), "{error:?}");
        }
        assert_eq!(
            step_failed("gcr", "token exchange", 400, "invalid_grant"),
            RegistryError::Unauthorized("gcr: token exchange: 400 invalid_grant".into())
        );
        assert!(matches!(
            step_failed("gcr", "token exchange", 400, "invalid_request"),
            RegistryError::Protocol(_)
        ));
        assert!(matches!(
            step_failed("tencent", "CreateInstanceToken", 429, ""),
            RegistryError::TooManyRequests(_)
        ));
    }
}
