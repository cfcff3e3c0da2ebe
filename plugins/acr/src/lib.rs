//! `acr`: Azure Container Registry (`*.azurecr.io`).
//!
//! - Admin user, repository-scoped token (`username`/`password`): Basic
//!   credentials that ACR's `/oauth2/token` takes, presented by the host to
//!   the registry's challenge.
//! - Service principal (`tenant_id`, `client_id`, `client_secret`): an AAD
//!   client-credentials token (`POST {login_url}/{tenant}/oauth2/v2.0/token`)
//!   traded at the registry's `POST /oauth2/exchange` for an ACR refresh
//!   token; the host presents user `00000000-0000-0000-0000-000000000000`
//!   with the refresh token to the registry's `/oauth2/token` (what `az acr
//!   login` hands to `docker login`). The refresh token is kept in the host's
//!   grant cache until it expires: one exchange serves every repository.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::registry::{
    grants, step_failed, step_malformed, step_unreachable, with_common_keys, Auth, DomainRegistry,
    ImageRef, Location, RegistryError, RegistryProvider,
};
use crowsnest_plugin_sdk::serde_json::{self, Value};
use crowsnest_plugin_sdk::{clock, ConfigError, ConfigKey, PluginInfo, Settings};

/// The domains ACR answers on.
const DOMAINS: &[&str] = &["*.azurecr.io"];
/// Azure AD's public login endpoint.
const LOGIN_URL: &str = "https://login.microsoftonline.com";
/// The AAD scope whose token ACR's exchange accepts.
const AAD_SCOPE: &str = "https://management.azure.com/.default";
/// The registry user that carries an ACR refresh token.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
/// ACR refresh tokens last about three hours; used when the token does not say.
const REFRESH_TOKEN_SECONDS: u64 = 3 * 3600;
/// The steps named in errors.
const AAD_STEP: &str = "AAD token";
const EXCHANGE_STEP: &str = "oauth2/exchange";

/// A service principal of an Azure AD tenant.
struct ServicePrincipal {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    login_url: String,
    /// Where the registry's `/oauth2/exchange` is; empty = the registry itself.
    auth_url: Option<String>,
}

/// One configured ACR instance.
pub struct Acr {
    registry: DomainRegistry,
    principal: Option<ServicePrincipal>,
}

/// The error code of a failed OAuth or registry answer: OAuth's `error`, or
/// the distribution-style `errors[0].code`.
fn error_code(answer: &Value) -> String {
    let code = answer["error"]
        .as_str()
        .or_else(|| answer["errors"][0]["code"].as_str())
        .unwrap_or_default();
    // AAD's description starts with its `AADSTS…` number, which says why.
    let detail = answer["error_description"]
        .as_str()
        .and_then(|text| text.split(':').next())
        .filter(|number| number.starts_with("AADSTS"));
    match detail {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_string(),
    }
}

/// The `exp` claim of a JWT, without verifying it (the registry does).
fn jwt_expiry(token: &str) -> Option<u64> {
    let claims = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    claims["exp"].as_u64()
}

/// POSTs `form` to `url` for step `step`; the JSON answer when it succeeded.
fn post_form(url: &str, step: &str, form: &[(&str, &str)]) -> Result<Value, RegistryError> {
    let response = Request::post(url)
        .form(form)
        .send()
        .map_err(|err| step_unreachable("acr", step, &err))?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if !response.is_success() {
        return Err(step_failed(
            "acr",
            step,
            response.status,
            &error_code(&answer),
        ));
    }
    Ok(answer)
}

impl ServicePrincipal {
    /// AAD token, then ACR refresh token for `service` (the registry's domain),
    /// and when the refresh token expires.
    fn exchange(&self, service: &str, registry_url: &str) -> Result<(Auth, u64), RegistryError> {
        let aad_url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url.trim_end_matches('/'),
            self.tenant_id
        );
        let aad = post_form(
            &aad_url,
            AAD_STEP,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("scope", AAD_SCOPE),
            ],
        )?;
        let aad_token = aad["access_token"]
            .as_str()
            .ok_or_else(|| step_malformed("acr", AAD_STEP, "no access_token"))?;
        let exchange_url = format!(
            "{}/oauth2/exchange",
            self.auth_url
                .as_deref()
                .unwrap_or(registry_url)
                .trim_end_matches('/')
        );
        let exchanged = post_form(
            &exchange_url,
            EXCHANGE_STEP,
            &[
                ("grant_type", "access_token"),
                ("service", service),
                ("tenant", &self.tenant_id),
                ("access_token", aad_token),
            ],
        )?;
        let refresh_token = exchanged["refresh_token"]
            .as_str()
            .ok_or_else(|| step_malformed("acr", EXCHANGE_STEP, "no refresh_token"))?;
        let expires_at = jwt_expiry(refresh_token)
            .unwrap_or_else(|| clock::unix_seconds() + REFRESH_TOKEN_SECONDS);
        Ok((
            Auth::Basic((REFRESH_TOKEN_USER.into(), refresh_token.into())),
            expires_at,
        ))
    }
}

