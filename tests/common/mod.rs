//! Shared helpers of the end-to-end tests: the loopback test world (dockerd +
//! registries), pushing images with the docker CLI or the registry HTTP API,
//! containers that clean up after themselves, temp configs, and running
//! `crowsnest` as a binary or as a library.
//!
//! Tests run in parallel against one daemon and shared registries: every
//! helper works with names unique to the calling test.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crowsnest::config::Config;
use crowsnest::model::{ContainerObject, ScanReport, ScanRequest};
use crowsnest::scan::Scanner;
use sha2::{Digest, Sha256};

/// Images the e2e tests push: one label on top of the FROM-scratch busybox
/// images of `scripts/dockerd.sh build-images`, so that they have their own
/// image ids and the tags the tests add never show on the shared test images
/// (other suites expect those to carry only their own tags).
pub const BASE_1_0: &str = "crowsnest-e2e/busybox:1.0";
/// See [`BASE_1_0`].
pub const BASE_1_1: &str = "crowsnest-e2e/busybox:1.1";
/// See [`BASE_1_0`].
pub const BASE_2_0: &str = "crowsnest-e2e/busybox:2.0";

/// Label every e2e container carries (value: the test world's id), for cleanup.
pub const WORLD_LABEL: &str = "crowsnest-e2e";

/// Docker media types used when pushing through the HTTP API.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// See [`DOCKER_MANIFEST`].
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Where the loopback registries listen (`host:port`, no scheme).
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

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Docker socket of the test daemon.
pub fn docker_socket() -> PathBuf {
    std::env::var_os("CROWSNEST_TEST_DOCKER_SOCKET")
        .or_else(|| std::env::var_os("CROWSNEST_DOCKER_SOCKET"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

fn env_file() -> PathBuf {
    repo_root().join("target/test-env/registries.env")
}

/// `export KEY=VALUE` lines of `registries.env`, overridden by the process environment.
fn read_env() -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(env_file()) {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ").trim();
            if let Some((key, value)) = line.split_once('=') {
                values.insert(
                    key.trim().to_string(),
                    value.trim().trim_matches('"').to_string(),
                );
            }
        }
    }
    for (key, value) in std::env::vars() {
        if key.starts_with("CROWSNEST_TEST_REGISTRY_") {
            values.insert(key, value);
        }
    }
    values
}

fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn http_answers(url: &str) -> bool {
    Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--max-time",
            "2",
            "--noproxy",
            "*",
            url,
        ])
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// The test world, checked (and started when down) once per test binary:
/// the Docker daemon answers, the base images exist, the registries answer.
pub fn world() -> &'static Registries {
    static WORLD: OnceLock<Registries> = OnceLock::new();
    WORLD.get_or_init(|| {
        assert!(
            docker_ok(&["info"]),
            "no Docker daemon answers on {}: run scripts/dockerd.sh start",
            docker_socket().display()
        );
        build_base_images();
        let mut values = read_env();
        let plain_url = values
            .get("CROWSNEST_TEST_REGISTRY_PLAIN")
            .cloned()
            .unwrap_or_default();
        if plain_url.is_empty() || !http_answers(&format!("{plain_url}/v2/")) {
            let status = Command::new(repo_root().join("scripts/registries.sh"))
                .arg("start")
                .status()
                .expect("run scripts/registries.sh start");
            assert!(status.success(), "scripts/registries.sh start failed");
            values = read_env();
        }
        let get = |key: &str| {
            values
                .get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{key} missing from {}", env_file().display()))
        };
        Registries {
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
        }
    })
}

