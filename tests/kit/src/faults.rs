//! A loopback fault proxy in front of a real registry: requests for the
//! repositories given a [`Fault`] get that fault, every other request is
//! forwarded untouched. Used by `tests/faults.rs` to show that each registry
//! failure lands, precisely worded, on the containers it concerns only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};

use crate::registry::http_url;

/// What the proxy does to a faulty repository's requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forwards after this delay (past the scan's lookup deadline).
    Slow(Duration),
    /// `429 Too Many Requests` with `Retry-After: SECONDS`, every time.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// `500 Internal Server Error` with a plain-text body.
    ServerError,
    /// `200` with an HTML page (a captive portal, a proxy's login page).
    Html,
    /// `200` `application/json` cut off in the middle.
    TruncatedJson,
    /// `200` with this many bytes, streamed without a `Content-Length`.
    HugeBody(usize),
    /// `307` to the same path on `base` (e.g. `http://127.0.0.1:PORT`).
    RedirectTo(String),
}

type Faults = Arc<Mutex<HashMap<String, Fault>>>;

/// The proxy; stops on drop.
pub struct FaultProxy {
    /// `127.0.0.1:PORT` it listens on.
    pub address: SocketAddr,
    faults: Faults,
    /// Requests that met a fault (a slow one counts on arrival).
    faulty: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (`host:port`) with no fault.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let address = listener.local_addr().expect("fault proxy address");
        let faults: Faults = Arc::default();
        let upstream = http_url(upstream);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let table = faults.clone();
        let faulty = Arc::new(AtomicUsize::new(0));
        let seen = faulty.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let fault = fault_for(&table, request.uri().path());
            if fault.is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let (http, upstream) = (http.clone(), upstream.clone());
            async move {
                match fault {
                    None => forward(&http, &upstream, request).await,
                    Some(Fault::Slow(delay)) => {
                        tokio::time::sleep(delay).await;
                        forward(&http, &upstream, request).await
                    }
                    Some(fault) => inject(&fault, &request),
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            faults,
            faulty,
            task,
        }
    }

    /// `127.0.0.1:PORT`, the image domain of the repositories behind it.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// Requests that met a fault so far.
    pub fn faulty_requests(&self) -> usize {
        self.faulty.load(Ordering::SeqCst)
    }

    /// From now on, requests for `repository` (`/v2/REPOSITORY/…`) get `fault`.
    pub fn inject(&self, repository: &str, fault: Fault) {
        self.faults
            .lock()
            .expect("fault table")
            .insert(repository.to_owned(), fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fault of the repository `path` (`/v2/REPOSITORY/tags/list`, …) names.
fn fault_for(faults: &Faults, path: &str) -> Option<Fault> {
    let faults = faults.lock().expect("fault table");
    faults
        .iter()
        .find(|(repository, _)| {
            path.strip_prefix("/v2/")
                .and_then(|rest| rest.strip_prefix(repository.as_str()))
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .map(|(_, fault)| fault.clone())
}

fn inject(fault: &Fault, request: &Request<Body>) -> Response<Body> {
    let answer = Response::builder();
    match fault {
        Fault::TooManyRequests { retry_after_secs } => answer
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", retry_after_secs.to_string())
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down (fault proxy)"}]}"#,
            )),
        Fault::ServerError => answer
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .header("content-type", "text/plain")
            .body(Body::from("upstream database on fire")),
        Fault::Html => answer
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .header("docker-content-digest", "sha256:0000")
            .body(Body::from(
                "<!doctype html><html><body><h1>Please log in to the Wi-Fi</h1></body></html>",
            )),
        Fault::TruncatedJson => answer
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"name":"x","tags":["1.0","2."#)),
        Fault::HugeBody(bytes) => {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let chunks = bytes.div_ceil(chunk.len());
            let stream = futures::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            answer
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
        }
        Fault::RedirectTo(base) => {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            answer
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", format!("{base}{path}"))
                .body(Body::empty())
        }
        Fault::Slow(_) => unreachable!("a slow answer is forwarded"),
    }
    .expect("fault response")
}

/// Forwards `request` to `upstream` (`http://host:port`) with its `Accept`
/// and `Authorization`; `502` when the upstream does not answer.
pub(crate) async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    request: Request<Body>,
) -> Response<Body> {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut outgoing = http.request(request.method().clone(), format!("{upstream}{path}"));
    for name in ["accept", "authorization"] {
        for value in request.headers().get_all(name) {
            outgoing = outgoing.header(name, value.clone());
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .expect("response");
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value.clone());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(body)).expect("response")
}
