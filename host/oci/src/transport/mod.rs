//! Transport: one HTTP request to a registry or token realm, with a bounded
//! number in flight per origin, `429` retries as `Retry-After` says, redirects
//! followed by hand (credentials never leave the origin a request starts at),
//! capped bodies and request counters. Knows nothing of auth or the protocol.

mod counters;
mod window;

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::Url;

pub use counters::{RateLimit, RequestCount, RequestCounters, RequestKind};
pub use window::{Signal, WindowLimits};

use window::{Window, WindowPermit};

use crate::errors::{error_from_response_body, NotFoundMeans};
use crate::headers::parse_retry_after;
use crate::{ClientConfig, RegistryError};

/// Cap on an error response body read to find its error code.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The HTTP side of a registry client: connection pool, per-origin limits, counters.
pub(crate) struct Transport {
    http: reqwest::Client,
    pub(crate) config: ClientConfig,
    windows: Mutex<HashMap<String, Arc<Window>>>,
    pub(crate) counters: Arc<RequestCounters>,
}

/// One request to send: what [`Transport::send`] retries and follows.
pub(crate) struct Outgoing<'a> {
    /// Origin whose concurrency limit the request counts against.
    pub permit_origin: &'a str,
    pub method: Method,
    pub url: Url,
    /// `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// `Authorization` header, sent only to the origin the request starts at.
    pub authorization: Option<&'a str>,
    /// The caller's allow-list, checked again at every redirect hop (a
    /// registry must not steer the host's requests to a host the caller may
    /// not reach); `None` for requests whose every hop is already vetted.
    pub policy: Option<&'a dyn crate::AccessPolicy>,
}

/// A response and the concurrency permit held until its body is read.
pub(crate) struct Sent {
    pub response: reqwest::Response,
    pub url: Url,
    method: Method,
    _permit: WindowPermit,
}

impl Sent {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// `METHOD URL`, for error messages.
    pub fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    }

    /// The body, refusing more than `cap` bytes.
    pub async fn body(self, cap: usize) -> Result<Vec<u8>, RegistryError> {
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

    /// The registry error this (unsuccessful) answer stands for.
    pub async fn into_error(self, not_found: NotFoundMeans) -> RegistryError {
        let status = self.status().as_u16();
        let what = self.what();
        let body = self.body(MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
        error_from_response_body(status, &body, &what, not_found)
    }
}

impl Transport {
    /// A transport with its own connection pool; it never follows redirects itself.
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
            http,
            config,
            windows: Mutex::default(),
            counters: Arc::new(RequestCounters::new()),
        })
    }

    /// Sends one request, retrying 429 answers as `Retry-After` says (bounded).
    pub async fn send(&self, request: Outgoing<'_>) -> Result<Sent, RegistryError> {
        let config = &self.config;
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
            self.counters
                .record_rate_limit(&sent.url.origin().ascii_serialization(), retry_after);
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
            let mut request = self.http.request(method.clone(), current.clone());
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
                    self.counters.record(&origin, None);
                    self.counters
                        .record_kind(RequestKind::of(&method, &current));
                    permit.observe(None, false);
                    let reason = if error.is_timeout() {
                        format!(
                            "timed out after {} s",
                            self.config.request_timeout.as_secs()
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
            self.counters.record(&origin, Some(status.as_u16()));
            self.counters
                .record_kind(RequestKind::of(&method, &current));
            permit.observe(
                Some(status.as_u16()),
                response.headers().contains_key(RETRY_AFTER),
            );
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
            if redirects >= self.config.max_redirects {
                return Err(RegistryError::Protocol(format!(
                    "{method} {current}: more than {} redirects",
                    self.config.max_redirects
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
            if let Some(policy) = outgoing.policy.filter(|policy| !policy.allows(&next)) {
                tracing::warn!(from = %current, to = %next, ?policy, "redirect off the allow-list refused");
                return Err(RegistryError::NotAllowed(format!(
                    "{method} {current}: redirect to {} refused: not on this caller's allow-list",
                    next.origin().ascii_serialization()
                )));
            }
            tracing::debug!(from = %current, to = %next, "following redirect");
            redirects += 1;
            current = next;
        }
    }

    async fn permit(&self, origin: &str) -> Result<WindowPermit, RegistryError> {
        let window = self.window(origin);
        // Bounded: a permit is held for one request (itself bounded by the
        // request timeout) and its body, so a wait of several request
        // timeouts means the origin is stuck, and the caller gets an error
        // rather than a scan that never ends.
        let patience = self.permit_patience();
        match tokio::time::timeout(patience, window.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(RegistryError::Transport(format!(
                "request limiter for {origin} closed"
            ))),
            Err(_) => Err(RegistryError::Transport(format!(
                "timed out after {} s waiting for a request slot of {origin}",
                patience.as_secs()
            ))),
        }
    }

    /// How long a request waits for a slot of its origin: four request timeouts.
    fn permit_patience(&self) -> std::time::Duration {
        self.config
            .request_timeout
            .saturating_mul(4)
            .max(std::time::Duration::from_secs(1))
    }

    /// The concurrency window of `origin`, created at its starting size.
    fn window(&self, origin: &str) -> Arc<Window> {
        let limits = || self.config.window_limits(origin);
        match self.windows.lock() {
            Ok(mut windows) => Arc::clone(
                windows
                    .entry(origin.to_string())
                    .or_insert_with(|| Window::new(limits())),
            ),
            Err(_) => Window::new(limits()),
        }
    }

    /// The current concurrency window of `origin` (its start before any request).
    pub fn window_limit(&self, origin: &str) -> usize {
        self.window(origin).limit()
    }
}

/// An error and its sources, e.g. `error sending request: connection refused`.
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
