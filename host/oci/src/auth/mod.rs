//! Auth: which scheme a registry wants (learned once from `GET /v2/`), Bearer
//! tokens fetched from the realm it names and cached until they expire, Basic
//! credentials, and the access policy deciding which origins a caller may
//! reach. Builds on the transport; knows nothing of tags or manifests.

mod challenge;
mod ping;
mod policy;
mod scopes;
mod tokens;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use url::Url;

pub use challenge::{parse_challenges, AuthChallenge};
pub use policy::{is_loopback_url, AccessPolicy, AllowAll, HostAllowList};
pub use scopes::SCOPES_PER_TOKEN;

use crate::errors::NotFoundMeans;
use crate::target::Target;
use crate::transport::{Outgoing, Sent, Transport};
use crate::{Auth, RegistryError};
use ping::PingLocks;
use scopes::{pull_scope, ScopePlans};
use tokens::{credential_identity, parse_token_response, CachedToken, TokenCache, TokenKey};

/// How a registry origin wants to be authenticated, learned from `/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthScheme {
    Open,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// The `Authorization` value chosen for a request and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    None,
    Basic(String),
    /// A Bearer token; `batched` when it was asked for a batch of repositories.
    Token {
        header: String,
        from_cache: bool,
        batched: bool,
    },
    Given(String),
}

impl Credential {
    fn header(&self) -> Option<&str> {
        match self {
            Credential::None => None,
            Credential::Basic(header) | Credential::Given(header) => Some(header),
            Credential::Token { header, .. } => Some(header),
        }
    }
}

