//! A loopback HTTP server playing one service ([`Service`]): it records every
//! request, checks it the way the service would, and answers as the service
//! does. A test scripts [`Fault`]s (the service failing, or rate-limiting)
//! that the next deliveries get instead of the success answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Largest request body an emulator reads.
const MAX_BODY: usize = 1 << 20;

/// One request as an emulator received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, `PUT`, …
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The problems of a JSON request: `Content-Type` not JSON, or a body that is not an object.
    pub fn json_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("application/json"))
        {
            problems.push(format!(
                "Content-Type is {:?}, not application/json",
                self.header("content-type")
            ));
        }
        if !self.json().is_object() {
            problems.push("the body is not a JSON object".into());
        }
        problems
    }
}

/// `method` and `path` as expected, else the problem.
pub fn expect_route(request: &Received, method: &str, path: &str) -> Vec<String> {
    if request.method == method && request.path == path {
        Vec::new()
    } else {
        vec![format!(
            "{} {} instead of {method} {path}",
            request.method, request.path
        )]
    }
}

/// Problems with the string at `pointer` of `body`: missing, not a string, or empty.
pub fn expect_text(body: &Value, pointer: &str) -> Vec<String> {
    match body.pointer(pointer).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => Vec::new(),
        _ => vec![format!("`{pointer}` is missing, empty or not a string")],
    }
}

/// The value at `pointer` is `expected`, else the problem.
pub fn expect_value(body: &Value, pointer: &str, expected: &Value) -> Vec<String> {
    match body.pointer(pointer) {
        Some(found) if found == expected => Vec::new(),
        found => vec![format!("`{pointer}` is {found:?}, expected {expected}")],
    }
}

/// The header `name` has the value `expected`, else the problem.
pub fn expect_header(request: &Received, name: &str, expected: &str) -> Vec<String> {
    match request.header(name) {
        Some(found) if found == expected => Vec::new(),
        found => vec![format!("header {name} is {found:?}, not the expected one")],
    }
}

/// The string fields `keys` of a JSON body, one a line (a missing one empty):
/// the message a delivery carries, e.g. `["title", "message"]`.
pub fn text_fields(request: &Received, keys: &[&str]) -> String {
    let body = request.json();
    keys.iter()
        .map(|key| body[*key].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// An answer without a body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// With one more header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A service's behaviour: what it accepts and how it answers.
pub trait Service: Send + Sync + 'static {
    /// Whether `request` delivers a message (scripted faults apply to
    /// these; a login or a room join is not one).
    fn is_delivery(&self, _request: &Received) -> bool {
        true
    }

    /// What is wrong with `request` for this service (method, path, headers,
    /// body shape, credentials); empty when nothing is.
    fn check(&self, request: &Received) -> Vec<String>;

    /// The answer to a good request.
    fn accept(&self, request: &Received) -> Answer;

    /// The answer to a bad one.
    fn reject(&self, problems: &[String]) -> Answer;

    /// The service failing (5xx).
    fn fail(&self) -> Answer;

    /// The service's rate-limit answer, asking to wait `wait`.
    fn rate_limit(&self, wait: Duration) -> Answer;

    /// The message text a delivery carries, as the service would show it.
    fn text(&self, request: &Received) -> String;

    /// Whether the rate-limit answer says how long to wait (so a client can
    /// honour it), or only that it is limited (a client backs off).
    fn says_how_long(&self) -> bool {
        true
    }
}

/// What the next deliveries get instead of the success answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service fails (its 5xx answer).
    Fail,
    /// The service rate-limits, asking to wait this long.
    RateLimit(Duration),
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    problems: Vec<String>,
    faults: VecDeque<Fault>,
}

struct Shared {
    service: Box<dyn Service>,
    log: Mutex<Log>,
}

/// A running emulator; stopped on drop.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl Emulator {
    /// Starts `service` on a free loopback port, on the current runtime.
    pub async fn start(service: impl Service) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an emulator port");
        let address = listener.local_addr().expect("emulator address");
        let shared = Arc::new(Shared {
            service: Box::new(service),
            log: Mutex::default(),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let signal = Arc::clone(&shutdown);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.notified().await })
                .await;
        });
        Self {
            base: format!("http://{address}"),
            shared,
            server: Mutex::new(Some(server)),
            shutdown,
        }
    }

    /// Scripts `faults` for the next deliveries, in order.
    pub fn fault(&self, faults: &[Fault]) {
        self.log().faults.extend(faults.iter().copied());
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log().received.clone()
    }

    /// The deliveries received so far (requests that carry a message).
    pub fn deliveries(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|request| self.shared.service.is_delivery(request))
            .collect()
    }

    /// The message text of each delivery so far.
    pub fn texts(&self) -> Vec<String> {
        self.deliveries()
            .iter()
            .map(|request| self.shared.service.text(request))
            .collect()
    }

    /// Every problem found in a request so far.
    pub fn problems(&self) -> Vec<String> {
        self.log().problems.clone()
    }

    /// Forgets what was received (scripted faults stay).
    pub fn clear(&self) {
        let mut log = self.log();
        log.received.clear();
        log.problems.clear();
    }

    /// The service this emulator plays.
    pub fn service(&self) -> &dyn Service {
        self.shared.service.as_ref()
    }

    /// Stops answering: the listener and every kept-alive connection are
    /// closed, so clients are refused from now on.
    pub async fn stop(&self) {
        self.shutdown.notify_one();
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(server) = server {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let server = self
            .server
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(server) = server {
            server.abort();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
        body,
        at: Instant::now(),
    };
    let service = &shared.service;
    let problems = service.check(&received);
    let answer = {
        let mut log = shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.received.push(received.clone());
        if !problems.is_empty() {
            log.problems.extend(
                problems
                    .iter()
                    .map(|problem| format!("{} {}: {problem}", received.method, received.path)),
            );
            service.reject(&problems)
        } else if service.is_delivery(&received) {
            match log.faults.pop_front() {
                Some(Fault::Fail) => service.fail(),
                Some(Fault::RateLimit(wait)) => service.rate_limit(wait),
                None => service.accept(&received),
            }
        } else {
            service.accept(&received)
        }
    };
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Whole seconds of `wait`, rounded up, as a `Retry-After` value.
pub fn retry_after_seconds(wait: Duration) -> String {
    wait.as_secs_f64().ceil().max(1.0).to_string()
}

/// Seconds since the Unix epoch, the clock token services sign and expire by.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// HMAC-SHA256 of `message` under `key`, the step AWS SigV4 and Tencent TC3
/// chain to derive their signing keys.
pub fn hmac_sha256(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}
