//! `tencent`: Tencent Cloud Container Registry — Personal Edition
//! (`ccr.ccs.tencentyun.com`, user = account UIN) and Enterprise Edition
//! (`INSTANCE.tencentcloudcr.com`).
//!
//! - The fixed (console) password or a long-term instance token as
//!   `username`/`password`.
//! - An API key (`secret_id`, `secret_key`) and the instance id
//!   (`registry_id`, Enterprise Edition): a TC3-HMAC-SHA256-signed
//!   `CreateInstanceToken` call gives a temporary user and token (one hour),
//!   kept in the host's grant cache until it expires.

use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::registry::{
    grants, key_pair, step_malformed, step_unreachable, with_common_keys, Auth, DomainRegistry,
    ImageRef, Location, RegistryError, RegistryProvider,
};
use crowsnest_plugin_sdk::serde_json::{self, json, Value};
use crowsnest_plugin_sdk::{clock, ConfigError, ConfigKey, PluginInfo, Settings};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The domains Tencent's registries answer on.
const DOMAINS: &[&str] = &["ccr.ccs.tencentyun.com", "*.tencentcloudcr.com"];
/// TCR's API endpoint.
const API_URL: &str = "https://tcr.tencentcloudapi.com";
/// The API call that issues an instance token.
const STEP: &str = "CreateInstanceToken";
/// The TCR API version the call belongs to.
const API_VERSION: &str = "2019-09-24";
/// The content type TC3 signs.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Temporary tokens last an hour; used when the answer does not say.
const TOKEN_SECONDS: u64 = 3600;

/// An API key with the instance it asks tokens for.
struct ApiKey {
    secret_id: String,
    secret_key: String,
    registry_id: String,
    region: String,
    api_url: String,
}

/// One configured Tencent registry instance.
pub struct Tencent {
    registry: DomainRegistry,
    api_key: Option<ApiKey>,
}

/// What a TC3 signature covers (Tencent Cloud API 3.0, "Signature v3").
pub struct Tc3Request<'a> {
    /// Service name, e.g. `tcr`.
    pub service: &'a str,
    /// API host, e.g. `tcr.tencentcloudapi.com`.
    pub host: &'a str,
    /// Request time, Unix seconds (`X-TC-Timestamp`).
    pub timestamp: u64,
    /// The JSON body sent.
    pub payload: &'a [u8],
}