/// The transport, and what one registry client has learned about auth:
/// schemes per origin, tokens, and the token realms each registry named.
pub(crate) struct Authenticator {
    pub transport: Transport,
    schemes: Mutex<HashMap<String, AuthScheme>>,
    pings: PingLocks,
    tokens: TokenCache,
    scopes: ScopePlans,
    realms: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Authenticator {
    /// Authentication over `transport`, with nothing learned yet.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            schemes: Mutex::default(),
            pings: PingLocks::default(),
            tokens: TokenCache::default(),
            scopes: ScopePlans::default(),
            realms: Mutex::default(),
        }
    }

    /// Plans multi-scope tokens for `repositories` of `origin` (see `scopes`).
    pub fn plan_scopes<'a>(
        &self,
        origin: &str,
        repositories: impl IntoIterator<Item = &'a str>,
        replace: bool,
    ) {
        self.scopes.plan(origin, repositories, replace);
    }

    /// Token realm origins the registry at `origin` has named so far.
    pub fn realm_origins(&self, origin: &str) -> Vec<String> {
        self.realms
            .lock()
            .ok()
            .and_then(|realms| realms.get(origin).map(|set| set.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Sends a registry request with credentials for `target`, answering a 401
    /// challenge once when new credentials could help.
    pub async fn authorized(
        &self,
        policy: &dyn AccessPolicy,
        target: &Target,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        auth: &Auth,
    ) -> Result<Sent, RegistryError> {
        let credential = self.credential(policy, target, auth, None, None).await?;
        if credential.header().is_some() {
            refuse_plain_http_credentials(policy, target, url, auth)?;
        }
        let sent = self
            .transport
            .send(Outgoing {
                permit_origin: &target.origin,
                method: method.clone(),
                url: url.clone(),
                accept,
                authorization: credential.header(),
                policy: Some(policy),
            })
            .await?;
        if sent.status() != StatusCode::UNAUTHORIZED
            || matches!(auth, Auth::Bearer(_))
            || sent.url.origin() != target.base.origin()
        {
            return Ok(sent);
        }
        // The resource's own challenge may name a scope or scheme the /v2/ one did not.
        let challenges = challenges_of(sent.response.headers());
        let Some((scheme, scope)) = self.usable_challenge(policy, target, &challenges)? else {
            return Ok(sent);
        };
        self.remember_scheme(&target.origin, &scheme);
        if matches!(credential, Credential::Token { batched: true, .. })
            && challenges.iter().any(|challenge| {
                challenge.scheme == "bearer"
                    && challenge.param("error") == Some("insufficient_scope")
            })
        {
            tracing::debug!(registry = %target.origin, repository = %target.repository, "batch token lacks the repository's scope; asking for its own");
            self.scopes
                .needs_own_token(&target.origin, &target.repository);
        }
        // The 401 holds one of the origin's request permits: release it before
        // fetching a token, whose realm may be on this very origin (Harbor's
        // `/service/token`, Quay's `/v2/auth`). Holding it, as many 401s as
        // permits would each wait for a permit none of them gives back.
        let unauthorized = sent.into_error(NotFoundMeans::Name).await;
        // A cached token the registry refused is renewed, once: requests
        // refused with the same token at once share the one renewal.
        let refused_token = match &credential {
            Credential::Token {
                header,
                from_cache: true,
                ..
            } => header.strip_prefix("Bearer "),
            _ => None,
        };
        let from_cache = refused_token.is_some();
        let retry_credential = self
            .credential(policy, target, auth, Some((scheme, scope)), refused_token)
            .await?;
        let worth_retrying = retry_credential.header().is_some()
            && (from_cache || retry_credential.header() != credential.header());
        if !worth_retrying {
            return Err(unauthorized);
        }
        refuse_plain_http_credentials(policy, target, url, auth)?;
        tracing::debug!(url = %url, "retrying after 401 with the resource's challenge");
        self.transport
            .send(Outgoing {
                permit_origin: &target.origin,
                method,
                url: url.clone(),
                accept,
                authorization: retry_credential.header(),
                policy: Some(policy),
            })
            .await
    }

    /// The credential to send to `target`: from `challenge` when given, else
    /// from the registry's `/v2/` challenge (pinged once per origin).
    async fn credential(
        &self,
        policy: &dyn AccessPolicy,
        target: &Target,
        auth: &Auth,
        challenge: Option<(AuthScheme, Option<String>)>,
        refused_token: Option<&str>,
    ) -> Result<Credential, RegistryError> {
        if let Auth::Bearer(token) = auth {
            return Ok(Credential::Given(format!("Bearer {token}")));
        }
        let (scheme, scope) = match challenge {
            Some(challenge) => challenge,
            None => (self.scheme(policy, target).await?, None),
        };
        match scheme {
            AuthScheme::Open => Ok(Credential::None),
            AuthScheme::Basic => Ok(match auth {
                Auth::Basic { username, password } => {
                    Credential::Basic(basic_header(username, password))
                }
                _ => Credential::None,
            }),
            AuthScheme::Bearer { realm, service } => {
                // Without a scope from the resource's own challenge, or when
                // it names just the repository's pull scope (a refused batch
                // token is renewed as a batch, once for all its repositories),
                // the repository's planned batch is asked for at once.
                let batch = match &scope {
                    Some(scope) if *scope != pull_scope(&target.repository) => None,
                    _ => self.scopes.batch_for(&target.origin, &target.repository),
                };
                if let Some(batch) = batch {
                    let request = TokenRequest {
                        realm: &realm,
                        service: service.as_deref(),
                        scope: &batch,
                    };
                    match self
                        .token(policy, target, &request, auth, refused_token)
                        .await
                    {
                        Ok((token, from_cache)) => {
                            return Ok(Credential::Token {
                                header: format!("Bearer {token}"),
                                from_cache,
                                batched: true,
                            })
                        }
                        // Busy or unreachable: asking per repository would not help.
                        Err(
                            error @ (RegistryError::Transport(_)
                            | RegistryError::TooManyRequests(_)
                            | RegistryError::NotAllowed(_)),
                        ) => return Err(error),
                        Err(error) => {
                            tracing::debug!(registry = %target.origin, "multi-scope token refused ({error}); asking per repository");
                            self.scopes.refused(&target.origin);
                        }
                    }
                }
                // Docker-Hub-like registries challenge /v2/ without a scope: compute it.
                let scope = scope.unwrap_or_else(|| pull_scope(&target.repository));
                let request = TokenRequest {
                    realm: &realm,
                    service: service.as_deref(),
                    scope: &scope,
                };
                let (token, from_cache) = self
                    .token(policy, target, &request, auth, refused_token)
                    .await?;
                Ok(Credential::Token {
                    header: format!("Bearer {token}"),
                    from_cache,
                    batched: false,
                })
            }
        }
    }

    /// The registry's auth scheme, from the cache or a `/v2/` ping.
    async fn scheme(
        &self,
        policy: &dyn AccessPolicy,
        target: &Target,
    ) -> Result<AuthScheme, RegistryError> {
        if let Some(scheme) = self.known_scheme(&target.origin) {
            return Ok(scheme);
        }
        // Concurrent first requests wait for one ping instead of racing.
        let ping = self.pings.for_origin(&target.origin);
        let _pinging = ping.lock().await;
        if let Some(scheme) = self.known_scheme(&target.origin) {
            return Ok(scheme);
        }
        let url = target.endpoint("v2/")?;
        let sent = self
            .transport
            .send(Outgoing {
                permit_origin: &target.origin,
                method: Method::GET,
                url,
                accept: None,
                authorization: None,
                policy: Some(policy),
            })
            .await?;
        let scheme = if sent.status().is_success() {
            AuthScheme::Open
        } else if sent.status() == StatusCode::UNAUTHORIZED {
            let challenges = challenges_of(sent.response.headers());
            match self.usable_challenge(policy, target, &challenges)? {
                // The /v2/ scope (if any) is for the ping, not for our repository.
                Some((scheme, _)) => scheme,
                None => {
                    return Err(RegistryError::Protocol(format!(
                        "{} answered 401 without a Basic or Bearer challenge",
                        sent.what()
                    )))
                }
            }
        } else if sent.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::Protocol(format!(
                "{} answered 404: not an OCI distribution registry",
                sent.what()
            )));
        } else {
            return Err(sent.into_error(NotFoundMeans::Name).await);
        };
        self.remember_scheme(&target.origin, &scheme);
        Ok(scheme)
    }

    fn known_scheme(&self, origin: &str) -> Option<AuthScheme> {
        self.schemes
            .lock()
            .ok()
            .and_then(|schemes| schemes.get(origin).cloned())
    }

    fn remember_scheme(&self, origin: &str, scheme: &AuthScheme) {
        if let Ok(mut schemes) = self.schemes.lock() {
            schemes.insert(origin.to_string(), scheme.clone());
        }
    }

    /// Picks the challenge to answer: Bearer (with a valid realm) before Basic.
    /// Records the realm (for display; it never widens the policy).
    fn usable_challenge(
        &self,
        policy: &dyn AccessPolicy,
        target: &Target,
        challenges: &[AuthChallenge],
    ) -> Result<Option<(AuthScheme, Option<String>)>, RegistryError> {
        if let Some(bearer) = challenges
            .iter()
            .find(|challenge| challenge.scheme == "bearer" && challenge.param("realm").is_some())
        {
            let realm_text = bearer.param("realm").unwrap_or_default();
            let realm = Url::parse(realm_text)
                .ok()
                .filter(|realm| {
                    matches!(realm.scheme(), "http" | "https") && realm.host_str().is_some()
                })
                .ok_or_else(|| {
                    RegistryError::Protocol(format!(
                        "{} names an invalid token realm {realm_text:?}",
                        target.origin
                    ))
                })?;
            self.learn_realm(policy, &target.origin, &realm);
            let scope = bearer
                .param("scope")
                .map(str::trim)
                .filter(|scope| !scope.is_empty())
                .map(str::to_string);
            return Ok(Some((
                AuthScheme::Bearer {
                    realm,
                    service: bearer.param("service").map(str::to_string),
                },
                scope,
            )));
        }
        if challenges
            .iter()
            .any(|challenge| challenge.scheme == "basic")
        {
            return Ok(Some((AuthScheme::Basic, None)));
        }
        Ok(None)
    }

    fn learn_realm(&self, policy: &dyn AccessPolicy, registry_origin: &str, realm: &Url) {
        let realm_origin = realm.origin().ascii_serialization();
        let is_new = self.realms.lock().is_ok_and(|mut realms| {
            realms
                .entry(registry_origin.to_string())
                .or_default()
                .insert(realm_origin.clone())
        });
        if is_new {
            tracing::debug!(registry = registry_origin, realm = %realm_origin, "learned token realm");
        }
        policy.realm_learned(registry_origin, &realm_origin);
    }

    /// A Bearer token for the request's scope, from the cache unless expired
    /// or it is the `refused` one (a registry may revoke a token before its
    /// announced expiry). Returns the token and whether it came from the cache.
    async fn token(
        &self,
        policy: &dyn AccessPolicy,
        target: &Target,
        request: &TokenRequest<'_>,
        auth: &Auth,
        refused: Option<&str>,
    ) -> Result<(String, bool), RegistryError> {
        let key = TokenKey {
            realm: request.realm.to_string(),
            service: request.service.unwrap_or_default().to_string(),
            scope: request.scope.to_string(),
            identity: credential_identity(auth),
        };
        let slot = self.tokens.slot(&key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            if refused != Some(token.token.as_str()) && token.renew_at > Instant::now() {
                return Ok((token.token.clone(), true));
            }
        }
        let mut url = request.realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = request.service {
                query.append_pair("service", service);
            }
            for single_scope in request.scope.split_whitespace() {
                query.append_pair("scope", single_scope);
            }
        }
        let authorization = match auth {
            Auth::Basic { username, password } => {
                // Checked here, not only when the challenge was taken: an
                // anonymous caller may have learned this realm first.
                refuse_plain_http_credentials(policy, target, request.realm, auth)?;
                Some(basic_header(username, password))
            }
            _ => None,
        };
        let realm_origin = request.realm.origin().ascii_serialization();
        tracing::debug!(realm = %realm_origin, scope = request.scope, registry = %target.origin, "fetching token");
        let sent = self
            .transport
            .send(Outgoing {
                permit_origin: &realm_origin,
                method: Method::GET,
                url,
                accept: Some("application/json"),
                authorization: authorization.as_deref(),
                // The realm was vetted when the challenge was taken; its
                // redirects never carry the credentials off its origin.
                policy: None,
            })
            .await?;
        if !sent.status().is_success() {
            let error = sent.into_error(NotFoundMeans::Name).await;
            return Err(match error {
                RegistryError::NameUnknown(message) | RegistryError::ManifestUnknown(message) => {
                    RegistryError::Protocol(format!("token server: {message}"))
                }
                other => other,
            });
        }
        let config = &self.transport.config;
        let body = sent.body(config.max_token_response_bytes).await?;
        let (token, usable_for) = parse_token_response(
            &body,
            config.default_token_lifetime,
            config.token_expiry_margin,
            &realm_origin,
        )?;
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: Instant::now() + usable_for,
        });
        Ok((token, false))
    }
}

