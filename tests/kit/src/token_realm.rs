//! A same-origin token realm in front of the real token-auth registry, as
//! Harbor (`/service/token`) and Quay (`/v2/auth`) serve it: the proxy
//! forwards registry requests to the registry of `scripts/registries.sh`,
//! rewrites its `WWW-Authenticate` realm to its own `/service/token`, and
//! answers token requests by asking the real token server. It can make the
//! tokens it hands out short-lived (a registry rejecting a token once it
//! expired, answering `401` with `error="invalid_token"` as distribution
//! does), slow every repository request down, and counts token requests,
//! expired-token rejections and the most requests in flight at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};

use crate::faults::forward;
use crate::registry::{http_url, TOKEN_SERVICE};

/// How long the tokens the proxy hands out live.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetime {
    /// The `expires_in` the token answer announces.
    pub announced_secs: u64,
    /// Age from which the registry side rejects a token (may be shorter
    /// than announced: a revoked token, a clock skew).
    pub rejected_after: Duration,
}

/// What the proxy counted.
#[derive(Debug, Default)]
struct Counters {
    token_requests: AtomicUsize,
    expired_rejections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct State {
    registry: String,
    token_server: String,
    /// `http://127.0.0.1:PORT/service/token`.
    realm: String,
    lifetime: TokenLifetime,
    delay: Duration,
    issued: Mutex<HashMap<String, Instant>>,
    /// Tokens refused from now on (see [`TokenRealmProxy::revoke_issued`]).
    revoked: Mutex<std::collections::HashSet<String>>,
    counters: Counters,
    http: reqwest::Client,
}

/// The proxy; stops on drop.
pub struct TokenRealmProxy {
    /// `127.0.0.1:PORT` it listens on: the image domain and the realm's origin.
    pub address: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenRealmProxy {
    /// Starts in front of `registry` (`host:port`, token auth) whose tokens
    /// `token_server` (`http://host:port`) issues; every repository request
    /// waits `delay` first.
    pub async fn start(
        registry: &str,
        token_server: &str,
        lifetime: TokenLifetime,
        delay: Duration,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind token realm proxy");
        let address = listener.local_addr().expect("token realm proxy address");
        let state = Arc::new(State {
            registry: http_url(registry),
            token_server: token_server.trim_end_matches('/').to_owned(),
            realm: format!("http://{address}/service/token"),
            lifetime,
            delay,
            issued: Mutex::default(),
            revoked: Mutex::default(),
            counters: Counters::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let state = shared.clone();
            async move {
                let _in_flight = InFlight::enter(&state.counters);
                if request.uri().path() == "/service/token" {
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    let authorization = request.headers().get("authorization").cloned();
                    issue_token(&state, &query, authorization).await
                } else {
                    to_registry(&state, request).await
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            state,
            task,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// Refuses every token issued so far, as a registry does after a key
    /// rotation (clients hold them as valid for their announced lifetime).
    pub fn revoke_issued(&self) {
        let issued: Vec<String> = self
            .state
            .issued
            .lock()
            .expect("issued tokens")
            .keys()
            .cloned()
            .collect();
        self.state
            .revoked
            .lock()
            .expect("revoked tokens")
            .extend(issued);
    }

    /// Token requests answered so far.
    pub fn token_requests(&self) -> usize {
        self.state.counters.token_requests.load(Ordering::SeqCst)
    }

    /// Requests rejected with `401 invalid_token` because their token expired.
    pub fn expired_rejections(&self) -> usize {
        self.state
            .counters
            .expired_rejections
            .load(Ordering::SeqCst)
    }

    /// The most requests (registry and token) it had in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.counters.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for TokenRealmProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asks the real token server and hands its token out with the proxy's lifetime.
async fn issue_token(
    state: &State,
    query: &str,
    authorization: Option<HeaderValue>,
) -> Response<Body> {
    state.counters.token_requests.fetch_add(1, Ordering::SeqCst);
    let mut outgoing = state
        .http
        .get(format!("{}/token?{query}", state.token_server));
    if let Some(authorization) = authorization {
        outgoing = outgoing.header("authorization", authorization);
    }
    let answer = outgoing.send().await.expect("the token server answers");
    let status = answer.status();
    let mut body: serde_json::Value = answer.json().await.expect("token server JSON");
    if status.is_success() {
        let token = body["token"].as_str().expect("a token").to_owned();
        state
            .issued
            .lock()
            .expect("issued tokens")
            .insert(token, Instant::now());
        body["expires_in"] = state.lifetime.announced_secs.into();
    }
    Response::builder()
        .status(status.as_u16())
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("token response")
}

/// Rejects an expired token as the registry would, else forwards (after
/// the delay) with the realm rewritten to the proxy's own.
async fn to_registry(state: &State, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let repository = repository_of(&path);
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let expired = bearer.is_some_and(|token| {
        state
            .issued
            .lock()
            .expect("issued tokens")
            .get(&token)
            .is_some_and(|issued| issued.elapsed() >= state.lifetime.rejected_after)
            || state
                .revoked
                .lock()
                .expect("revoked tokens")
                .contains(&token)
    });
    if let (true, Some(repository)) = (expired, &repository) {
        state
            .counters
            .expired_rejections
            .fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/json")
            .header(
                "www-authenticate",
                format!(
                    r#"Bearer realm="{}",service="{TOKEN_SERVICE}",scope="repository:{repository}:pull",error="invalid_token""#,
                    state.realm
                ),
            )
            .body(Body::from(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":"token expired"}]}"#,
            ))
            .expect("401 response");
    }
    if repository.is_some() {
        tokio::time::sleep(state.delay).await;
    }
    let mut response = forward(&state.http, &state.registry, request).await;
    let upstream_realm = format!("{}/token", state.token_server);
    if let Some(challenge) = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.replace(&upstream_realm, &state.realm))
    {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_str(&challenge).expect("challenge header"),
        );
    }
    response
}

/// `REPOSITORY` of `/v2/REPOSITORY/{manifests,tags,blobs}/…`.
fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/tags/", "/blobs/"]
        .iter()
        .find_map(|marker| rest.split_once(marker).map(|(name, _)| name.to_owned()))
}