/// The non-empty setting `key`.
fn text(settings: &Settings, key: &str) -> Option<String> {
    settings
        .get(key)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

impl RegistryProvider for Acr {
    fn describe() -> PluginInfo {
        with_common_keys(
            PluginInfo::new(
                "acr",
                env!("CARGO_PKG_VERSION"),
                "Azure Container Registry (*.azurecr.io)",
            ),
            "Admin user or token name (Basic)",
            "Admin password or token password",
        )
        .key(ConfigKey::optional(
            "tenant_id",
            "Service principal: Azure AD tenant id",
        ))
        .key(ConfigKey::optional(
            "client_id",
            "Service principal: application (client) id",
        ))
        .key(ConfigKey::optional("client_secret", "Service principal: client secret").secret())
        .key(ConfigKey::optional(
            "login_url",
            "Azure AD endpoint (default https://login.microsoftonline.com)",
        ))
        .key(ConfigKey::optional(
            "auth_url",
            "Where the registry's /oauth2/exchange is (default: the registry)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let registry = DomainRegistry::configure(DOMAINS, settings)?;
        let principal = match (
            text(settings, "tenant_id"),
            text(settings, "client_id"),
            text(settings, "client_secret"),
        ) {
            (None, None, None) => None,
            (Some(tenant_id), Some(client_id), Some(client_secret)) => Some(ServicePrincipal {
                tenant_id,
                client_id,
                client_secret,
                login_url: settings
                    .http_url("login_url")?
                    .map_or_else(|| LOGIN_URL.to_string(), |url| url.as_string()),
                auth_url: settings.http_url("auth_url")?.map(|url| url.as_string()),
            }),
            (tenant, client, _) => {
                let missing = if tenant.is_none() {
                    "tenant_id"
                } else if client.is_none() {
                    "client_id"
                } else {
                    "client_secret"
                };
                return Err(ConfigError::key(
                    missing,
                    "a service principal needs tenant_id, client_id and client_secret",
                ));
            }
        };
        if principal.is_some() && registry.upstream.credentials != Auth::Anonymous {
            return Err(ConfigError::key(
                "username",
                "give username/password or a service principal, not both",
            ));
        }
        Ok(Self {
            registry,
            principal,
        })
    }

    fn matches(&self, image: &ImageRef) -> Option<u32> {
        self.registry.matches(image)
    }

    fn locate(&self, image: &ImageRef) -> Result<Location, RegistryError> {
        self.registry.upstream.locate_as_written(image)
    }

    fn credentials(&self, target: &Location) -> Result<Auth, RegistryError> {
        let Some(principal) = &self.principal else {
            return Ok(self.registry.upstream.credentials.clone());
        };
        // ACR names itself (`service`) by its login server, the image's domain.
        let service = target.display.split('/').next().unwrap_or_default();
        grants::cached(
            &format!("{} {} {service}", principal.tenant_id, principal.client_id),
            || principal.exchange(service, &target.registry_url),
        )
    }
}

crowsnest_plugin_sdk::export_registry!(Acr);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image};

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

    #[test]
    fn a_service_principal_needs_all_three_keys() {
        let partial = configure_from::<Acr>([("tenant_id", "t"), ("client_id", "c")]);
        assert_eq!(
            partial.err().and_then(|e| e.key).as_deref(),
            Some("client_secret")
        );
        let both = configure_from::<Acr>([
            ("tenant_id", "t"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("username", "admin"),
        ]);
        assert_eq!(both.err().and_then(|e| e.key).as_deref(), Some("username"));
    }

    #[test]
    fn error_codes_carry_the_aad_number() {
        let aad: Value = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
        )
        .unwrap();
        assert_eq!(error_code(&aad), "invalid_client AADSTS7000215");
        let registry: Value =
            serde_json::from_str(r#"{"errors":[{"code":"UNAUTHORIZED","message":"x"}]}"#).unwrap();
        assert_eq!(error_code(&registry), "UNAUTHORIZED");
        let claims = URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000}"#);
        assert_eq!(
            jwt_expiry(&format!("e30.{claims}.sig")),
            Some(1_700_000_000)
        );
    }
}
