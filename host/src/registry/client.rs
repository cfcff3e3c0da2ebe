//! The OCI distribution v2 client proper.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::error::Error as _;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::challenge::{parse_challenges, AuthChallenge};
use super::errors::{error_from_response_body, NotFoundMeans};
use super::headers::{next_link, parse_retry_after};
use super::manifest::{
    bare_media_type, first_image_entry, is_image_manifest_media_type, is_index_media_type,
    select_platform, ManifestDocument, MANIFEST_ACCEPT, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
use super::metrics::RequestCounters;
use super::policy::{AccessPolicy, AllowAll};
use super::tokens::{credential_identity, parse_token_response, CachedToken, TokenCache, TokenKey};
use super::{Auth, ClientConfig, Location, ManifestInfo, Platform, RegistryError};
use crate::reference;

/// Cap on an error response body read to find its error code.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Header carrying the manifest digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Async OCI distribution v2 client. Cheap to clone: clones share the HTTP
/// connection pool, token cache, challenge cache, concurrency limits and
/// counters. Each clone carries an [`AccessPolicy`] (see [`RegistryClient::with_policy`]).
#[derive(Clone)]
pub struct RegistryClient {
    shared: Arc<Shared>,
    policy: Arc<dyn AccessPolicy>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.shared.config)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

struct Shared {
    http: reqwest::Client,
    config: ClientConfig,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    schemes: Mutex<HashMap<String, AuthScheme>>,
    tokens: TokenCache,
    realms: Mutex<BTreeMap<String, BTreeSet<String>>>,
    counters: Arc<RequestCounters>,
}

/// How a registry origin wants to be authenticated, learned from `/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthScheme {
    Open,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// A checked location: base URL (origin, path `/`) and repository.
#[derive(Debug, Clone)]
struct Target {
    base: Url,
    origin: String,
    repository: String,
}

impl Target {
    fn endpoint(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|error| {
            RegistryError::Unsupported(format!(
                "cannot build URL {path:?} on {}: {error}",
                self.base
            ))
        })
    }

    fn display(&self) -> String {
        format!("{}/{}", self.origin, self.repository)
    }
}

/// One request to send: what `send` retries and `send_following_redirects` follows.
struct Outgoing<'a> {
    /// Origin whose concurrency limit the request counts against.
    permit_origin: &'a str,
    method: Method,
    url: Url,
    /// `Accept` header, if any.
    accept: Option<&'a str>,
    /// `Authorization` header, sent only to the origin the request starts at.
    authorization: Option<&'a str>,
}

/// A response and the concurrency permit held until its body is read.
struct Sent {
    response: reqwest::Response,
    url: Url,
    method: Method,
    _permit: OwnedSemaphorePermit,
}

impl Sent {
    fn status(&self) -> StatusCode {
        self.response.status()
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    }

