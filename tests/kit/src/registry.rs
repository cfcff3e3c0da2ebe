//! Registries on loopback, and how tests put images into them.
//!
//! - [`Registries`]: the CNCF distribution instances of `scripts/registries.sh`
//!   (plain, htpasswd, token auth, pull-through proxy, the token server),
//!   read from `target/test-env/registries.env` and the environment.
//! - [`PrivateRegistry`]: a `docker-registry serve` of one test, on a free
//!   port, killed on drop.
//! - [`RegistryApi`]: the distribution HTTP API, to push what the docker CLI
//!   cannot (blobs, hand-made manifests and indexes), with or without auth.
//! - [`CountingProxy`]: an HTTP proxy in front of a registry that records
//!   every request, to count what a scan asks.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::images::{self, LocalImages};
use crate::{ports, wait};

/// The `service` the test token server issues tokens for.
pub const TOKEN_SERVICE: &str = "crowsnest-test-registry";

/// Where the loopback registries of `scripts/registries.sh` listen
/// (`host:port`, no scheme), and their users.
#[derive(Debug, Clone)]
pub struct Registries {
    /// No auth.
    pub plain: String,
    /// htpasswd Basic auth.
    pub basic: String,
    /// Basic auth user and password.
    pub basic_user: (String, String),
    /// Token auth (Docker-Hub-like).
    pub token: String,
    /// Token auth user and password.
    pub token_user: (String, String),
    /// Pull-through proxy of `plain`.
    pub proxy: String,
    /// The token server (`http://…`).
    pub token_server: String,
}

/// `target/test-env/registries.env`, written by `scripts/registries.sh start`.
fn env_file() -> PathBuf {
    crate::test_env().join("registries.env")
}

/// `export KEY=VALUE` lines of `registries.env`, overridden by the process environment.
fn read_env() -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(env_file()) {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ").trim();
            if let Some((key, value)) = line.split_once('=') {
                values.insert(
                    key.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                );
            }
        }
    }
    values.extend(std::env::vars().filter(|(key, _)| key.starts_with("CROWSNEST_TEST_REGISTRY_")));
    values
}

/// `host:port` of an `http://host:port/` URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// `http://` + `registry`, unless it has a scheme already.
pub fn http_url(registry: &str) -> String {
    if registry.contains("://") {
        registry.to_owned()
    } else {
        format!("http://{registry}")
    }
}

impl Registries {
    /// The registries, read once per process; panics with what to run when
    /// they are not described or the plain one does not answer. The kit never
    /// starts them: `scripts/test.sh` (or a developer) does, and stops them.
    pub fn get() -> &'static Registries {
        static REGISTRIES: OnceLock<Registries> = OnceLock::new();
        REGISTRIES.get_or_init(|| {
            let values = read_env();
            let get = |key: &str| {
                values.get(key).cloned().unwrap_or_else(|| {
                    panic!(
                        "{key} is not set and not in {}: run scripts/registries.sh start",
                        env_file().display()
                    )
                })
            };
            let registries = Registries {
                plain: authority(&get("CROWSNEST_TEST_REGISTRY_PLAIN")),
                basic: authority(&get("CROWSNEST_TEST_REGISTRY_BASIC")),
                basic_user: (
                    get("CROWSNEST_TEST_REGISTRY_BASIC_USER"),
                    get("CROWSNEST_TEST_REGISTRY_BASIC_PASSWORD"),
                ),
                token: authority(&get("CROWSNEST_TEST_REGISTRY_TOKEN")),
                token_user: (
                    get("CROWSNEST_TEST_REGISTRY_TOKEN_USER"),
                    get("CROWSNEST_TEST_REGISTRY_TOKEN_PASSWORD"),
                ),
                proxy: authority(&get("CROWSNEST_TEST_REGISTRY_PROXY")),
                token_server: get("CROWSNEST_TEST_REGISTRY_TOKEN_SERVER"),
            };
            let port = registries
                .plain
                .rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("no port in {}", registries.plain));
            assert!(
                ports::http_status(port, "/v2/").is_some(),
                "the plain test registry does not answer on {}: run scripts/registries.sh start",
                registries.plain
            );
            registries
        })
    }

    /// A token of the test token server for `scope` (e.g.
    /// `repository:NAME:pull`), asked as `user`.
    pub async fn token(&self, scope: &str, user: &(String, String)) -> String {
        let request = reqwest::Client::new()
            .get(format!(
                "{}/token?service={TOKEN_SERVICE}&scope={scope}",
                self.token_server
            ))
            .basic_auth(&user.0, Some(&user.1));
        let answer: serde_json::Value = ports::send_ok(request, &format!("token for {scope}"))
            .await
            .json()
            .await
            .expect("token answer is JSON");
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {answer}"))
            .to_owned()
    }
}

