//! `aliyun`: Alibaba Cloud Container Registry — Personal Edition
//! (`registry[-vpc|-intl].REGION.aliyuncs.com`) and Enterprise Edition
//! (`INSTANCE-registry[-vpc].REGION.cr.aliyuncs.com`).
//!
//! - The account's fixed registry password as `username`/`password`.
//! - An AccessKey (`access_key_id`, `access_key_secret`) and the Enterprise
//!   instance id (`instance_id`): the signed RPC call `GetAuthorizationToken`
//!   (API version 2018-12-01, signature version 1.0, HMAC-SHA1) gives a
//!   temporary user and token, kept in the host's grant cache until it
//!   expires.

use base64::Engine as _;
use crowsnest_plugin_sdk::encoding::percent_encode;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::registry::{
    grants, key_pair, step_failed, step_malformed, step_refused, step_unreachable,
    with_common_keys, Auth, DomainRegistry, ImageRef, Location, RegistryError, RegistryProvider,
};
use crowsnest_plugin_sdk::serde_json::{self, Value};
use crowsnest_plugin_sdk::{clock, ConfigError, ConfigKey, PluginInfo, Settings};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The domains Alibaba's registries answer on.
const DOMAINS: &[&str] = &[
    "registry.*.aliyuncs.com",
    "registry-vpc.*.aliyuncs.com",
    "registry-intl.*.aliyuncs.com",
    "*.cr.aliyuncs.com",
];
/// The API call that issues a temporary registry token.
const STEP: &str = "GetAuthorizationToken";
/// The Container Registry API version it belongs to.
const API_VERSION: &str = "2018-12-01";
/// Temporary tokens last an hour; used when the answer does not say.
const TOKEN_SECONDS: u64 = 3600;
/// Error codes that mean the AccessKey was refused.
const REFUSALS: [&str; 5] = [
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "Forbidden.RAM",
    "NoPermission",
];

/// An AccessKey with the instance it asks tokens for.
struct AccessKey {
    id: String,
    secret: String,
    instance_id: String,
    region: Option<String>,
    api_url: Option<String>,
}

/// One configured Alibaba Cloud registry instance.
pub struct Aliyun {
    registry: DomainRegistry,
    key: Option<AccessKey>,
}

