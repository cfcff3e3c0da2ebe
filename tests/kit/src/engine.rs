//! The Docker engines the tests run containers on, and the docker CLI.
//!
//! - [`Engine::shared`]: the engine of `scripts/dockerd.sh start` (default
//!   `/var/run/docker.sock`). Tests of many binaries use it at once, each with
//!   names of its own; the kit never starts or stops it.
//! - [`Engine::private`]: an engine of its own for the control-plane tests,
//!   whose `crowsnest serve` watches every container of the engine. Started
//!   with `scripts/dockerd.sh` on its own socket when none answers there, and
//!   then stopped when the test process exits; one found running is left as is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::images;

/// A Docker engine reached through its unix socket, optionally with a docker
/// CLI configuration directory of its own (registry logins).
#[derive(Debug, Clone)]
pub struct Engine {
    /// The engine's unix socket.
    socket: PathBuf,
    /// The docker CLI configuration directory, when not the user's.
    cli_config: Option<PathBuf>,
}

/// Socket of the shared engine: `CROWSNEST_TEST_DOCKER_SOCKET`, else
/// `CROWSNEST_DOCKER_SOCKET`, else `/var/run/docker.sock`.
fn shared_socket() -> PathBuf {
    std::env::var_os("CROWSNEST_TEST_DOCKER_SOCKET")
        .or_else(|| std::env::var_os("CROWSNEST_DOCKER_SOCKET"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// State directory of the private engine.
fn private_state() -> PathBuf {
    crate::test_env().join("control-plane")
}

/// Socket of the private engine: `CROWSNEST_CP_DOCKER_SOCKET`, else one in
/// `target/test-env/control-plane`.
fn private_socket() -> PathBuf {
    std::env::var_os("CROWSNEST_CP_DOCKER_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| private_state().join("docker.sock"))
}

impl Engine {
    /// The engine on `socket`.
    pub fn at(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            cli_config: None,
        }
    }

    /// The shared test engine, checked once per process: it answers and the
    /// test images exist (built when missing). Panics with what to run when no
    /// engine answers.
    pub fn shared() -> &'static Engine {
        static SHARED: OnceLock<Engine> = OnceLock::new();
        SHARED.get_or_init(|| {
            let engine = Engine::at(shared_socket());
            assert!(
                engine.answers(),
                "no Docker engine answers on {}: run scripts/dockerd.sh start",
                engine.socket.display()
            );
            images::ensure_test_images(&engine);
            engine
        })
    }

    /// The control-plane tests' own engine, started when none answers on its
    /// socket (and then stopped at process exit), with the test images.
    pub fn private() -> &'static Engine {
        static PRIVATE: OnceLock<Engine> = OnceLock::new();
        PRIVATE.get_or_init(|| {
            let engine = Engine::at(private_socket());
            if !engine.answers() {
                std::fs::create_dir_all(private_state()).expect("control-plane state dir");
                let status = private_dockerd("start")
                    .status()
                    .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh: {error}"));
                assert!(status.success(), "scripts/dockerd.sh start failed");
                stop_at_exit();
            }
            images::ensure_test_images(&engine);
            engine
        })
    }

    /// The same engine, with `dir` as the docker CLI configuration (logins).
    pub fn with_cli_config(&self, dir: &Path) -> Self {
        Self {
            socket: self.socket.clone(),
            cli_config: Some(dir.to_path_buf()),
        }
    }

    /// The engine's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `scripts/dockerd.sh COMMAND` for this engine.
    pub fn script(&self, command: &str) -> Command {
        let mut script = Command::new(crate::repo_root().join("scripts/dockerd.sh"));
        script
            .arg(command)
            .env("CROWSNEST_DOCKER_SOCKET", &self.socket);
        script
    }

    /// A `docker` command aimed at this engine.
    pub fn command(&self) -> Command {
        let mut command = Command::new("docker");
        if let Some(dir) = &self.cli_config {
            command.arg("--config").arg(dir);
        }
        command
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()));
        command
    }

    /// Runs `docker ARGS`; panics with its stderr on failure; returns trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let output = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run the docker CLI: {error}"));
        successful(&format!("docker {args:?}"), &output)
    }

    /// Runs `docker ARGS` with `input` on stdin and `env` added to its
    /// environment; panics with its stderr on failure; returns trimmed stdout.
    pub fn docker_with_input(&self, env: &[(&str, &str)], args: &[&str], input: &[u8]) -> String {
        let output = self
            .command()
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().expect("stdin").write_all(input)?;
                child.wait_with_output()
            })
            .unwrap_or_else(|error| panic!("cannot run the docker CLI: {error}"));
        successful(&format!("docker {args:?}"), &output)
    }

    /// Whether `docker ARGS` succeeds (output discarded).
    pub fn docker_ok(&self, args: &[&str]) -> bool {
        self.command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Whether a daemon answers on the socket.
    pub fn answers(&self) -> bool {
        self.docker_ok(&["info"])
    }

    /// `docker image inspect --format FORMAT IMAGE`.
    pub fn inspect_image(&self, image: &str, format: &str) -> String {
        self.docker(&["image", "inspect", "--format", format, image])
    }
}

