//! Raw HTTP through the host, limited to the instance's allowed hosts;
//! redirects are not followed. Available to registry providers and triggers.

use std::fmt;

#[cfg(feature = "registry")]
use crowsnest_plugin_world_registry::crowsnest::plugin::http_client as wit_http;
#[cfg(all(feature = "trigger", not(feature = "registry")))]
use crowsnest_plugin_world_trigger::crowsnest::plugin::http_client as wit_http;

const NO_HOST: &str = "no crowsnest host outside wasm: HTTP is only available to the component";

/// An HTTP request, built with [`Request::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `HEAD`, ...
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
    /// Per-request timeout; the host caps it at its own maximum.
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds several headers.
    pub fn headers(mut self, headers: impl IntoIterator<Item = (String, String)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and, unless already given, `Content-Type: application/json`.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        if !self.has_header("content-type") {
            self.headers
                .push(("Content-Type".to_string(), "application/json".to_string()));
        }
        self.body = Some(value.to_string().into_bytes());
        self
    }

    /// Sets an `application/x-www-form-urlencoded` body from `fields`, each
    /// name and value percent-encoded (OAuth token endpoints take this form).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        use crate::encoding::percent_encode;
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
        self.body = Some(body.into_bytes());
        self
    }

    /// Sets the timeout.
    pub fn timeout_ms(mut self, timeout_ms: Option<u32>) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Whether a header of that name (case-insensitive) is set.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case(name))
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, HttpError> {
        send(self)
    }
}

/// An HTTP response; the body is capped by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| HttpError::InvalidResponse(format!("body is not JSON: {err}")))
    }

    /// `self` when 2xx, else [`HttpError::Status`] naming the status.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            return Ok(self);
        }
        let mut excerpt = self.text();
        if excerpt.len() > 200 {
            let mut cut = 200;
            while !excerpt.is_char_boundary(cut) {
                cut -= 1;
            }
            excerpt.truncate(cut);
        }
        Err(HttpError::Status {
            status: self.status,
            body: excerpt,
        })
    }
}

/// Why a request did not produce a usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL's host is not on this plugin instance's allow-list.
    NotAllowed(String),
    /// Malformed method, URL or header.
    InvalidRequest(String),
    /// No answer in time.
    Timeout(String),
    /// Connection, TLS or protocol failure.
    Transport(String),
    /// Response body over the host's cap.
    TooLarge(String),
    /// The server answered with a non-2xx status (see [`Response::error_for_status`]).
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The response could not be read as expected (e.g. not JSON).
    InvalidResponse(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed(detail) => write!(f, "host not allowed: {detail}"),
            Self::InvalidRequest(detail) => write!(f, "invalid request: {detail}"),
            Self::Timeout(detail) => write!(f, "timed out: {detail}"),
            Self::Transport(detail) => write!(f, "transport error: {detail}"),
            Self::TooLarge(detail) => write!(f, "response too large: {detail}"),
            Self::Status { status, body } if body.is_empty() => write!(f, "HTTP status {status}"),
            Self::Status { status, body } => write!(f, "HTTP status {status}: {body}"),
            Self::InvalidResponse(detail) => write!(f, "invalid response: {detail}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends `request` through the host. Outside wasm (native unit tests) there
/// is no host and every request fails with [`HttpError::Transport`].
pub fn send(request: Request) -> Result<Response, HttpError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(HttpError::Transport(NO_HOST.to_string()));
    }
    let request = wit_http::Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
        timeout_ms: request.timeout_ms,
    };
    match wit_http::send(&request) {
        Ok(response) => Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }),
        Err(wit_http::HttpError::NotAllowed(detail)) => Err(HttpError::NotAllowed(detail)),
        Err(wit_http::HttpError::InvalidRequest(detail)) => Err(HttpError::InvalidRequest(detail)),
        Err(wit_http::HttpError::Timeout(detail)) => Err(HttpError::Timeout(detail)),
        Err(wit_http::HttpError::Transport(detail)) => Err(HttpError::Transport(detail)),
        Err(wit_http::HttpError::TooLarge(detail)) => Err(HttpError::TooLarge(detail)),
    }
}

/// POSTs `body` as JSON to `url` and requires a 2xx answer.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, HttpError> {
    Request::post(url).json(body).send()?.error_for_status()
}
