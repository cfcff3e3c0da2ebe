//! A watcher on Podman's Docker-compatible API, end to end: Debian's real
//! `podman system service` on a unix socket in a temp dir (its own storage,
//! `vfs`, nothing shared with the host's Podman), a container created by
//! Podman from an image it pulled from the loopback registry, and a full scan
//! through that socket that finds the container's update.
//!
//! Needs `podman` (installed by `scripts/test.sh`), `scripts/dockerd.sh start`
//! (the test world pushes its images with Docker) and `scripts/registries.sh start`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crowsnest::model::ScanRequest;
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1, E2E_2_0};
use crowsnest_testkit::scans::{assert_tag_update, container};
use crowsnest_testkit::world::TestWorld;

/// `podman system service` with private storage, stopped (and its storage
/// removed with the temp dir) on drop.
struct PodmanService {
    dir: tempfile::TempDir,
    service: Child,
    socket: PathBuf,
}

impl PodmanService {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("run")).expect("runtime dir");
        let socket = dir.path().join("podman.sock");
        let service = Self::command(dir.path())
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman is installed (scripts/test.sh installs it)");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "podman system service did not create {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            dir,
            service,
            socket,
        }
    }

    /// `podman` with this service's storage.
    fn command(dir: &Path) -> Command {
        let mut command = Command::new("podman");
        command
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"]);
        command
    }

    /// Runs `podman ARGS…`; its trimmed stdout.
    fn podman(&self, args: &[&str]) -> String {
        let output = Self::command(self.dir.path())
            .args(args)
            .output()
            .expect("run podman");
        assert!(
            output.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = Self::command(self.dir.path())
            .args(["rm", "--all", "--force"])
            .output();
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_podman_watcher_finds_updates_through_the_docker_compatible_socket() {
    let world = TestWorld::new("podman");
    let app = world.plain_image("app");
    world.push_tags(
        &app,
        &[("1.0", E2E_1_0), ("1.1", E2E_1_1), ("2.0", E2E_2_0)],
    );
    let podman = PodmanService::start();
    let image = format!("{app}:1.0");
    podman.podman(&["pull", "--quiet", "--tls-verify=false", &image]);
    let id = podman.podman(&[
        "create",
        "--network",
        "none",
        "--label",
        "crowsnest.watch=true",
        &image,
    ]);

    let config = world.config(&format!(
        "[watchers.podman]\nsocket = \"{}\"\nwatch_all = true\nwatch_by_default = false\n",
        podman.socket.display()
    ));
    let scanner = world.scanner(&config).await;
    let report = scanner.scan(&ScanRequest::default()).await;
    assert!(
        report.watcher_errors.is_empty(),
        "{:?}",
        report.watcher_errors
    );
    let found = container(&report, &id);
    assert_eq!(found.watcher, "podman");
    assert_eq!(found.image.reference, image);
    assert_tag_update(found, "1.0", "2.0", "major");
    assert!(
        found.error.is_none(),
        "a Podman container checks like a Docker one: {:?}",
        found.error
    );
}