/// Stdout of a successful command, trimmed; panics with `what` and its stderr otherwise.
fn successful(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `scripts/dockerd.sh COMMAND` for the private engine.
fn private_dockerd(command: &str) -> Command {
    let mut script = Engine::at(private_socket()).script(command);
    script.env("CROWSNEST_DOCKERD_STATE", private_state().join("dockerd"));
    script
}

/// Stops the private engine this process started when the process exits.
fn stop_at_exit() {
    /// Runs `scripts/dockerd.sh stop` for the private engine.
    extern "C" fn stop_private_engine() {
        // Never panic here: this runs while the process exits.
        let _ = private_dockerd("stop").stdout(Stdio::null()).status();
    }
    extern "C" {
        /// The C library's: runs `callback` when the process exits.
        fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
    }
    // SAFETY: `atexit` is the C library's; the callback is a plain function
    // that lives as long as the process and does not unwind.
    let registered = unsafe { atexit(stop_private_engine) };
    assert_eq!(registered, 0, "cannot register the private engine's stop");
}

/// A Docker engine of one test — its own socket, data root and exec root —
/// started by `scripts/dockerd.sh` and stopped (its state removed) when
/// dropped: for what must never touch the shared engine, such as Swarm mode.
pub struct OwnEngine {
    /// The engine.
    engine: Engine,
    /// Its state directory (socket, data, exec root, pid file).
    state: PathBuf,
}

impl OwnEngine {
    /// Starts an engine named after `what`, in a short temporary directory
    /// (unix socket paths are limited to 108 bytes), with the test images.
    pub fn start(what: &str) -> Self {
        let state = std::env::temp_dir().join(format!("cn-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&state).expect("engine state dir");
        let engine = Engine::at(state.join("docker.sock"));
        // Built before starting, so that a failed start is cleaned up too.
        let own = Self { engine, state };
        let status = own
            .script("start")
            .status()
            .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh: {error}"));
        assert!(
            status.success(),
            "scripts/dockerd.sh start failed for {what}"
        );
        images::ensure_test_images(&own.engine);
        own
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops the daemon and starts it again on the same state (containers,
    /// images, socket), as an engine upgrade or a host reboot does.
    pub fn restart(&self) {
        for command in ["stop", "start"] {
            let status = self
                .script(command)
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh: {error}"));
            assert!(status.success(), "scripts/dockerd.sh {command} failed");
        }
    }

    /// `scripts/dockerd.sh COMMAND` for this engine.
    fn script(&self, command: &str) -> Command {
        let mut script = self.engine.script(command);
        script.env("CROWSNEST_DOCKERD_STATE", self.state.join("dockerd"));
        script
    }
}

impl Drop for OwnEngine {
    fn drop(&mut self) {
        let _ = self
            .script("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Serialises the tests of one process that must not see each other's
/// containers: full scans on the shared engine, everything on the private one.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
