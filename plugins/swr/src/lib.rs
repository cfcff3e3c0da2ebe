//! `swr`: Huawei Cloud SoftWare Repository for Container
//! (`swr.{region}.myhuaweicloud.com`). Long-term login from an access key:
//! user `{region}@{AK}`, password the lowercase hex HMAC-SHA256 of the AK
//! keyed with the SK — the login command SWR's console generates.

use crowsnest_plugin_sdk::registry::{
    key_pair, with_common_keys, Auth, ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;

/// One configured SWR instance.
pub struct Swr {
    upstream: Upstream,
    /// `(AK, SK)` for the long-term login.
    access_key: Option<(String, String)>,
    region: Option<String>,
}

/// The region of an SWR domain: `cn-north-4` of `swr.cn-north-4.myhuaweicloud.com`.
fn region_of(domain: &str) -> Option<&str> {
    let region = domain
        .strip_prefix("swr.")?
        .strip_suffix(".myhuaweicloud.com")?;
    (!region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then_some(region)
}

/// SWR's long-term login password: hex(HMAC-SHA256(key = SK, message = AK)).
pub fn login_password(access_key: &str, secret_key: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(access_key.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl RegistryProvider for Swr {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new(
                "swr",
                env!("CARGO_PKG_VERSION"),
                "Huawei Cloud SWR (swr.REGION.myhuaweicloud.com)",
            ),
            "Login user as given by SWR (instead of an access key)",
            "Login password as given by SWR (instead of an access key)",
        )
        .key(ConfigKey::optional(
            "access_key",
            "Access key id (AK) for the long-term login",
        ))
        .key(ConfigKey::optional("secret_key", "Secret access key (SK)").secret())
        .key(ConfigKey::optional(
            "region",
            "Region (default: from the registry domain)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let access_key = key_pair(settings, "access_key", "secret_key")?;
        let upstream = Upstream::configure_optional_url(settings)?;
        let region = settings
            .get("region")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        Ok(Self {
            upstream,
            access_key,
            region,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        (region_of(&image.domain.to_ascii_lowercase()).is_some()
            || self.upstream.serves(&image.domain, []))
        .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.upstream.locate_as_written(image)
    }

    fn credentials(&self, target: &Location) -> Result<Auth, RegistryError> {
        let Some((access_key, secret_key)) = &self.access_key else {
            return Ok(self.upstream.credentials.clone());
        };
        let domain = target.display.split('/').next().unwrap_or_default();
        let region = self
            .region
            .as_deref()
            .or_else(|| region_of(domain))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "swr: no region: `{domain}` is not an SWR domain and `region` is not set"
                ))
            })?;
        Ok(Auth::Basic((
            format!("{region}@{access_key}"),
            login_password(access_key, secret_key),
        )))
    }
}

crowsnest_plugin_sdk::export_registry!(Swr);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    /// `printf AK | openssl dgst -sha256 -hmac SK`, the documented way.
    #[test]
    fn long_term_login_key() {
        assert_eq!(
            login_password(
                "HST3UMDQ8XOAU6EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            ),
            "a90ee7d6ea1f045062bd74b2577f9f8723821b922fab31e7f5c613d0e080fac5"
        );
        let swr: Swr = configure_from([("access_key", "AK"), ("secret_key", "SK")]).unwrap();
        let location = swr
            .locate(&image("swr.cn-north-4.myhuaweicloud.com", "org/app"))
            .unwrap();
        assert_eq!(
            location.registry_url,
            "https://swr.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            swr.credentials(&location).unwrap(),
            Auth::Basic(("cn-north-4@AK".into(), login_password("AK", "SK")))
        );
        assert_eq!(swr.matches(&image("swr.myhuaweicloud.com", "a")), None);
    }
}
