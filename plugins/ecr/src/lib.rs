//! `ecr`: Amazon ECR. Private registries
//! (`{account}.dkr.ecr[-fips].{region}.amazonaws.com[.cn]`) with an access
//! key: a SigV4-signed `GetAuthorizationToken` gives a Basic token valid
//! for 12 hours, kept in the host's grant cache until it expires. Public
//! ECR (`public.ecr.aws`) is anonymous (the host fetches its token).

mod sigv4;

use base64::Engine as _;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::registry::{
    domain_matches, grants, key_pair, step_failed, step_malformed, step_unreachable, Auth,
    ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::serde_json::Value;
use crowsnest_plugin_sdk::{clock, ConfigError, ConfigKey, PluginInfo, Settings};

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;
/// Public ECR's domain.
const PUBLIC: &str = "public.ecr.aws";
/// The API call that trades the access key for a registry password.
const STEP: &str = "GetAuthorizationToken";

/// An access key (with its session token when temporary).
struct AccessKey {
    id: String,
    secret: String,
    session_token: Option<String>,
}

/// One configured ECR instance.
pub struct Ecr {
    upstream: Upstream,
    key: Option<AccessKey>,
    region: Option<String>,
    api_url: Option<String>,
}

/// The region of a private ECR domain, e.g. `us-east-1` of
/// `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
fn private_region(domain: &str) -> Option<&str> {
    let domain = domain
        .strip_suffix(".amazonaws.com")
        .or_else(|| domain.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = domain.split_once('.')?;
    let region = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let valid = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (valid
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then_some(region)
}

impl Ecr {
    /// The ECR API endpoint for `region`.
    fn api_url(&self, region: &str, domain: &str) -> String {
        match &self.api_url {
            Some(url) => url.clone(),
            None if domain.ends_with(".cn") => format!("https://api.ecr.{region}.amazonaws.com.cn"),
            None => format!("https://api.ecr.{region}.amazonaws.com"),
        }
    }

    /// `GetAuthorizationToken`: the registry's Basic credentials and when they expire.
    fn exchange(
        &self,
        key: &AccessKey,
        region: &str,
        api_url: &str,
    ) -> Result<(Auth, u64), RegistryError> {
        let now = clock::unix_seconds();
        let host = api_url
            .split_once("://")
            .map_or(api_url, |(_, rest)| rest)
            .trim_end_matches('/');
        let body = b"{}";
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("host".to_string(), host.to_string()),
            ("x-amz-date".to_string(), sigv4::amz_date(now)),
            (
                "x-amz-target".to_string(),
                format!("AmazonEC2ContainerRegistry_V20150921.{STEP}"),
            ),
        ];
        if let Some(token) = &key.session_token {
            headers.push(("x-amz-security-token".to_string(), token.clone()));
        }
        let scope = sigv4::Scope {
            date: sigv4::amz_date(now)[..8].to_string(),
            region: region.to_string(),
            service: "ecr".into(),
        };
        let authorization = sigv4::authorization(
            &key.id,
            &key.secret,
            &scope,
            "POST",
            "/",
            "",
            &headers,
            body,
        );
        // The host sets `Host` itself from the URL; it was signed as sent.
        let request = Request::post(format!("{}/", api_url.trim_end_matches('/')))
            .headers(headers.into_iter().filter(|(name, _)| name != "host"))
            .header("authorization", authorization)
            .body(body.to_vec());
        let response = request
            .send()
            .map_err(|err| step_unreachable("ecr", STEP, &err))?;
        let answer: Value =
            crowsnest_plugin_sdk::serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if !response.is_success() {
            let code = answer["__type"].as_str().unwrap_or_default();
            let code = code.rsplit('#').next().unwrap_or(code);
            return Err(step_failed("ecr", STEP, response.status, code));
        }
        let data = &answer["authorizationData"][0];
        let malformed = |what: &str| step_malformed("ecr", STEP, what);
        let token = data["authorizationToken"]
            .as_str()
            .ok_or_else(|| malformed("no authorizationData[0].authorizationToken"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| malformed("authorizationToken is not Base64 text"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| malformed("authorizationToken is not `user:password`"))?;
        // `expiresAt` is epoch seconds in the JSON protocol; the API
        // reference's sample shows an ISO date, so both are read.
        let expires_at = match &data["expiresAt"] {
            Value::Number(number) => number.as_f64().map(|seconds| seconds as u64),
            Value::String(text) => clock::parse_utc(text),
            _ => None,
        }
        .ok_or_else(|| malformed("no readable expiresAt"))?;
        Ok((
            Auth::Basic((user.to_string(), password.to_string())),
            expires_at,
        ))
    }
}

impl RegistryProvider for Ecr {
    fn describe() -> PluginInfo {
        PluginInfo::new("ecr", env!("CARGO_PKG_VERSION"), "Amazon ECR (private registries and public.ecr.aws)")
            .key(ConfigKey::optional("url", "Reach the registry at this URL instead of its own domain (tests, VPC endpoints, proxies)"))
            .key(ConfigKey::optional("access_key_id", "AWS access key id (AKIA…/ASIA…)"))
            .key(ConfigKey::optional("secret_access_key", "AWS secret access key").secret())
            .key(ConfigKey::optional("session_token", "Session token of temporary credentials").secret())
            .key(ConfigKey::optional("region", "Region of the API call (default: from the registry domain)"))
            .key(ConfigKey::optional("api_url", "ECR API endpoint (default https://api.ecr.REGION.amazonaws.com)"))
            .key(ConfigKey::optional("mirrors", "Extra domains whose images are looked up on this registry"))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let key = key_pair(settings, "access_key_id", "secret_access_key")?.map(|(id, secret)| {
            AccessKey {
                id,
                secret,
                session_token: settings
                    .get("session_token")
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            }
        });
        Ok(Self {
            upstream: Upstream::configure_optional_url(settings)?,
            key,
            region: settings
                .get("region")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            api_url: settings.http_url("api_url")?.map(|url| url.as_string()),
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        let domain = image.domain.to_ascii_lowercase();
        (private_region(&domain).is_some()
            || domain_matches(&domain, PUBLIC)
            || self.upstream.serves(&domain, []))
        .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.upstream.locate_as_written(image)
    }

    fn credentials(&self, target: &Location) -> Result<Auth, RegistryError> {
        let domain = target.display.split('/').next().unwrap_or_default();
        let Some(key) = self
            .key
            .as_ref()
            .filter(|_| !domain_matches(domain, PUBLIC))
        else {
            return Ok(Auth::Anonymous);
        };
        let region = self
            .region
            .as_deref()
            .or_else(|| private_region(domain))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "ecr: no region: `{domain}` is not an ECR domain and `region` is not set"
                ))
            })?;
        let api_url = self.api_url(region, domain);
        grants::cached(&format!("{api_url} {} {region}", key.id), || {
            self.exchange(key, region, &api_url)
        })
    }
}

crowsnest_plugin_sdk::export_registry!(Ecr);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn private_and_public_domains() {
        let ecr: Ecr =
            configure_from([("access_key_id", "AKID"), ("secret_access_key", "s")]).unwrap();
        for domain in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "public.ecr.aws",
        ] {
            assert_eq!(ecr.matches(&image(domain, "app")), Some(100), "{domain}");
        }
        for domain in [
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "ecr.amazonaws.com",
            "docker.io",
        ] {
            assert_eq!(ecr.matches(&image(domain, "app")), None, "{domain}");
        }
        assert_eq!(
            private_region("123456789012.dkr.ecr.eu-west-3.amazonaws.com"),
            Some("eu-west-3")
        );
        let location = ecr
            .locate(&image(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "team/app",
            ))
            .unwrap();
        assert_eq!(
            location.registry_url,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            ecr.api_url("cn-north-1", "1.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            "https://api.ecr.cn-north-1.amazonaws.com.cn"
        );
        let public = ecr.locate(&image("public.ecr.aws", "nginx/nginx")).unwrap();
        assert_eq!(ecr.credentials(&public).unwrap(), Auth::Anonymous);
    }

    #[test]
    fn keys_come_in_pairs() {
        let missing = configure_from::<Ecr>([("access_key_id", "AKID")]);
        assert_eq!(
            missing.err().and_then(|e| e.key).as_deref(),
            Some("secret_access_key")
        );
    }
}
