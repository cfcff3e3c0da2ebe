//! `gcr`: Google Container Registry and Artifact Registry (`gcr.io`,
//! `*.gcr.io`, `*-docker.pkg.dev`). With a service-account JSON key, the
//! plugin signs an RS256 JWT (`iss` = client_email, `scope` cloud-platform,
//! `aud` = the token URL, one hour) and trades it at Google's OAuth token
//! endpoint (JWT-bearer grant) for an access token, sent to the registry as
//! `oauth2accesstoken` and kept in the host's grant cache until it expires.
//! A given `access_token` is sent as is; without either, anonymous.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::registry::{
    domain_matches, grants, step_failed, step_malformed, step_unreachable, with_common_keys, Auth,
    ImageRef, Location, RegistryError, RegistryProvider, Upstream,
};
use crowsnest_plugin_sdk::serde_json::{self, json, Value};
use crowsnest_plugin_sdk::{clock, ConfigError, ConfigKey, PluginInfo, Settings};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::Sha256;

/// A vendor plugin: wins over the generic `oci` plugin.
const PRIORITY: u32 = 100;
/// The domains Google's registries answer on.
const DOMAINS: [&str; 3] = ["gcr.io", "*.gcr.io", "*-docker.pkg.dev"];
/// Google's OAuth 2.0 token endpoint.
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The registry user that carries an OAuth access token.
const TOKEN_USER: &str = "oauth2accesstoken";
/// The exchange step named in errors.
const STEP: &str = "token exchange";
/// Longest assertion lifetime Google accepts.
const ASSERTION_SECONDS: u64 = 3600;

/// A service account's key.
struct ServiceAccount {
    client_email: String,
    private_key_id: String,
    key: SigningKey<Sha256>,
    token_url: String,
}

/// How the plugin authenticates.
enum Credentials {
    ServiceAccount(Box<ServiceAccount>),
    AccessToken(String),
    Configured(Auth),
}

/// One configured Google registry instance.
pub struct Gcr {
    upstream: Upstream,
    credentials: Credentials,
}

fn service_account(
    json_key: &str,
    token_url: Option<String>,
) -> Result<ServiceAccount, ConfigError> {
    let bad =
        |why: &str| ConfigError::key("json_key", format!("not a service-account JSON key: {why}"));
    let key: Value = serde_json::from_str(json_key).map_err(|_| bad("not JSON"))?;
    let text = |field: &str| {
        key[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("no `{field}`")))
    };
    let private_key = RsaPrivateKey::from_pkcs8_pem(&text("private_key")?)
        .map_err(|_| bad("`private_key` is not a PKCS#8 RSA key"))?;
    Ok(ServiceAccount {
        client_email: text("client_email")?,
        private_key_id: text("private_key_id").unwrap_or_default(),
        key: SigningKey::<Sha256>::new(private_key),
        token_url: token_url
            .or_else(|| key["token_uri"].as_str().map(str::to_string))
            .unwrap_or_else(|| TOKEN_URL.into()),
    })
}

impl ServiceAccount {
    /// The signed JWT-bearer assertion, issued at `now`.
    fn assertion(&self, now: u64) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let claims = json!({
            "iss": self.client_email,
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The access token for the assertion, and when it expires.
    fn exchange(&self) -> Result<(Auth, u64), RegistryError> {
        let now = clock::unix_seconds();
        let response = Request::post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &self.assertion(now)),
            ])
            .send()
            .map_err(|err| step_unreachable("gcr", STEP, &err))?;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if !response.is_success() {
            return Err(step_failed(
                "gcr",
                STEP,
                response.status,
                answer["error"].as_str().unwrap_or_default(),
            ));
        }
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| step_malformed("gcr", STEP, "no access_token"))?;
        let lifetime = answer["expires_in"].as_u64().unwrap_or(ASSERTION_SECONDS);
        Ok((
            Auth::Basic((TOKEN_USER.into(), token.into())),
            now + lifetime,
        ))
    }
}

impl RegistryProvider for Gcr {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new(
                "gcr",
                env!("CARGO_PKG_VERSION"),
                "Google Container Registry and Artifact Registry",
            ),
            "Registry user (`_json_key`, `oauth2accesstoken`) when giving the password directly",
            "Registry password when giving it directly",
        )
        .key(
            ConfigKey::optional("json_key", "Service-account JSON key (use json_key_file)")
                .secret(),
        )
        .key(ConfigKey::optional("access_token", "A ready OAuth access token").secret())
        .key(ConfigKey::optional(
            "token_url",
            "OAuth token endpoint (default: the key's token_uri)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let token_url = settings.http_url("token_url")?.map(|url| url.as_string());
        let upstream = Upstream::configure_optional_url(settings)?;
        let credentials = match (
            settings.get("json_key").filter(|v| !v.is_empty()),
            settings.get("access_token").filter(|v| !v.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    "access_token",
                    "give json_key or access_token, not both",
                ))
            }
            (Some(json_key), None) => {
                Credentials::ServiceAccount(Box::new(service_account(json_key, token_url)?))
            }
            (None, Some(token)) => Credentials::AccessToken(token.to_string()),
            (None, None) => Credentials::Configured(upstream.credentials.clone()),
        };
        Ok(Self {
            upstream,
            credentials,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        (DOMAINS
            .iter()
            .any(|pattern| domain_matches(&image.domain, pattern))
            || self.upstream.serves(&image.domain, []))
        .then_some(PRIORITY)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.upstream.locate_as_written(image)
    }

    fn credentials(&self, _target: &Location) -> Result<Auth, RegistryError> {
        match &self.credentials {
            Credentials::ServiceAccount(account) => grants::cached(
                &format!("{} {}", account.token_url, account.client_email),
                || account.exchange(),
            ),
            Credentials::AccessToken(token) => Ok(Auth::Basic((TOKEN_USER.into(), token.clone()))),
            Credentials::Configured(auth) => Ok(auth.clone()),
        }
    }
}

crowsnest_plugin_sdk::export_registry!(Gcr);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

    #[test]
    fn google_domains() {
        let gcr: Gcr = configure_from([("access_token", "ya29.x")]).unwrap();
        for domain in ["gcr.io", "eu.gcr.io", "europe-west1-docker.pkg.dev"] {
            assert_eq!(gcr.matches(&image(domain, "p/app")), Some(100), "{domain}");
        }
        assert_eq!(gcr.matches(&image("docker.pkg.dev", "p/app")), None);
        let location = gcr.locate(&image("eu.gcr.io", "p/app")).unwrap();
        assert_eq!(location.registry_url, "https://eu.gcr.io");
        assert_eq!(
            gcr.credentials(&location).unwrap(),
            Auth::Basic((TOKEN_USER.into(), "ya29.x".into()))
        );
    }

    #[test]
    fn a_bad_key_names_json_key() {
        let bad = configure_from::<Gcr>([("json_key", r#"{"client_email": "a@b"}"#)]);
        assert_eq!(bad.err().and_then(|e| e.key).as_deref(), Some("json_key"));
    }
}
