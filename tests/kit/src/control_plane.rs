//! The control-plane tests' world (`crowsnest serve`, its APIs and triggers):
//! on the private engine, a registry of their own with an app that has a
//! major update and a lib that has a minor one, a container of each, and a
//! directory for the store. All of it is removed on drop.

use std::path::PathBuf;

use crowsnest_config::Config;

use crate::containers::{Container, Containers};
use crate::engine::Engine;
use crate::registry::PrivateRegistry;

/// `cn/app` 1.0 and 2.0, `cn/lib` 1.0 and 1.1, and a container running each 1.0.
pub struct AppAndLib {
    /// The container running `cn/app:1.0`.
    pub app: Container,
    /// The container running `cn/lib:1.0`.
    pub lib: Container,
    /// `127.0.0.1:PORT/cn/app:1.0`.
    pub app_image: String,
    /// `127.0.0.1:PORT/cn/lib:1.0`.
    pub lib_image: String,
    /// The guard of these containers; run more with it.
    pub containers: Containers,
    /// The registry holding both repositories.
    pub registry: PrivateRegistry,
    /// The directory of the store.
    pub store: tempfile::TempDir,
}

impl AppAndLib {
    /// Pushes both repositories and runs the two containers.
    pub fn start() -> Self {
        let engine = Engine::private();
        let registry = PrivateRegistry::start(engine);
        let app_image = registry.push("cn/app", &["1.0", "2.0"]).remove(0);
        let lib_image = registry.push("cn/lib", &["1.0", "1.1"]).remove(0);
        let containers = control_plane_containers();
        Self {
            app: containers.run(&app_image, &[]),
            lib: containers.run(&lib_image, &[]),
            app_image,
            lib_image,
            containers,
            registry,
            store: tempfile::tempdir().expect("store dir"),
        }
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.store.path().join("crowsnest.db")
    }

    /// The text of `crowsnest serve`'s configuration on this world (see
    /// [`crate::config::serve`]).
    pub fn config_text(&self, server_extra: &str, extra: &str) -> String {
        crate::config::serve(&self.store_path(), Engine::private(), server_extra, extra)
    }

    /// [`AppAndLib::config_text`], parsed.
    pub fn config(&self, server_extra: &str, extra: &str) -> Config {
        crate::config::parse(&self.config_text(server_extra, extra))
    }

    /// Names of both containers, sorted.
    pub fn both(&self) -> Vec<String> {
        let mut both = vec![self.app.name.clone(), self.lib.name.clone()];
        both.sort();
        both
    }
}

/// Containers on the private engine, named `cn-cp-…`, labelled `crowsnest-test=1`.
pub fn control_plane_containers() -> Containers {
    Containers::new(Engine::private(), "cn-cp").with_label("crowsnest-test", "1")
}

/// `GET {base}{path}` as text (e.g. `/metrics`); panics when it cannot be read.
pub async fn get_text(http: &reqwest::Client, base: &str, path: &str) -> String {
    let what = format!("GET {path}");
    crate::ports::send_ok(http.get(format!("{base}{path}")), &what)
        .await
        .text()
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"))
}