fn hmac_sha256(key: &[u8], message: &str) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` header of a TC3-HMAC-SHA256-signed POST of
/// `request` (signed headers `content-type;host`).
pub fn tc3_authorization(secret_id: &str, secret_key: &str, request: &Tc3Request) -> String {
    let (year, month, day, ..) = clock::utc_parts(request.timestamp);
    let date = format!("{year:04}-{month:02}-{day:02}");
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{}\n\ncontent-type;host\n{}",
        request.host,
        hex::encode(Sha256::digest(request.payload))
    );
    let scope = format!("{date}/{}/tc3_request", request.service);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{scope}\n{}",
        request.timestamp,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let date_key = hmac_sha256(format!("TC3{secret_key}").as_bytes(), &date);
    let service_key = hmac_sha256(&date_key, request.service);
    let signing_key = hmac_sha256(&service_key, "tc3_request");
    let signature = hex::encode(hmac_sha256(&signing_key, &string_to_sign));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    )
}

/// The error for an API 3.0 answer carrying `Response.Error.Code` (sent
/// with HTTP 200): `AuthFailure.*` is a refusal of the key, rate limits
/// are too many requests.
fn api_error(code: &str) -> RegistryError {
    let message = format!("tencent: {STEP}: {code}");
    if code.starts_with("AuthFailure") || code.starts_with("UnauthorizedOperation") {
        RegistryError::Unauthorized(message)
    } else if code.starts_with("RequestLimitExceeded") {
        RegistryError::TooManyRequests(message)
    } else {
        RegistryError::Protocol(message)
    }
}

impl ApiKey {
    /// `CreateInstanceToken`: the registry user and token, and when it expires.
    fn exchange(&self) -> Result<(Auth, u64), RegistryError> {
        let now = clock::unix_seconds();
        let host = self
            .api_url
            .split_once("://")
            .map_or(self.api_url.as_str(), |(_, rest)| rest)
            .trim_end_matches('/');
        let payload = json!({"RegistryId": self.registry_id, "TokenType": "temp"}).to_string();
        let authorization = tc3_authorization(
            &self.secret_id,
            &self.secret_key,
            &Tc3Request {
                service: "tcr",
                host,
                timestamp: now,
                payload: payload.as_bytes(),
            },
        );
        // The host sets `Host` itself from the URL; it was signed as sent.
        let response = Request::post(format!("{}/", self.api_url.trim_end_matches('/')))
            .header("content-type", CONTENT_TYPE)
            .header("x-tc-action", STEP)
            .header("x-tc-version", API_VERSION)
            .header("x-tc-region", &self.region)
            .header("x-tc-timestamp", now.to_string())
            .header("authorization", authorization)
            .body(payload.into_bytes())
            .send()
            .map_err(|err| step_unreachable("tencent", STEP, &err))?;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let malformed = |what: &str| step_malformed("tencent", STEP, what);
        if !response.is_success() {
            return Err(malformed(&format!("HTTP {}", response.status)));
        }
        let result = &answer["Response"];
        if let Some(code) = result["Error"]["Code"].as_str() {
            return Err(api_error(code));
        }
        let user = result["Username"]
            .as_str()
            .ok_or_else(|| malformed("no Response.Username"))?;
        let token = result["Token"]
            .as_str()
            .ok_or_else(|| malformed("no Response.Token"))?;
        let expires_at = result["ExpTime"]
            .as_u64()
            .map_or(now + TOKEN_SECONDS, |millis| millis / 1000);
        Ok((Auth::Basic((user.into(), token.into())), expires_at))
    }
}

impl RegistryProvider for Tencent {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new(
                "tencent",
                env!("CARGO_PKG_VERSION"),
                "Tencent Cloud Container Registry (ccr.ccs.tencentyun.com, *.tencentcloudcr.com)",
            ),
            "Account UIN (personal) or the instance token's user name",
            "Fixed registry password or long-term instance token",
        )
        .key(ConfigKey::optional(
            "secret_id",
            "API key id (SecretId) for CreateInstanceToken",
        ))
        .key(ConfigKey::optional("secret_key", "API key secret (SecretKey)").secret())
        .key(ConfigKey::optional(
            "registry_id",
            "Enterprise Edition instance id (tcr-…), needed with an API key",
        ))
        .key(ConfigKey::optional(
            "region",
            "Region of the instance, e.g. ap-guangzhou (needed with an API key)",
        ))
        .key(ConfigKey::optional(
            "api_url",
            "TCR API endpoint (default https://tcr.tencentcloudapi.com)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let registry = DomainRegistry::configure(DOMAINS, settings)?;
        let api_key = match key_pair(settings, "secret_id", "secret_key")? {
            None => None,
            Some((secret_id, secret_key)) => Some(ApiKey {
                secret_id,
                secret_key,
                registry_id: settings.require("registry_id")?.to_string(),
                region: settings.require("region")?.to_string(),
                api_url: settings
                    .http_url("api_url")?
                    .map_or_else(|| API_URL.to_string(), |url| url.as_string()),
            }),
        };
        if api_key.is_some() && registry.upstream.credentials != Auth::Anonymous {
            return Err(ConfigError::key(
                "username",
                "give username/password or an API key, not both",
            ));
        }
        Ok(Self { registry, api_key })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.registry.matches(image)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.registry.upstream.locate_as_written(image)
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        match &self.api_key {
            Some(key) => grants::cached(
                &format!("{} {} {}", key.api_url, key.secret_id, key.registry_id),
                || key.exchange(),
            ),
            None => Ok(self.registry.upstream.credentials.clone()),
        }
    }
}

crowsnest_plugin_sdk::export_registry!(Tencent);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn personal_and_enterprise_domains() {
        let tencent: Tencent =
            configure_from([("username", "100012345678"), ("password", "p")]).unwrap();
        assert_eq!(
            tencent.matches(&image("ccr.ccs.tencentyun.com", "ns/app")),
            Some(100)
        );
        assert_eq!(
            tencent.matches(&image("acme.tencentcloudcr.com", "ns/app")),
            Some(100)
        );
        assert_eq!(
            tencent.matches(&image("mirror.ccs.tencentyun.com", "library/nginx")),
            None
        );
    }

    /// Tencent's published signature example (API 3.0 "Signature v3":
    /// CVM DescribeInstances at 1551113065, keys masked as published).
    #[test]
    fn tc3_matches_tencents_published_example() {
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let authorization = tc3_authorization(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            &Tc3Request {
                service: "cvm",
                host: "cvm.tencentcloudapi.com",
                timestamp: 1_551_113_065,
                payload: payload.as_bytes(),
            },
        );
        assert_eq!(
            authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn an_api_key_needs_the_instance_and_region() {
        let missing = configure_from::<Tencent>([("secret_id", "AKID"), ("secret_key", "s")]);
        assert_eq!(
            missing.err().and_then(|e| e.key).as_deref(),
            Some("registry_id")
        );
        assert!(matches!(
            api_error("AuthFailure.SignatureFailure"),
            RegistryError::Unauthorized(_)
        ));
    }
}
