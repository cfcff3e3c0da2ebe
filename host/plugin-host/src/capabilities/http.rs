//! `http-client`: raw HTTP for vendor APIs and webhooks, only to the hosts on
//! the instance's allow-list, never following redirects (one could leave the
//! allow-list), with a capped body and a capped timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crowsnest_oci::{AccessPolicy, HostAllowList};

use super::error_chain;
use crate::bindings::registry::crowsnest::plugin::http_client;
use crate::limits::SandboxLimits;
use crate::HostState;

/// The HTTP capability of one plugin instance.
#[derive(Clone)]
pub struct HttpCapability {
    /// Where it may go (token realms its registry names are not added).
    allow: Arc<HostAllowList>,
    /// The shared HTTP client; it must not follow redirects.
    client: reqwest::Client,
}

impl http_client::Host for HostState {
    async fn send(
        &mut self,
        req: http_client::Request,
    ) -> Result<http_client::Response, http_client::HttpError> {
        let Some(http) = self.capabilities.http.clone() else {
            return Err(http_client::HttpError::NotAllowed(
                "this plugin has no network access".into(),
            ));
        };
        let started = Instant::now();
        let result = http.send(&self.label, self.sandbox(), req).await;
        self.clock.add_host_time(started.elapsed());
        result
    }
}

impl HttpCapability {
    /// A capability reaching the hosts of `allow` through `client`.
    pub fn new(allow: Arc<HostAllowList>, client: reqwest::Client) -> Self {
        Self { allow, client }
    }

    /// The hosts this capability may reach.
    pub fn allow_list(&self) -> &Arc<HostAllowList> {
        &self.allow
    }

    /// Sends one request of the plugin labelled `label`, as the guest's
    /// `http-client.send` does: refused unless its host is on the allow-list.
    pub async fn send(
        &self,
        label: &str,
        sandbox: &SandboxLimits,
        req: http_client::Request,
    ) -> Result<http_client::Response, http_client::HttpError> {
        use http_client::HttpError;
        let url = url::Url::parse(&req.url)
            .map_err(|err| HttpError::InvalidRequest(format!("bad URL `{}`: {err}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        if !self.allow.allows(&url) {
            tracing::warn!(plugin = label, url = %redact(&url), "plugin HTTP request refused: host not allowed");
            return Err(HttpError::NotAllowed(format!(
                "host `{}` is not on this plugin's allow-list",
                url.host_str().unwrap_or_default()
            )));
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("bad method `{}`", req.method)))?;
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(sandbox.http_timeout)
            .min(sandbox.http_timeout);
        let mut builder = self.client.request(method, url.clone()).timeout(timeout);
        for (name, value) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name `{name}`")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|err| {
            if err.is_timeout() {
                HttpError::Timeout(format!(
                    "no answer from {} within {timeout:?}",
                    redact(&url)
                ))
            } else {
                // reqwest's own message quotes the whole URL, query (often a token) included.
                HttpError::Transport(format!(
                    "{}: {}",
                    redact(&url),
                    error_chain(&err.without_url())
                ))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let body = read_capped(response, sandbox.http_max_body)
            .await
            .map_err(|err| match err {
                CappedReadError::TooLarge(cap) => {
                    HttpError::TooLarge(format!("response body over {cap} bytes"))
                }
                CappedReadError::Transport(msg) => HttpError::Transport(msg),
            })?;
        Ok(http_client::Response {
            status,
            headers,
            body,
        })
    }
}

/// Why a capped body read failed.
pub enum CappedReadError {
    /// Over the cap (bytes).
    TooLarge(usize),
    /// The connection failed mid-body.
    Transport(String),
}

/// Read a response body, refusing more than `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, CappedReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(CappedReadError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| CappedReadError::Transport(error_chain(&err)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(CappedReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL without credentials or query, safe to log.
fn redact(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}