/// Where to ask for a token and for what.
struct TokenRequest<'a> {
    realm: &'a Url,
    service: Option<&'a str>,
    scope: &'a str,
}

fn challenges_of(headers: &HeaderMap) -> Vec<AuthChallenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// Refuses to send `auth`'s credentials (or what they bought) to `url` over
/// plain http: never when the registry itself is https (a downgrade), and
/// to a host that is not loopback only when the user set `insecure = true`.
fn refuse_plain_http_credentials(
    policy: &dyn AccessPolicy,
    target: &Target,
    url: &Url,
    auth: &Auth,
) -> Result<(), RegistryError> {
    if matches!(auth, Auth::Anonymous) || url.scheme() != "http" {
        return Ok(());
    }
    let destination = url.origin().ascii_serialization();
    if target.base.scheme() == "https" {
        return Err(RegistryError::NotAllowed(format!(
            "registry {} sends credentials to plain-http {destination}; refusing to downgrade from https",
            target.origin
        )));
    }
    if is_loopback_url(url) || policy.allows_plain_http_credentials() {
        return Ok(());
    }
    Err(RegistryError::NotAllowed(format!(
        "refusing to send the credentials of registry {} over plain http to {destination} \
         (not a loopback host): use https, or set `insecure = true` in its [registries.NAME] section",
        target.origin
    )))
}

fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}
