//! Test world of the control-plane tests (`api_http`, `api_grpc`, `serve_events`,
//! `triggers`, the `api` benchmark): a Docker engine of their own (started with
//! `scripts/dockerd.sh` on a separate socket, so that only the containers these
//! tests create are watched and no lookup ever leaves loopback), a private CNCF
//! distribution registry per test on a free loopback port, images pushed to it
//! with the docker CLI, and containers removed by drop guards.
//!
//! Tests of one binary take [`serial`] so they never see each other's containers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener as StdTcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Local image the test images are made from (built by `scripts/dockerd.sh build-images`).
pub const BASE_IMAGES: [(&str, &str); 3] = [
    ("1.0", "crowsnest-test/busybox:1.0"),
    ("1.1", "crowsnest-test/busybox:1.1"),
    ("2.0", "crowsnest-test/busybox:2.0"),
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    repo_root().join("target/test-env/control-plane")
}

/// Socket of the control-plane tests' own Docker engine.
pub fn socket_path() -> PathBuf {
    std::env::var_os("CROWSNEST_CP_DOCKER_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir().join("docker.sock"))
}

/// Serialises the tests of one binary (they share the Docker engine).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Runs the docker CLI against the test engine; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .arg("--host")
        .arg(format!("unix://{}", socket_path().display()))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the docker CLI: {error}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn dockerd_script(command: &str) {
    let status = Command::new(repo_root().join("scripts/dockerd.sh"))
        .arg(command)
        .env("CROWSNEST_DOCKER_SOCKET", socket_path())
        .env("CROWSNEST_DOCKERD_STATE", state_dir().join("dockerd"))
        .status()
        .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh: {error}"));
    assert!(status.success(), "scripts/dockerd.sh {command} failed");
}

/// Starts (or reuses) the tests' Docker engine and builds the base images when missing.
pub fn ensure_docker() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        std::fs::create_dir_all(state_dir()).unwrap();
        dockerd_script("start");
        let have = Command::new("docker")
            .arg("--host")
            .arg(format!("unix://{}", socket_path().display()))
            .args(["image", "inspect", BASE_IMAGES[2].1])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if !have {
            dockerd_script("build-images");
        }
    });
}

pub fn free_port() -> u16 {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// A private `docker-registry serve` on a free loopback port, killed on drop.
pub struct Registry {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start docker-registry (apt-get install docker-registry): {error}")
            });
        let registry = Self {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get_status(port, "/v2/") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "the test registry did not come up on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (the origin the scanner's request counters use).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Pushes `repository` with the given tags (each a distinct image) and
    /// returns the local reference of each, `127.0.0.1:PORT/REPOSITORY:TAG`.
    pub fn push(&self, repository: &str, tags: &[&str]) -> Vec<String> {
        tags.iter()
            .map(|tag| {
                let base = BASE_IMAGES
                    .iter()
                    .find(|(version, _)| version == tag)
                    .map(|(_, image)| *image)
                    .unwrap_or_else(|| panic!("no base image for tag {tag}"));
                let reference = format!("{}/{repository}:{tag}", self.host());
                docker(&["tag", base, &reference]);
                docker(&["push", "--quiet", &reference]);
                reference
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running test container, removed on drop.
pub struct Container {
    pub id: String,
    pub name: String,
}

static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

impl Container {
    /// `docker run -d --network none` of `image` with `labels`.
    pub fn run(image: &str, labels: &[(&str, &str)]) -> Self {
        let name = format!(
            "cn-cp-{}-{}",
            std::process::id(),
            NEXT_NAME.fetch_add(1, Ordering::Relaxed)
        );
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "--label",
            "crowsnest-test=1",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        for (key, value) in labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push(image.to_owned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker(&argv);
        Self { id, name }
    }

    /// Removes it now (the drop guard then does nothing).
    pub fn remove(&mut self) {
        if !self.id.is_empty() {
            docker(&["rm", "-f", &self.id]);
            self.id.clear();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.id.is_empty() {
            let _ = Command::new("docker")
                .arg("--host")
                .arg(format!("unix://{}", socket_path().display()))
                .args(["rm", "-f", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A configuration for `crowsnest serve` on loopback against the test engine.
/// `extra` is appended as is (e.g. `[triggers.…]`, `[server] token`).
pub fn config_text(store: &Path, server_extra: &str, extra: &str) -> String {
    format!(
        "[store]\npath = \"{}\"\ntag_cache_ttl = 0\n\n[watchers.local]\nsocket = \"{}\"\nschedule = \"0 0 1 1 *\"\njitter = 0\n\n[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\nevent_debounce_ms = 100\n{server_extra}\n\n{extra}\n",
        store.display(),
        socket_path().display()
    )
}

pub fn parse_config(text: &str) -> crowsnest::config::Config {
    crowsnest::config::Config::parse(text, Path::new("test-config.toml"), &[])
        .unwrap_or_else(|error| panic!("test config does not parse: {error}\n{text}"))
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