/// Builds [`BASE_1_0`] & co. from the shared test images (built first when missing).
fn build_base_images() {
    const SHARED: [(&str, &str); 3] = [
        (BASE_1_0, "crowsnest-test/busybox:1.0"),
        (BASE_1_1, "crowsnest-test/busybox:1.1"),
        (BASE_2_0, "crowsnest-test/busybox:2.0"),
    ];
    if SHARED
        .iter()
        .all(|(ours, _)| docker_ok(&["image", "inspect", ours]))
    {
        return;
    }
    if !SHARED
        .iter()
        .all(|(_, shared)| docker_ok(&["image", "inspect", shared]))
    {
        let status = Command::new(repo_root().join("scripts/dockerd.sh"))
            .arg("build-images")
            .env("CROWSNEST_DOCKER_SOCKET", docker_socket())
            .status()
            .expect("run scripts/dockerd.sh build-images");
        assert!(status.success(), "scripts/dockerd.sh build-images failed");
    }
    for (ours, shared) in SHARED {
        let dockerfile = format!("FROM {shared}\nLABEL crowsnest-e2e-base=\"{ours}\"\n");
        let output = docker_command(None)
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--tag", ours, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(dockerfile.as_bytes())?;
                child.wait_with_output()
            })
            .expect("run docker build");
        assert!(
            output.status.success(),
            "docker build {ours} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn docker_command(config_dir: Option<&Path>) -> Command {
    let mut command = Command::new("docker");
    if let Some(dir) = config_dir {
        command.arg("--config").arg(dir);
    }
    command
        .arg("--host")
        .arg(format!("unix://{}", docker_socket().display()));
    command
}

/// Runs the docker CLI; panics with its stderr on failure; returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    docker_in(None, args)
}