/// A `docker-registry serve` of one test on a free loopback port, killed on
/// drop together with the local tags its pushes added.
pub struct PrivateRegistry {
    /// Its loopback port.
    port: u16,
    /// The `docker-registry` process.
    child: Child,
    /// The local tags its pushes added.
    pushed: LocalImages,
    /// Its configuration and storage.
    _dir: tempfile::TempDir,
}

impl PrivateRegistry {
    /// Starts one and waits until it answers; images are pushed to it from `engine`.
    pub fn start(engine: &Engine) -> Self {
        Self::start_with(engine, None)
    }

    /// Starts one that takes only Basic `user:password` (htpasswd, bcrypt),
    /// as a vendor's registry takes the password its token API issued.
    pub fn start_with_user(engine: &Engine, user: &str, password: &str) -> Self {
        Self::start_with(engine, Some((user, password)))
    }

    fn start_with(engine: &Engine, user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("registry dir");
        let port = ports::free_port();
        let config = dir.path().join("config.yml");
        let auth = match user {
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                let status = Command::new("htpasswd")
                    .args(["-Bbc", &htpasswd.to_string_lossy(), user, password])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("htpasswd (apt-get install apache2-utils)");
                assert!(status.success(), "htpasswd failed");
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start docker-registry (apt-get install docker-registry): {error}")
            });
        // Built before waiting, so that a registry that never answers is killed too.
        let registry = Self {
            port,
            child,
            pushed: LocalImages::new(engine),
            _dir: dir,
        };
        wait::blocking_until(
            Duration::from_secs(20),
            &format!("the test registry on port {port}"),
            || matches!(ports::http_status(port, "/v2/"), Some(200 | 401)),
        );
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (the origin the scanner's request counters use).
    pub fn origin(&self) -> String {
        http_url(&self.host())
    }

    /// Pushes `repository` with the given tags, each the test image of that
    /// version, and returns the local reference of each,
    /// `127.0.0.1:PORT/REPOSITORY:TAG`.
    pub fn push(&self, repository: &str, tags: &[&str]) -> Vec<String> {
        tags.iter()
            .map(|tag| {
                let reference = format!("{}/{repository}:{tag}", self.host());
                self.pushed.tag(&images::test_image(tag), &reference);
                self.pushed.push(&reference);
                reference
            })
            .collect()
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256:` digest of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How a [`RegistryApi`] authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Anonymously.
    None,
    /// Basic credentials sent to the registry.
    Basic(String, String),
    /// Credentials exchanged at the test token server for a push token per repository.
    Token(String, String),
}

/// The registry HTTP API, to push blobs, manifests and indexes (monolithic
/// uploads) and read manifests back.
pub struct RegistryApi {
    /// `http://host:port`.
    base: String,
    /// How it authenticates.
    credentials: Credentials,
    /// The HTTP client.
    http: reqwest::Client,
    /// Push tokens by repository.
    tokens: Mutex<HashMap<String, String>>,
}

/// Every manifest media type a [`RegistryApi::manifest`] accepts.
const ACCEPT: [&str; 4] = [
    crowsnest_oci::MEDIA_TYPE_DOCKER_MANIFEST,
    crowsnest_oci::MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    crowsnest_oci::MEDIA_TYPE_OCI_MANIFEST,
    crowsnest_oci::MEDIA_TYPE_OCI_INDEX,
];

impl RegistryApi {
    /// For `registry` (`host:port` or `http://host:port`), anonymously.
    pub fn new(registry: &str) -> Self {
        Self {
            base: http_url(registry),
            credentials: Credentials::None,
            http: reqwest::Client::new(),
            tokens: Mutex::default(),
        }
    }

    /// The same API, authenticating with `credentials`.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        Self {
            credentials,
            ..self
        }
    }