/// The region of an Enterprise Edition domain: `cn-hangzhou` of
/// `acme-registry.cn-hangzhou.cr.aliyuncs.com`.
fn enterprise_region(domain: &str) -> Option<&str> {
    let (_, rest) = domain.split_once('.')?;
    let region = rest.strip_suffix(".cr.aliyuncs.com")?;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

/// The RPC signature (version 1.0) of `parameters` sent with `method`:
/// Base64(HMAC-SHA1(key = secret + "&", METHOD&%2F&encode(sorted query))).
pub fn rpc_signature(method: &str, parameters: &[(&str, &str)], secret: &str) -> String {
    let mut sorted = parameters.to_vec();
    sorted.sort();
    let query = canonical_query(&sorted);
    let string_to_sign = format!("{method}&%2F&{}", percent_encode(&query));
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `name=value` pairs, percent-encoded, joined with `&`, in the given order.
fn canonical_query(parameters: &[(&str, &str)]) -> String {
    parameters
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

impl AccessKey {
    /// `GetAuthorizationToken` in `region`: the temporary user and token,
    /// and when it expires.
    fn exchange(&self, region: &str) -> Result<(Auth, u64), RegistryError> {
        let (seconds, nanos) = clock::now();
        let (year, month, day, hour, minute, second) = clock::utc_parts(seconds);
        let timestamp = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z");
        let nonce = format!("{seconds}{nanos:09}");
        let mut parameters = vec![
            ("AccessKeyId", self.id.as_str()),
            ("Action", STEP),
            ("Format", "JSON"),
            ("InstanceId", self.instance_id.as_str()),
            ("RegionId", region),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce.as_str()),
            ("SignatureVersion", "1.0"),
            ("Timestamp", timestamp.as_str()),
            ("Version", API_VERSION),
        ];
        let signature = rpc_signature("GET", &parameters, &self.secret);
        parameters.push(("Signature", &signature));
        let api_url = self
            .api_url
            .clone()
            .unwrap_or_else(|| format!("https://cr.{region}.aliyuncs.com"));
        let url = format!(
            "{}/?{}",
            api_url.trim_end_matches('/'),
            canonical_query(&parameters)
        );
        let response = Request::get(url)
            .send()
            .map_err(|err| step_unreachable("aliyun", STEP, &err))?;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let code = answer["Code"].as_str().unwrap_or_default();
        if !response.is_success() {
            return Err(if REFUSALS.contains(&code) {
                step_refused("aliyun", STEP, response.status, code)
            } else {
                step_failed("aliyun", STEP, response.status, code)
            });
        }
        let malformed = |what: &str| step_malformed("aliyun", STEP, what);
        if answer["IsSuccess"].as_bool() == Some(false) {
            return Err(malformed(&format!("IsSuccess false {code}")));
        }
        let user = answer["TempUsername"]
            .as_str()
            .ok_or_else(|| malformed("no TempUsername"))?;
        let token = answer["AuthorizationToken"]
            .as_str()
            .ok_or_else(|| malformed("no AuthorizationToken"))?;
        let expires_at = answer["ExpireTime"]
            .as_u64()
            .map_or(seconds + TOKEN_SECONDS, |millis| millis / 1000);
        Ok((Auth::Basic((user.into(), token.into())), expires_at))
    }
}

impl RegistryProvider for Aliyun {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new("aliyun", env!("CARGO_PKG_VERSION"), "Alibaba Cloud Container Registry (registry*.REGION.aliyuncs.com, *.cr.aliyuncs.com)"),
            "Alibaba Cloud account or RAM user name",
            "The fixed registry password set in the console",
        )
        .key(ConfigKey::optional("access_key_id", "AccessKey id for GetAuthorizationToken (Enterprise Edition)"))
        .key(ConfigKey::optional("access_key_secret", "AccessKey secret").secret())
        .key(ConfigKey::optional("instance_id", "Enterprise Edition instance id (cri-…), needed with an AccessKey"))
        .key(ConfigKey::optional("region", "Region of the API call (default: from the registry domain)"))
        .key(ConfigKey::optional("api_url", "Container Registry API endpoint (default https://cr.REGION.aliyuncs.com)"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let registry = DomainRegistry::configure(DOMAINS, settings)?;
        let key = match key_pair(settings, "access_key_id", "access_key_secret")? {
            None => None,
            Some((id, secret)) => Some(AccessKey {
                id,
                secret,
                instance_id: settings.require("instance_id")?.to_string(),
                region: settings
                    .get("region")
                    .filter(|value| !value.is_empty())
                    .map(str::to_string),
                api_url: settings.http_url("api_url")?.map(|url| url.as_string()),
            }),
        };
        if key.is_some() && registry.upstream.credentials != Auth::Anonymous {
            return Err(ConfigError::key(
                "username",
                "give username/password or an AccessKey, not both",
            ));
        }
        Ok(Self { registry, key })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.registry.matches(image)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.registry.upstream.locate_as_written(image)
    }

    fn credentials(&self, target: &Location) -> Result<Auth, RegistryError> {
        let Some(key) = &self.key else {
            return Ok(self.registry.upstream.credentials.clone());
        };
        let domain = target.display.split('/').next().unwrap_or_default();
        let region = key
            .region
            .as_deref()
            .or_else(|| enterprise_region(domain))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "aliyun: no region: `{domain}` is not an Enterprise Edition domain and `region` is not set"
                ))
            })?;
        grants::cached(&format!("{} {} {region}", key.id, key.instance_id), || {
            key.exchange(region)
        })
    }
}

crowsnest_plugin_sdk::export_registry!(Aliyun);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn personal_and_enterprise_domains() {
        let aliyun: Aliyun =
            configure_from([("username", "me@example"), ("password", "p")]).unwrap();
        for domain in [
            "registry.cn-hangzhou.aliyuncs.com",
            "registry-vpc.cn-shanghai.aliyuncs.com",
            "registry-intl.ap-southeast-1.aliyuncs.com",
            "acme-registry.cn-beijing.cr.aliyuncs.com",
        ] {
            assert_eq!(
                aliyun.matches(&image(domain, "ns/app")),
                Some(100),
                "{domain}"
            );
        }
        for domain in [
            "registry.example.com",
            "mirror.aliyuncs.com",
            "cr.aliyuncs.com",
        ] {
            assert_eq!(aliyun.matches(&image(domain, "ns/app")), None, "{domain}");
        }
        assert_eq!(
            enterprise_region("acme-registry-vpc.cn-beijing.cr.aliyuncs.com"),
            Some("cn-beijing")
        );
    }

    /// Alibaba Cloud's published RPC signature example (ECS DescribeRegions,
    /// AccessKey `testid`/`testsecret`).
    #[test]
    fn rpc_signature_matches_alibabas_published_example() {
        let parameters = [
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ];
        assert_eq!(
            rpc_signature("GET", &parameters, "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn an_access_key_needs_the_instance() {
        let missing =
            configure_from::<Aliyun>([("access_key_id", "LTAI"), ("access_key_secret", "s")]);
        assert_eq!(
            missing.err().and_then(|e| e.key).as_deref(),
            Some("instance_id")
        );
    }
}