fn docker_in(config_dir: Option<&Path>, args: &[&str]) -> String {
    let output = docker_command(config_dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run the docker CLI: {err}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Whether a docker CLI call succeeds (output discarded).
pub fn docker_ok(args: &[&str]) -> bool {
    docker_command(None)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// A lower-case name unique to this process and call, e.g. `e2e-update-4711-3`.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "e2e-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One test's slice of the world: its containers, local image tags, temp
/// directory (configs, store) and docker CLI config (registry logins). All
/// removed on drop, also when the test panics.
pub struct TestWorld {
    /// Unique id; containers carry it in [`WORLD_LABEL`].
    pub id: String,
    /// The registries.
    pub registries: Registries,
    dir: tempfile::TempDir,
    containers: Mutex<Vec<String>>,
    image_tags: Mutex<Vec<String>>,
    /// Repositories whose local references (tags and `RepoDigests`) go on drop.
    repositories: Mutex<Vec<String>>,
}

impl TestWorld {
    /// A fresh slice named after the test.
    pub fn new(test: &str) -> Self {
        let registries = world().clone();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("docker")).expect("docker config dir");
        Self {
            id: unique(test),
            registries,
            dir,
            containers: Mutex::new(Vec::new()),
            image_tags: Mutex::new(Vec::new()),
            repositories: Mutex::new(Vec::new()),
        }
    }

    /// The temp directory of this test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// `docker` with this test's CLI config (its registry logins).
    pub fn docker(&self, args: &[&str]) -> String {
        docker_in(Some(&self.docker_config()), args)
    }

    /// A repository name unique to this test, e.g. `e2e-update-4711-0/app`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.id)
    }

    /// `docker login` (into this test's own CLI config).
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        let output = docker_command(Some(&self.docker_config()))
            .args(["login", "--username", user, "--password-stdin", registry])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(password.as_bytes())?;
                child.wait_with_output()
            })
            .expect("run docker login");
        assert!(
            output.status.success(),
            "docker login {registry} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Tags `source` (a local image) as `target` and records the tag for cleanup.
    pub fn tag(&self, source: &str, target: &str) {
        self.docker(&["tag", source, target]);
        self.image_tags
            .lock()
            .expect("lock")
            .push(target.to_string());
        self.remember_repository(target);
    }

    /// Records the repository of `reference` so that the digest references a
    /// push or pull leaves on the shared base images are removed on drop.
    fn remember_repository(&self, reference: &str) {
        let name = reference.split('@').next().unwrap_or(reference);
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let repository = match name[slash..].rfind(':') {
            Some(colon) => &name[..slash + colon],
            None => name,
        };
        let mut repositories = self.repositories.lock().expect("lock");
        if !repositories.iter().any(|r| r == repository) {
            repositories.push(repository.to_string());
        }
    }

    /// Tags `source` as `target` (`host:port/repo:tag`) and pushes it; returns
    /// the manifest digest the registry stored.
    pub fn push(&self, source: &str, target: &str) -> String {
        self.tag(source, target);
        let output = self.docker(&["push", target]);
        output
            .lines()
            .rev()
            .find_map(|line| line.split("digest: ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no digest in the output of docker push {target}: {output}"))
    }

    /// `docker pull` (recorded for cleanup).
    pub fn pull(&self, reference: &str) {
        self.docker(&["pull", "--quiet", reference]);
        self.remember_repository(reference);
    }

    /// `docker run -d --network none` with the world label plus `labels`;
    /// returns the container id.
    pub fn run(&self, image: &str, labels: &[(&str, &str)]) -> String {
        self.container("run", image, labels)
    }

    /// `docker create` (never started); returns the container id.
    pub fn create(&self, image: &str, labels: &[(&str, &str)]) -> String {
        self.container("create", image, labels)
    }

    fn container(&self, verb: &str, image: &str, labels: &[(&str, &str)]) -> String {
        let name = unique(&self.id);
        let world_label = format!("{WORLD_LABEL}={}", self.id);
        let mut args: Vec<String> = vec![verb.into()];
        if verb == "run" {
            args.push("--detach".into());
        }
        args.extend([
            "--network".into(),
            "none".into(),
            "--name".into(),
            name,
            "--label".into(),
            world_label,
        ]);
        for (key, value) in labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push(image.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = self.docker(&args);
        let id = id.lines().last().unwrap_or_default().to_string();
        self.containers.lock().expect("lock").push(id.clone());
        id
    }

    /// Stops a container (fast: no grace period).
    pub fn stop(&self, id: &str) {
        self.docker(&["stop", "--time", "0", id]);
    }

    /// Removes a container now.
    pub fn remove(&self, id: &str) {
        self.docker(&["rm", "--force", id]);
        self.containers.lock().expect("lock").retain(|c| c != id);
    }

    /// Writes `config.toml` into the temp dir and returns its path. `text` is
    /// prefixed with a store in the temp dir and no tag cache, and Docker Hub
    /// pointed at the loopback token registry so no scan can ever leave the
    /// machine; `text` must not repeat `[store]` or `[registries.hub]`.
    pub fn config(&self, text: &str) -> PathBuf {
        self.config_named("config.toml", text)
    }

    /// [`TestWorld::config`] under another file name.
    pub fn config_named(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        let full = format!(
            "[store]\npath = \"{}\"\ntag_cache_ttl = 0\n\n[registries.hub]\nplugin = \"dockerhub\"\nurl = \"http://{}\"\n\n{text}",
            self.dir.path().join("store.db").display(),
            self.registries.token,
        );
        std::fs::write(&path, full).expect("write config");
        path
    }

    /// A scanner built from the config file at `path`.
    pub async fn scanner(&self, path: &Path) -> Scanner {
        let config = Config::load(Some(path)).expect("config loads");
        match Scanner::new(&config).await {
            Ok(scanner) => scanner,
            Err(err) => panic!("scanner setup failed: {err}"),
        }
    }

    /// Runs `crowsnest --config PATH ARGS…`.
    pub fn crowsnest(&self, config: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_crowsnest"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("CROWSNEST_CONFIG")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .output()
            .expect("run crowsnest")
    }

    /// Blobs/manifests pushed through the registry HTTP API.
    pub fn registry_api(&self, registry: &str) -> RegistryApi {
        RegistryApi::new(registry)
    }
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        let containers =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(containers.iter().map(String::as_str));
            if !docker_ok(&args) {
                eprintln!("cleanup: could not remove containers {containers:?}");
            }
        }
        let tags = std::mem::take(&mut *self.image_tags.lock().unwrap_or_else(|e| e.into_inner()));
        for tag in tags {
            // The tag may already be gone (retagged by another step); that is fine.
            let _ = docker_ok(&["rmi", "--no-prune", &tag]);
        }
        let repositories =
            std::mem::take(&mut *self.repositories.lock().unwrap_or_else(|e| e.into_inner()));
        for repository in repositories {
            let listed = docker_command(None)
                .args([
                    "images",
                    "--digests",
                    "--no-trunc",
                    "--format",
                    "{{.Repository}} {{.Tag}} {{.Digest}}",
                    &repository,
                ])
                .output();
            let Ok(listed) = listed else { continue };
            for line in String::from_utf8_lossy(&listed.stdout).lines() {
                let mut fields = line.split_whitespace();
                let (Some(name), Some(tag), Some(digest)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                if tag != "<none>" {
                    let _ = docker_ok(&["rmi", "--no-prune", &format!("{name}:{tag}")]);
                }
                if digest != "<none>" {
                    let _ = docker_ok(&["rmi", "--no-prune", &format!("{name}@{digest}")]);
                }
            }
        }
    }
}