    /// A push token for `repository`, fetched once.
    async fn push_token(&self, repository: &str, user: &str, password: &str) -> String {
        if let Some(token) = self.tokens.lock().expect("lock").get(repository) {
            return token.clone();
        }
        let token = Registries::get()
            .token(
                &format!("repository:{repository}:pull,push"),
                &(user.to_owned(), password.to_owned()),
            )
            .await;
        self.tokens
            .lock()
            .expect("lock")
            .insert(repository.to_owned(), token.clone());
        token
    }

    /// A request to `url` with this API's credentials for `repository`.
    async fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
        repository: &str,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.credentials {
            Credentials::None => request,
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
            Credentials::Token(user, password) => {
                request.bearer_auth(self.push_token(repository, user, password).await)
            }
        }
    }

    /// GET a manifest with the Docker/OCI accept list; returns (bytes, media type).
    pub async fn manifest(&self, repository: &str, reference: &str) -> (Vec<u8>, String) {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self
            .request(reqwest::Method::GET, url, repository)
            .await
            .header("Accept", ACCEPT.join(", "))
            .send()
            .await
            .expect("GET manifest");
        assert!(
            response.status().is_success(),
            "GET manifest {repository}:{reference}: {}",
            response.status()
        );
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("manifest body").to_vec();
        (bytes, media_type)
    }

    /// Uploads a blob (monolithic POST + PUT); returns its digest.
    pub async fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let started = self
            .request(reqwest::Method::POST, url, repository)
            .await
            .send()
            .await
            .expect("start upload");
        assert_eq!(started.status(), 202, "starting upload to {repository}");
        let location = started
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_owned();
        let mut url = reqwest::Url::parse(&self.base)
            .expect("base")
            .join(&location)
            .expect("upload url");
        url.query_pairs_mut().append_pair("digest", &digest);
        let done = self
            .request(reqwest::Method::PUT, url, repository)
            .await
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("finish upload");
        assert_eq!(done.status(), 201, "finishing upload of {digest}");
        digest
    }

    /// PUT a manifest or index under `reference`; returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self
            .request(reqwest::Method::PUT, url, repository)
            .await
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT manifest");
        let status = response.status();
        assert_eq!(
            status,
            201,
            "PUT manifest {repository}:{reference}: {}",
            response.text().await.unwrap_or_default()
        );
        sha256_digest(bytes)
    }
}

/// Requests seen by a [`CountingProxy`]: (method, path and query).
pub type SeenRequests = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback HTTP proxy in front of a registry that records every request
/// (method and path), to count exactly what a scan asks.
pub struct CountingProxy {
    /// `127.0.0.1:PORT` it listens on.
    pub address: SocketAddr,
    /// What it was asked.
    seen: SeenRequests,
    /// The server, aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Starts forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        use axum::body::Body;
        use axum::http::{Request, Response};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let seen: SeenRequests = Arc::default();
        let upstream = http_url(upstream);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let recorded = seen.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let seen = recorded.clone();
            let http = http.clone();
            let upstream = upstream.clone();
            async move {
                let path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                seen.lock()
                    .expect("lock")
                    .push((request.method().to_string(), path.clone()));
                let mut forward =
                    http.request(request.method().clone(), format!("{upstream}{path}"));
                for name in ["accept", "authorization"] {
                    for value in request.headers().get_all(name) {
                        forward = forward.header(name, value.clone());
                    }
                }
                let answer = forward.send().await.expect("upstream answers");
                let mut response = Response::builder().status(answer.status());
                for (name, value) in answer.headers() {
                    if name != "transfer-encoding" && name != "connection" {
                        response = response.header(name, value.clone());
                    }
                }
                let body = answer.bytes().await.expect("upstream body");
                response.body(Body::from(body)).expect("response")
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            seen,
            task,
        }
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("lock").clone()
    }

    /// Forget what was recorded.
    pub fn reset(&self) {
        self.seen.lock().expect("lock").clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
