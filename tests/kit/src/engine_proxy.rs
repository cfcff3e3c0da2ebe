//! Loopback TCP listeners in front of an engine's Unix socket, so one real
//! engine can stand for many remote ones (`tcp://127.0.0.1:PORT` watchers).
//! Each proxy counts the Docker API requests it forwards, by kind, and can be
//! made to die — close its listener and every connection — at a chosen
//! request, the way a remote engine's host goes down in the middle of a scan,
//! or answer `500` to the inspection of chosen containers (an engine that
//! fails one call).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Docker API requests a proxy forwarded, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineRequests {
    /// `GET /containers/json`.
    pub container_listings: usize,
    /// `GET /images/json`.
    pub image_listings: usize,
    /// `GET /images/{id}/json`.
    pub image_inspections: usize,
    /// `GET /containers/{id}/json`.
    pub container_inspections: usize,
    /// Anything else (`/version`, `/_ping`, events).
    pub other: usize,
}

impl EngineRequests {
    fn count(&mut self, path: &str) {
        let path = path.split('?').next().unwrap_or_default();
        if path.ends_with("/containers/json") {
            self.container_listings += 1;
        } else if path.ends_with("/images/json") && !path.contains("/images/sha256") {
            self.image_listings += 1;
        } else if path.contains("/images/") {
            self.image_inspections += 1;
        } else if path.contains("/containers/") {
            self.container_inspections += 1;
        } else {
            self.other += 1;
        }
    }

    /// Every request.
    pub fn total(&self) -> usize {
        self.container_listings
            + self.image_listings
            + self.image_inspections
            + self.container_inspections
            + self.other
    }

    /// The sum of `self` and `other`.
    pub fn plus(self, other: Self) -> Self {
        Self {
            container_listings: self.container_listings + other.container_listings,
            image_listings: self.image_listings + other.image_listings,
            image_inspections: self.image_inspections + other.image_inspections,
            container_inspections: self.container_inspections + other.container_inspections,
            other: self.other + other.other,
        }
    }
}

struct ProxyState {
    socket: PathBuf,
    requests: Mutex<EngineRequests>,
    /// The proxy dies when a request beyond this many arrives.
    die_after: Option<usize>,
    dead: watch::Sender<bool>,
    /// Containers (id or name) whose inspection is answered `500`.
    failing_inspections: Mutex<Vec<String>>,
}

/// What to do with a chunk of requests.
enum Admission {
    Forward,
    /// Answer `500` without forwarding (an inspection made to fail).
    Fail,
    /// Die.
    Refuse,
}

/// The engine's answer to an inspection made to fail.
fn inspection_failure() -> String {
    let body = r#"{"message":"inspection failed (engine proxy fault)"}"#;
    format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

impl ProxyState {
    /// Counts the request lines in `chunk` and says what to do with it.
    fn admit(&self, chunk: &[u8]) -> Admission {
        let text = String::from_utf8_lossy(chunk);
        let Ok(mut requests) = self.requests.lock() else {
            return Admission::Refuse;
        };
        let failing = self
            .failing_inspections
            .lock()
            .map(|failing| failing.clone())
            .unwrap_or_default();
        for line in text.split("\r\n").filter(|line| line.ends_with("HTTP/1.1")) {
            if self
                .die_after
                .is_some_and(|limit| requests.total() >= limit)
            {
                self.dead.send_replace(true);
                return Admission::Refuse;
            }
            let path = line.split(' ').nth(1).unwrap_or_default();
            requests.count(path);
            if failing
                .iter()
                .any(|id| path.contains(&format!("/containers/{id}/json")))
            {
                return Admission::Fail;
            }
        }
        Admission::Forward
    }
}

/// One loopback listener forwarding to the engine; stops on drop.
pub struct EngineProxy {
    address: SocketAddr,
    state: Arc<ProxyState>,
}

impl EngineProxy {
    /// A proxy on a free loopback port in front of the engine at `socket`.
    pub async fn start(socket: &Path) -> Self {
        Self::start_with(socket, None).await
    }

    /// A proxy that forwards `requests` requests, then dies (listener and
    /// connections closed) when the next one arrives.
    pub async fn dying_after(socket: &Path, requests: usize) -> Self {
        Self::start_with(socket, Some(requests)).await
    }

    async fn start_with(socket: &Path, die_after: Option<usize>) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("bound address");
        let state = Arc::new(ProxyState {
            socket: socket.to_path_buf(),
            requests: Mutex::default(),
            die_after,
            dead: watch::channel(false).0,
            failing_inspections: Mutex::default(),
        });
        let accepting = Arc::clone(&state);
        tokio::spawn(async move {
            let mut dead = accepting.dead.subscribe();
            loop {
                let inbound = tokio::select! {
                    _ = dead.wait_for(|dead| *dead) => return,
                    accepted = listener.accept() => match accepted {
                        Ok((inbound, _)) => inbound,
                        Err(_) => return,
                    },
                };
                tokio::spawn(forward(Arc::clone(&accepting), inbound));
            }
        });
        Self { address, state }
    }

    /// `tcp://127.0.0.1:PORT`, the watcher's `host`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.address)
    }

    /// What it forwarded so far.
    pub fn requests(&self) -> EngineRequests {
        self.state
            .requests
            .lock()
            .map(|requests| *requests)
            .unwrap_or_default()
    }

    /// Forgets the requests counted so far.
    pub fn reset(&self) {
        if let Ok(mut requests) = self.state.requests.lock() {
            *requests = EngineRequests::default();
        }
    }

    /// From now on, inspections of `container` (its id or name, as the
    /// client asks) are answered `500 Internal Server Error`.
    pub fn fail_inspections_of(&self, container: &str) {
        if let Ok(mut failing) = self.state.failing_inspections.lock() {
            failing.push(container.to_owned());
        }
    }

    /// Whether it died.
    pub fn is_dead(&self) -> bool {
        *self.state.dead.borrow()
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.state.dead.send_replace(true);
    }
}

/// Forwards one connection until either side closes or the proxy dies.
async fn forward(state: Arc<ProxyState>, inbound: tokio::net::TcpStream) {
    let Ok(outbound) = tokio::net::UnixStream::connect(&state.socket).await else {
        return;
    };
    let mut dead = state.dead.subscribe();
    let (mut in_read, in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    // Shared: a failed inspection is answered here, between the engine's
    // answers (HTTP/1.1 clients wait for one answer before the next request).
    let in_write = tokio::sync::Mutex::new(in_write);
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = in_read.read(&mut buffer).await {
            let Some(chunk) = buffer.get(..read).filter(|chunk| !chunk.is_empty()) else {
                break;
            };
            let sent = match state.admit(chunk) {
                Admission::Forward => out_write.write_all(chunk).await,
                Admission::Fail => {
                    in_write
                        .lock()
                        .await
                        .write_all(inspection_failure().as_bytes())
                        .await
                }
                Admission::Refuse => break,
            };
            if sent.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = out_read.read(&mut buffer).await {
            let Some(chunk) = buffer.get(..read).filter(|chunk| !chunk.is_empty()) else {
                break;
            };
            if in_write.lock().await.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    // Dropping both halves of both streams closes the connection.
    tokio::select! {
        _ = dead.wait_for(|dead| *dead) => {}
        _ = async { tokio::join!(upstream, downstream) } => {}
    }
}

/// `count` proxies in front of the engine at `socket`.
pub async fn engine_proxies(socket: &Path, count: usize) -> Vec<EngineProxy> {
    let mut proxies = Vec::with_capacity(count);
    for _ in 0..count {
        proxies.push(EngineProxy::start(socket).await);
    }
    proxies
}