    async fn body(self, cap: usize) -> Result<Vec<u8>, RegistryError> {
        let what = self.what();
        let mut response = self.response;
        if let Some(length) = response.content_length() {
            if length > cap as u64 {
                return Err(RegistryError::Protocol(format!(
                    "{what}: body of {length} bytes exceeds the {cap}-byte limit"
                )));
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| RegistryError::Transport(format!("{what}: {}", error_chain(&error))))?
        {
            if body.len() + chunk.len() > cap {
                return Err(RegistryError::Protocol(format!(
                    "{what}: body exceeds the {cap}-byte limit"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn into_error(self, not_found: NotFoundMeans) -> RegistryError {
        let status = self.status().as_u16();
        let what = self.what();
        let body = self.body(MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
        error_from_response_body(status, &body, &what, not_found)
    }
}

/// The `Authorization` value chosen for a request and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    None,
    Basic(String),
    Token { header: String, from_cache: bool },
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

/// A manifest fetched with GET, digest checked.
struct FetchedManifest {
    digest: String,
    media_type: String,
    document: ManifestDocument,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    created: Option<String>,
}

impl RegistryClient {
    /// A client with its own connection pool and caches; allows every registry
    /// until [`RegistryClient::with_policy`] narrows it.
    pub fn new(config: ClientConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            // Redirects are followed by hand so credentials never leave the registry origin.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|error| {
                RegistryError::Transport(format!(
                    "cannot build HTTP client: {}",
                    error_chain(&error)
                ))
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                config,
                semaphores: Mutex::default(),
                schemes: Mutex::default(),
                tokens: TokenCache::default(),
                realms: Mutex::default(),
                counters: Arc::new(RequestCounters::new()),
            }),
            policy: Arc::new(AllowAll),
        })
    }

    /// The same client (shared pool, caches, limits, counters) restricted by
    /// `policy`, e.g. one plugin instance's allow-list. The policy decides which
    /// registry origins a `Location` may name; token realms named by an
    /// allowed registry are contacted without asking it and reported through
    /// [`AccessPolicy::realm_learned`] (and [`RegistryClient::realm_origins`]).
    pub fn with_policy(&self, policy: Arc<dyn AccessPolicy>) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            policy,
        }
    }

    /// Configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Request counters by origin and status (shared by every clone).
    pub fn counters(&self) -> Arc<RequestCounters> {
        Arc::clone(&self.shared.counters)
    }

    /// Token realm origins the registry at `registry_url` has named so far
    /// (e.g. `["https://auth.docker.io"]`).
    pub fn realm_origins(&self, registry_url: &str) -> Vec<String> {
        let Ok(base) = parse_registry_url(registry_url) else {
            return Vec::new();
        };
        let origin = base.origin().ascii_serialization();
        self.shared
            .realms
            .lock()
            .ok()
            .and_then(|realms| realms.get(&origin).map(|set| set.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// All tags of the repository, every `Link: rel="next"` page followed.
    pub async fn list_tags(
        &self,
        location: &Location,
        auth: &Auth,
    ) -> Result<Vec<String>, RegistryError> {
        let target = self.target(location)?;
        let config = &self.shared.config;
        let mut url = target.endpoint(&format!("v2/{}/tags/list", target.repository))?;
        if let Some(page_size) = config.tag_page_size {
            url.query_pairs_mut()
                .append_pair("n", &page_size.to_string());
        }
        let mut tags = Vec::new();
        let mut visited = HashSet::new();
        let mut bytes_read = 0usize;
        loop {
            if visited.len() >= config.max_tag_pages {
                return Err(RegistryError::Protocol(format!(
                    "tag list of {} has more than {} pages",
                    target.display(),
                    config.max_tag_pages
                )));
            }
            if !visited.insert(url.to_string()) {
                return Err(RegistryError::Protocol(format!(
                    "tag list pagination of {} loops back to {url}",
                    target.display()
                )));
            }
            let sent = self
                .authorized(&target, Method::GET, &url, Some("application/json"), auth)
                .await?;
            if !sent.status().is_success() {
                return Err(sent.into_error(NotFoundMeans::Name).await);
            }
            let links: Vec<String> = sent
                .response
                .headers()
                .get_all(LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(str::to_string)
                .collect();
            let what = sent.what();
            let body = sent
                .body(config.max_tag_list_bytes.saturating_sub(bytes_read))
                .await?;
            bytes_read += body.len();
            let page: TagList = serde_json::from_slice(&body).map_err(|error| {
                RegistryError::Protocol(format!("{what}: invalid tag list JSON: {error}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = next_link(links.iter().map(String::as_str)) else {
                break;
            };
            let next_url = url.join(&next).map_err(|error| {
                RegistryError::Protocol(format!("{what}: invalid next link {next:?}: {error}"))
            })?;
            if next_url.origin() != target.base.origin() {
                return Err(RegistryError::Protocol(format!(
                    "{what}: next link {next:?} leaves the registry origin {}; not followed",
                    target.origin
                )));
            }
            url = next_url;
        }
        tracing::debug!(repository = %target.display(), count = tags.len(), "listed tags");
        Ok(tags)
    }

    /// Resolves `reference` (tag or digest) with a manifest HEAD. With a
    /// platform and an index, selects that platform's manifest (attestations
    /// skipped). `with_created` reads the creation date from the config blob
    /// (of the selected manifest, or the first image of an index when no
    /// platform is given).
    pub async fn resolve(
        &self,
        location: &Location,
        reference: &str,
        auth: &Auth,
        platform: Option<&Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryError> {
        let target = self.target(location)?;
        validate_manifest_reference(reference)?;
        let url = target.endpoint(&format!("v2/{}/manifests/{reference}", target.repository))?;
        let head = self
            .authorized(&target, Method::HEAD, &url, Some(MANIFEST_ACCEPT), auth)
            .await?;
        let mut fetched: Option<FetchedManifest> = None;
        let head_answer = if head.status().is_success() {
            let digest = head
                .header(DOCKER_CONTENT_DIGEST)
                .filter(|digest| reference::validate_digest(digest).is_ok());
            let media_type = head
                .header(CONTENT_TYPE.as_str())
                .map(|value| bare_media_type(&value))
                .filter(|media_type| is_known_manifest_type(media_type));
            digest.zip(media_type)
        } else {
            // HEAD answers carry no error body: the GET below tells NAME_UNKNOWN
            // from MANIFEST_UNKNOWN, and serves registries that refuse HEAD.
            tracing::debug!(status = head.status().as_u16(), url = %url, "manifest HEAD failed, trying GET");
            None
        };
        drop(head);
        let (digest, media_type) = match head_answer {
            Some(answer) => answer,
            None => {
                let manifest = self.fetch_manifest(&target, reference, auth).await?;
                let answer = (manifest.digest.clone(), manifest.media_type.clone());
                fetched = Some(manifest);
                answer
            }
        };

        let mut platform_digest = None;
        let mut image_digest = (!is_index_media_type(&media_type)).then(|| digest.clone());
        if is_index_media_type(&media_type) && (platform.is_some() || with_created) {
            let index = match fetched.take() {
                Some(manifest) => manifest,
                None => self.fetch_manifest(&target, &digest, auth).await?,
            };
            let entries = index.document.manifests.unwrap_or_default();
            match platform {
                Some(wanted) => {
                    let entry = select_platform(&entries, wanted).ok_or_else(|| {
                        RegistryError::ManifestUnknown(format!(
                            "{}:{reference} ({digest}) has no manifest for platform {wanted}",
                            target.display()
                        ))
                    })?;
                    platform_digest = Some(entry.digest.clone());
                    image_digest = Some(entry.digest.clone());
                }
                None => {
                    image_digest = first_image_entry(&entries).map(|entry| entry.digest.clone())
                }
            }
            if let Some(selected) = &image_digest {
                reference::validate_digest(selected).map_err(|error| {
                    RegistryError::Protocol(format!(
                        "index {digest} lists an invalid digest: {error}"
                    ))
                })?;
            }
        }

        let created = match (with_created, image_digest) {
            (false, _) => None,
            (true, None) => {
                tracing::debug!(digest = %digest, "index has no image manifest; no creation date");
                None
            }
            (true, Some(image_digest)) => {
                let manifest = match fetched.take() {
                    Some(manifest) if manifest.digest == image_digest => manifest,
                    _ => self.fetch_manifest(&target, &image_digest, auth).await?,
                };
                self.created_from_config(&target, &manifest, auth).await?
            }
        };
        Ok(ManifestInfo {
            digest,
            media_type,
            platform_digest,
            created,
        })
    }

    /// Checks the location against the policy and parses it.
    fn target(&self, location: &Location) -> Result<Target, RegistryError> {
        let base = parse_registry_url(&location.registry_url)?;
        if !self.policy.allows(&base) {
            return Err(RegistryError::NotAllowed(format!(
                "registry {} is not on this caller's allow-list",
                base.origin().ascii_serialization()
            )));
        }
        reference::validate_path(&location.repository).map_err(|error| {
            RegistryError::Unsupported(format!("invalid repository name: {error}"))
        })?;
        Ok(Target {
            origin: base.origin().ascii_serialization(),
            base,
            repository: location.repository.clone(),
        })
    }

    async fn created_from_config(
        &self,
        target: &Target,
        manifest: &FetchedManifest,
        auth: &Auth,
    ) -> Result<Option<String>, RegistryError> {
        if !is_image_manifest_media_type(&manifest.media_type) {
            tracing::debug!(media_type = %manifest.media_type, "not an image manifest; no creation date");
            return Ok(None);
        }
        let config = manifest.document.config.as_ref().ok_or_else(|| {
            RegistryError::Protocol(format!("image manifest {} has no config", manifest.digest))
        })?;
        reference::validate_digest(&config.digest).map_err(|error| {
            RegistryError::Protocol(format!(
                "manifest {} has an invalid config digest: {error}",
                manifest.digest
            ))
        })?;
        let url = target.endpoint(&format!("v2/{}/blobs/{}", target.repository, config.digest))?;
        let sent = self
            .authorized(target, Method::GET, &url, None, auth)
            .await?;
        if !sent.status().is_success() {
            return Err(sent.into_error(NotFoundMeans::Manifest).await);
        }
        let what = sent.what();
        let body = sent.body(self.shared.config.max_config_bytes).await?;
        if !digest_matches(&body, &config.digest) {
            return Err(RegistryError::Protocol(format!(
                "{what}: config blob does not hash to {}",
                config.digest
            )));
        }
        let parsed: ImageConfig = serde_json::from_slice(&body).map_err(|error| {
            RegistryError::Protocol(format!("{what}: invalid image config JSON: {error}"))
        })?;
        Ok(parsed.created)
    }

    /// GETs a manifest or index and checks its digest.
    async fn fetch_manifest(
        &self,
        target: &Target,
        reference: &str,
        auth: &Auth,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = target.endpoint(&format!("v2/{}/manifests/{reference}", target.repository))?;
        let sent = self
            .authorized(target, Method::GET, &url, Some(MANIFEST_ACCEPT), auth)
            .await?;
        if !sent.status().is_success() {
            return Err(sent.into_error(NotFoundMeans::Manifest).await);
        }
        let what = sent.what();
        let header_digest = sent.header(DOCKER_CONTENT_DIGEST);
        let content_type = sent
            .header(CONTENT_TYPE.as_str())
            .map(|value| bare_media_type(&value));
        let body = sent.body(self.shared.config.max_manifest_bytes).await?;
        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        let digest = if reference::validate_digest(reference).is_ok() {
            if !digest_matches(&body, reference) {
                return Err(RegistryError::Protocol(format!(
                    "{what}: manifest does not hash to {reference}"
                )));
            }
            reference.to_string()
        } else {
            match header_digest.filter(|digest| reference::validate_digest(digest).is_ok()) {
                Some(reported) if digest_matches(&body, &reported) => reported,
                Some(reported) => {
                    return Err(RegistryError::Protocol(format!(
                    "{what}: Docker-Content-Digest {reported} does not match the body ({computed})"
                )))
                }
                None => computed,
            }
        };
        let document: ManifestDocument = serde_json::from_slice(&body).map_err(|error| {
            RegistryError::Protocol(format!("{what}: invalid manifest JSON: {error}"))
        })?;
        let media_type = content_type
            .filter(|media_type| is_known_manifest_type(media_type))
            .or_else(|| document.effective_media_type().map(str::to_string))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "{what}: manifest has no recognisable media type"
                ))
            })?;
        Ok(FetchedManifest {
            digest,
            media_type,
            document,
        })
    }

    /// Sends a registry request with credentials for `target`, answering a 401
    /// challenge once when new credentials could help.
    async fn authorized(
        &self,
        target: &Target,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        auth: &Auth,
    ) -> Result<Sent, RegistryError> {
        let credential = self.credential(target, auth, None, false).await?;
        let sent = self
            .send(Outgoing {
                permit_origin: &target.origin,
                method: method.clone(),
                url: url.clone(),
                accept,
                authorization: credential.header(),
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
        let Some((scheme, scope)) = self.usable_challenge(target, &challenges, auth)? else {
            return Ok(sent);
        };
        self.remember_scheme(&target.origin, &scheme);
        let from_cache = matches!(
            credential,
            Credential::Token {
                from_cache: true,
                ..
            }
        );
        let retry_credential = self
            .credential(target, auth, Some((scheme, scope)), from_cache)
            .await?;
        let worth_retrying = retry_credential.header().is_some()
            && (from_cache || retry_credential.header() != credential.header());
        if !worth_retrying {
            return Ok(sent);
        }
        drop(sent);
        tracing::debug!(url = %url, "retrying after 401 with the resource's challenge");
        self.send(Outgoing {
            permit_origin: &target.origin,
            method,
            url: url.clone(),
            accept,
            authorization: retry_credential.header(),
        })
        .await
    }

    /// The credential to send to `target`: from `challenge` when given, else
    /// from the registry's `/v2/` challenge (pinged once per origin).
    async fn credential(
        &self,
        target: &Target,
        auth: &Auth,
        challenge: Option<(AuthScheme, Option<String>)>,
        refresh_token: bool,
    ) -> Result<Credential, RegistryError> {
        if let Auth::Bearer(token) = auth {
            return Ok(Credential::Given(format!("Bearer {token}")));
        }
        let (scheme, scope) = match challenge {
            Some(challenge) => challenge,
            None => (self.scheme(target, auth).await?, None),
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
                // Docker-Hub-like registries challenge /v2/ without a scope: compute it.
                let scope =
                    scope.unwrap_or_else(|| format!("repository:{}:pull", target.repository));
                let (token, from_cache) = self
                    .token(
                        target,
                        &realm,
                        service.as_deref(),
                        &scope,
                        auth,
                        refresh_token,
                    )
                    .await?;
                Ok(Credential::Token {
                    header: format!("Bearer {token}"),
                    from_cache,
                })
            }
        }
    }

    /// The registry's auth scheme, from the cache or a `/v2/` ping.
    async fn scheme(&self, target: &Target, auth: &Auth) -> Result<AuthScheme, RegistryError> {
        if let Some(scheme) = self
            .shared
            .schemes
            .lock()
            .ok()
            .and_then(|schemes| schemes.get(&target.origin).cloned())
        {
            return Ok(scheme);
        }
        let url = target.endpoint("v2/")?;
        let sent = self
            .send(Outgoing {
                permit_origin: &target.origin,
                method: Method::GET,
                url,
                accept: None,
                authorization: None,
            })
            .await?;
        let scheme = if sent.status().is_success() {
            AuthScheme::Open
        } else if sent.status() == StatusCode::UNAUTHORIZED {
            let challenges = challenges_of(sent.response.headers());
            match self.usable_challenge(target, &challenges, auth)? {
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

    fn remember_scheme(&self, origin: &str, scheme: &AuthScheme) {
        if let Ok(mut schemes) = self.shared.schemes.lock() {
            schemes.insert(origin.to_string(), scheme.clone());
        }
    }

    /// Picks the challenge to answer: Bearer (with a valid realm) before Basic.
    /// Records the realm so callers can allow it.
    fn usable_challenge(
        &self,
        target: &Target,
        challenges: &[AuthChallenge],
        auth: &Auth,
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
            if target.base.scheme() == "https"
                && realm.scheme() == "http"
                && matches!(auth, Auth::Basic { .. })
            {
                return Err(RegistryError::Protocol(format!(
                    "{} names a plain-http token realm {realm}; refusing to send credentials over it",
                    target.origin
                )));
            }
            self.learn_realm(&target.origin, &realm);
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

    fn learn_realm(&self, registry_origin: &str, realm: &Url) {
        let realm_origin = realm.origin().ascii_serialization();
        let is_new = self.shared.realms.lock().is_ok_and(|mut realms| {
            realms
                .entry(registry_origin.to_string())
                .or_default()
                .insert(realm_origin.clone())
        });
        if is_new {
            tracing::debug!(registry = registry_origin, realm = %realm_origin, "learned token realm");
        }
        self.policy.realm_learned(registry_origin, &realm_origin);
    }

    /// A Bearer token for `scope`, from the cache unless `refresh` or expired.
    /// Returns the token and whether it came from the cache.
    async fn token(
        &self,
        target: &Target,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
        auth: &Auth,
        refresh: bool,
    ) -> Result<(String, bool), RegistryError> {
        let key = TokenKey {
            realm: realm.to_string(),
            service: service.unwrap_or_default().to_string(),
            scope: scope.to_string(),
            identity: credential_identity(auth),
        };
        let slot = self.shared.tokens.slot(&key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            if !refresh && token.renew_at > Instant::now() {
                return Ok((token.token.clone(), true));
            }
        }
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for single_scope in scope.split_whitespace() {
                query.append_pair("scope", single_scope);
            }
        }
        let authorization = match auth {
            Auth::Basic { username, password } => Some(basic_header(username, password)),
            _ => None,
        };
        let realm_origin = realm.origin().ascii_serialization();
        tracing::debug!(realm = %realm_origin, scope, registry = %target.origin, "fetching token");
        let sent = self
            .send(Outgoing {
                permit_origin: &realm_origin,
                method: Method::GET,
                url,
                accept: Some("application/json"),
                authorization: authorization.as_deref(),
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
        let body = sent
            .body(self.shared.config.max_token_response_bytes)
            .await?;
        let (token, usable_for) = parse_token_response(
            &body,
            self.shared.config.default_token_lifetime,
            self.shared.config.token_expiry_margin,
            &realm_origin,
        )?;
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: Instant::now() + usable_for,
        });
        Ok((token, false))
    }

    /// Sends one request, retrying 429 answers as `Retry-After` says (bounded).
    async fn send(&self, request: Outgoing<'_>) -> Result<Sent, RegistryError> {
        let config = &self.shared.config;
        let mut retries = 0;
        loop {
            let sent = self.send_following_redirects(&request).await?;
            if sent.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(sent);
            }
            let retry_after = sent
                .header(RETRY_AFTER.as_str())
                .and_then(|value| parse_retry_after(&value, SystemTime::now()));
            let backoff = config
                .initial_backoff
                .saturating_mul(2u32.saturating_pow(retries))
                .min(config.max_retry_wait);
            let wait = retry_after.unwrap_or(backoff);
            let give_up_because = if retries >= config.max_retries {
                Some(format!("after {retries} retries"))
            } else if wait > config.max_retry_wait {
                Some(format!(
                    "Retry-After of {} s exceeds the {} s limit",
                    wait.as_secs(),
                    config.max_retry_wait.as_secs()
                ))
            } else {
                None
            };
            if let Some(reason) = give_up_because {
                let what = sent.what();
                return Err(match sent.into_error(NotFoundMeans::Name).await {
                    RegistryError::TooManyRequests(message) => {
                        RegistryError::TooManyRequests(format!("{message} ({reason})"))
                    }
                    _ => RegistryError::TooManyRequests(format!("{what} answered 429 ({reason})")),
                });
            }
            drop(sent);
            tracing::debug!(url = %request.url, wait_ms = wait.as_millis() as u64, "429, waiting before retry");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// Sends one request and follows redirects by hand: credentials only go
    /// to the origin the request started at, never to a redirect target
    /// elsewhere, and never downgraded from https to http.
    async fn send_following_redirects(
        &self,
        outgoing: &Outgoing<'_>,
    ) -> Result<Sent, RegistryError> {
        let method = outgoing.method.clone();
        let start_origin = outgoing.url.origin();
        let mut current = outgoing.url.clone();
        let mut redirects = 0;
        loop {
            let permit = self.permit(outgoing.permit_origin).await?;
            let mut request = self.shared.http.request(method.clone(), current.clone());
            if let Some(accept) = outgoing.accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(authorization) = outgoing
                .authorization
                .filter(|_| current.origin() == start_origin)
            {
                request = request.header(AUTHORIZATION, authorization);
            }
            let origin = current.origin().ascii_serialization();
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    self.shared.counters.record(&origin, None);
                    let reason = if error.is_timeout() {
                        format!(
                            "timed out after {} s",
                            self.shared.config.request_timeout.as_secs()
                        )
                    } else {
                        error_chain(&error)
                    };
                    return Err(RegistryError::Transport(format!(
                        "{method} {current}: {reason}"
                    )));
                }
            };
            let status = response.status();
            self.shared.counters.record(&origin, Some(status.as_u16()));
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let (true, Some(location)) = (status.is_redirection(), location) else {
                return Ok(Sent {
                    response,
                    url: current,
                    method,
                    _permit: permit,
                });
            };
            if redirects >= self.shared.config.max_redirects {
                return Err(RegistryError::Protocol(format!(
                    "{method} {current}: more than {} redirects",
                    self.shared.config.max_redirects
                )));
            }
            let next = current.join(&location).map_err(|error| {
                RegistryError::Protocol(format!(
                    "{method} {current}: invalid redirect {location:?}: {error}"
                ))
            })?;
            if !matches!(next.scheme(), "http" | "https")
                || (current.scheme() == "https" && next.scheme() == "http")
            {
                return Err(RegistryError::Protocol(format!(
                    "{method} {current}: refusing redirect to {next}"
                )));
            }
            tracing::debug!(from = %current, to = %next, "following redirect");
            redirects += 1;
            current = next;
        }
    }

    async fn permit(&self, origin: &str) -> Result<OwnedSemaphorePermit, RegistryError> {
        let limit = self
            .shared
            .config
            .max_concurrent_requests_per_registry
            .max(1);
        let semaphore = self
            .shared
            .semaphores
            .lock()
            .map(|mut semaphores| {
                Arc::clone(
                    semaphores
                        .entry(origin.to_string())
                        .or_insert_with(|| Arc::new(Semaphore::new(limit))),
                )
            })
            .unwrap_or_else(|_| Arc::new(Semaphore::new(limit)));
        semaphore
            .acquire_owned()
            .await
            .map_err(|_| RegistryError::Transport(format!("request limiter for {origin} closed")))
    }
}

/// Parses a registry base URL: `http://` only when written, `https://`
/// otherwise; a trailing `/v2` is tolerated; the result has path `/`.
fn parse_registry_url(registry_url: &str) -> Result<Url, RegistryError> {
    let raw = registry_url.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|error| {
        RegistryError::Unsupported(format!("invalid registry URL {raw:?}: {error}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} must be an http or https URL with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {} must not contain credentials; pass them as auth",
            url.origin().ascii_serialization()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} must not have a query or fragment"
        )));
    }
    let path = url.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/v2") {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} has path {path:?}; give the registry's base URL"
        )));
    }
    url.set_path("/");
    Ok(url)
}

fn validate_manifest_reference(reference: &str) -> Result<(), RegistryError> {
    let valid = if reference.contains(':') {
        reference::validate_digest(reference).map_err(|error| error.to_string())
    } else {
        reference::validate_tag(reference).map_err(|error| error.to_string())
    };
    valid.map_err(|reason| RegistryError::Unsupported(format!("invalid tag or digest: {reason}")))
}

fn is_known_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_TYPE_DOCKER_MANIFEST
            | MEDIA_TYPE_DOCKER_MANIFEST_LIST
            | MEDIA_TYPE_OCI_INDEX
            | MEDIA_TYPE_OCI_MANIFEST
    )
}

fn challenges_of(headers: &HeaderMap) -> Vec<AuthChallenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Whether `body` hashes to `digest` (`sha256:`, `sha384:` or `sha512:`).
fn digest_matches(body: &[u8], digest: &str) -> bool {
    let Some((algorithm, expected)) = digest.split_once(':') else {
        return false;
    };
    let actual = match algorithm {
        "sha256" => hex::encode(Sha256::digest(body)),
        "sha384" => hex::encode(Sha384::digest(body)),
        "sha512" => hex::encode(Sha512::digest(body)),
        _ => return false,
    };
    actual == expected
}

/// An error and its sources, e.g. `error sending request: connection refused`.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
