//! Azure AD and Azure Container Registry's token exchange, for service
//! principals (Azure/acr `docs/AAD-OAuth.md`):
//!
//! 1. `POST /{tenant}/oauth2/v2.0/token`, form `grant_type=client_credentials`,
//!    `client_id`, `client_secret`, `scope=https://management.azure.com/.default`
//!    → `{token_type: "Bearer", expires_in, ext_expires_in, access_token}`.
//!    AAD's refusals: unknown tenant `400 invalid_request` (AADSTS90002),
//!    unknown client `400 unauthorized_client` (AADSTS700016), wrong secret
//!    `401 invalid_client` (AADSTS7000215).
//! 2. `POST /oauth2/exchange`, form `grant_type=access_token`, `service`
//!    (the registry's login server), `tenant`, `access_token` (from 1)
//!    → `{refresh_token}`; anything else `401 {"errors":[{"code":"UNAUTHORIZED",…}]}`.
//!
//! The refresh token (a JWT with `exp`, three hours) is what the registry
//! takes as the password of user `00000000-0000-0000-0000-000000000000`; the
//! real htpasswd registry behind the emulator is set up with it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;

use super::emulator::unix_now;
use super::{Answer, Received, Service};

/// The user ACR refresh tokens are presented with.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
/// The AAD access token the emulator issues.
const AAD_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.aad-access-token.sig";
/// The scope ACR's exchange takes AAD tokens for.
const SCOPE: &str = "https://management.azure.com/.default";
/// How long ACR refresh tokens last.
const REFRESH_LIFETIME: Duration = Duration::from_secs(3 * 3600);

/// AAD (one tenant, one service principal) and one registry's `/oauth2/exchange`.
pub struct Azure {
    /// The tenant id.
    pub tenant_id: String,
    /// The service principal's application (client) id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The registry's login server, e.g. `crowsnest.azurecr.io`.
    pub login_server: String,
    refresh_token: String,
}

impl Azure {
    /// The emulator for `login_server`, issuing one refresh token.
    pub fn new(tenant_id: &str, client_id: &str, client_secret: &str, login_server: &str) -> Self {
        let now = unix_now();
        // Short enough for htpasswd's bcrypt (72 bytes).
        let claims = json!({"exp": now + REFRESH_LIFETIME.as_secs()}).to_string();
        let refresh_token = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        );
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            login_server: login_server.into(),
            refresh_token,
        }
    }

    /// The refresh token the exchange issues (the registry's password).
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// Whether `request` is step 1 (AAD) rather than step 2 (exchange).
    pub fn is_aad(request: &Received) -> bool {
        request.path.ends_with("/oauth2/v2.0/token")
    }
}

/// The form fields of a request, or the problem with its content type.
fn form(request: &Received) -> Result<std::collections::BTreeMap<String, String>, String> {
    if request.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err(format!(
            "400 invalid_request AADSTS900144: Content-Type {:?}",
            request.header("content-type")
        ));
    }
    Ok(url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect())
}

impl Service for Azure {
    fn check(&self, request: &Received) -> Vec<String> {
        if request.method != "POST" {
            return vec![format!(
                "405 invalid_request: {} {}",
                request.method, request.path
            )];
        }
        let fields = match form(request) {
            Ok(fields) => fields,
            Err(problem) => return vec![problem],
        };
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        if Self::is_aad(request) {
            let tenant = request.path.trim_start_matches('/').split('/').next();
            if tenant != Some(self.tenant_id.as_str()) {
                return vec![format!(
                    "400 invalid_request AADSTS90002: Tenant '{tenant:?}' not found."
                )];
            }
            if field("grant_type") != "client_credentials" || field("scope") != SCOPE {
                return vec![format!(
                    "400 invalid_request AADSTS900144: grant_type {:?}, scope {:?}",
                    field("grant_type"),
                    field("scope")
                )];
            }
            if field("client_id") != self.client_id {
                return vec![format!("400 unauthorized_client AADSTS700016: Application with identifier '{}' was not found in the directory.", field("client_id"))];
            }
            if field("client_secret") != self.client_secret {
                return vec![
                    "401 invalid_client AADSTS7000215: Invalid client secret provided.".into(),
                ];
            }
            return Vec::new();
        }
        if request.path != "/oauth2/exchange" {
            return vec![format!("404 NOT_FOUND: {}", request.path)];
        }
        let mut problems = Vec::new();
        for (name, expected) in [
            ("grant_type", "access_token"),
            ("service", self.login_server.as_str()),
            ("tenant", self.tenant_id.as_str()),
            ("access_token", AAD_TOKEN),
        ] {
            if field(name) != expected {
                problems.push(format!("401 UNAUTHORIZED: `{name}` is {:?}", field(name)));
            }
        }
        problems
    }

    fn accept(&self, request: &Received) -> Answer {
        if Self::is_aad(request) {
            Answer::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": AAD_TOKEN}),
            )
        } else {
            Answer::json(200, json!({"refresh_token": self.refresh_token}))
        }
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (status, rest) = first.split_once(' ').unwrap_or(("400", first));
        let status = status.parse().unwrap_or(400);
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code.trim_end_matches(':');
        if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            Answer::json(
                status,
                json!({"errors": [{"code": code, "message": message}]}),
            )
        } else {
            Answer::json(
                status,
                json!({"error": code, "error_description": message, "error_codes": [],
                       "timestamp": "2026-01-01 00:00:00Z", "trace_id": "00000000-0000-0000-0000-000000000000"}),
            )
        }
    }

    fn fail(&self) -> Answer {
        Answer::json(500, json!({"error": "temporarily_unavailable"}))
    }

    fn rate_limit(&self, wait: Duration) -> Answer {
        Answer::json(429, json!({"error": "too_many_requests"}))
            .with_header("retry-after", super::emulator::retry_after_seconds(wait))
    }

    fn text(&self, request: &Received) -> String {
        request.text()
    }
}