/// A scan request limited to `patterns`.
pub fn images(patterns: &[&str]) -> ScanRequest {
    ScanRequest {
        images: patterns.iter().map(|p| p.to_string()).collect(),
        ..ScanRequest::default()
    }
}

/// The container `id` in a report; panics listing what is there otherwise.
pub fn container<'a>(report: &'a ScanReport, id: &str) -> &'a ContainerObject {
    find(&report.containers, id)
}

/// The container `id` in a list of container objects.
pub fn find<'a>(containers: &'a [ContainerObject], id: &str) -> &'a ContainerObject {
    containers.iter().find(|c| c.id == id).unwrap_or_else(|| {
        let names: Vec<(&str, &str)> = containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.reference.as_str()))
            .collect();
        panic!("container {id} not in the scan result: {names:?}")
    })
}

/// `sha256:` digest of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Minimal registry HTTP API client (plain HTTP, no auth) to push what the
/// docker CLI cannot: image indexes.
pub struct RegistryApi {
    base: String,
    http: reqwest::Client,
}

impl RegistryApi {
    /// For `host:port`.
    pub fn new(registry: &str) -> Self {
        Self {
            base: format!("http://{registry}"),
            http: reqwest::Client::new(),
        }
    }

    /// GET a manifest with the Docker/OCI accept list; returns (bytes, media type).
    pub async fn manifest(&self, repository: &str, reference: &str) -> (Vec<u8>, String) {
        let response = self
            .http
            .get(format!("{}/v2/{repository}/manifests/{reference}", self.base))
            .header(
                "Accept",
                format!("{DOCKER_MANIFEST}, {DOCKER_MANIFEST_LIST}, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"),
            )
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
            .to_string();
        (
            response.bytes().await.expect("manifest body").to_vec(),
            media_type,
        )
    }

    /// Uploads a blob (monolithic POST + PUT); returns its digest.
    pub async fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let started = self
            .http
            .post(format!("{}/v2/{repository}/blobs/uploads/", self.base))
            .send()
            .await
            .expect("start upload");
        assert_eq!(
            started.status().as_u16(),
            202,
            "start upload to {repository}"
        );
        let location = started
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_string();
        let mut url = reqwest::Url::parse(&self.base)
            .expect("base")
            .join(&location)
            .expect("upload url");
        url.query_pairs_mut().append_pair("digest", &digest);
        let done = self
            .http
            .put(url)
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("finish upload");
        assert_eq!(done.status().as_u16(), 201, "finish upload to {repository}");
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
        let response = self
            .http
            .put(format!(
                "{}/v2/{repository}/manifests/{reference}",
                self.base
            ))
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT manifest");
        let status = response.status();
        assert!(
            status.is_success(),
            "PUT manifest {repository}:{reference}: {status}: {}",
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
    seen: SeenRequests,
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
        let upstream = format!("http://{upstream}");
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
