//! One test's slice of the shared test world: the shared engine with a docker
//! CLI configuration of its own (registry logins), the loopback registries,
//! repositories and containers named after the test, a temporary directory
//! (configs, store), and the cleanup of all of it on drop.
//!
//! Tests of many binaries run in parallel against the one engine and the
//! shared registries: everything here is named uniquely to the calling test.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crowsnest_engine::scan::Scanner;
use crowsnest_model::ScanReport;

use crate::binary::Crowsnest;
use crate::containers::{Container, Containers};
use crate::engine::Engine;
use crate::images::{self, LocalImages};
use crate::registry::{Registries, RegistryApi};
use crate::scans::images;

/// Label every container of a [`TestWorld`] carries; its value is the world's id.
pub const WORLD_LABEL: &str = "crowsnest-e2e";

/// One test's slice of the world, removed on drop (also when the test panics).
pub struct TestWorld {
    /// Unique id; containers carry it in [`WORLD_LABEL`], repositories start with it.
    pub id: String,
    /// The loopback registries.
    pub registries: Registries,
    /// The shared engine, with this test's docker CLI configuration.
    pub engine: Engine,
    /// The binary, when the test gave its path.
    crowsnest: Option<Crowsnest>,
    // Guards before the directory: they use the CLI configuration in it.
    /// This test's containers.
    containers: Containers,
    /// This test's local tags.
    images: LocalImages,
    /// Configs, store, docker CLI configuration.
    dir: tempfile::TempDir,
}

impl TestWorld {
    /// A fresh slice named after `test`; the scan tests' images exist.
    pub fn new(test: &str) -> Self {
        static E2E_IMAGES: OnceLock<()> = OnceLock::new();
        let shared = Engine::shared();
        E2E_IMAGES.get_or_init(|| {
            images::derive(shared, "crowsnest-e2e");
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let cli_config = dir.path().join("docker");
        std::fs::create_dir_all(&cli_config).expect("docker config dir");
        let engine = shared.with_cli_config(&cli_config);
        let id = crate::unique(test);
        Self {
            registries: Registries::get().clone(),
            containers: Containers::new(&engine, "e2e").with_own_label(WORLD_LABEL, &id),
            images: LocalImages::new(&engine),
            crowsnest: None,
            engine,
            id,
            dir,
        }
    }

    /// The same world, able to run the `crowsnest` binary at `path`.
    pub fn with_crowsnest(mut self, path: impl Into<PathBuf>) -> Self {
        self.crowsnest = Some(Crowsnest::at(path));
        self
    }

    /// The temp directory of this test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `docker ARGS` with this test's CLI configuration.
    pub fn docker(&self, args: &[&str]) -> String {
        self.engine.docker(args)
    }

    /// A repository name unique to this test, e.g. `update-4711-…-0/app`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.id)
    }

    /// `docker login` (into this test's own CLI configuration).
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        self.engine.docker_with_input(
            &[],
            &["login", "--username", user, "--password-stdin", registry],
            password.as_bytes(),
        );
    }

    /// Tags `source` (a local image) as `target`; the tag goes on drop.
    pub fn tag(&self, source: &str, target: &str) {
        self.images.tag(source, target);
    }

    /// Tags `source` as `target` (`host:port/repo:tag`) and pushes it; returns
    /// the manifest digest the registry stored.
    pub fn push(&self, source: &str, target: &str) -> String {
        self.images.tag(source, target);
        self.images.push(target)
    }

    /// `{plain registry}/{repository(name)}`: an image on the plain registry,
    /// unique to this test.
    pub fn plain_image(&self, name: &str) -> String {
        format!("{}/{}", self.registries.plain, self.repository(name))
    }

    /// Pushes `source` as `{image}:{tag}` for each `(tag, source)`; returns
    /// the digests, in order.
    pub fn push_tags(&self, image: &str, tags: &[(&str, &str)]) -> Vec<String> {
        tags.iter()
            .map(|(tag, source)| self.push(source, &format!("{image}:{tag}")))
            .collect()
    }

    /// `docker pull` (its local references go on drop).
    pub fn pull(&self, reference: &str) {
        self.images.pull(reference);
    }

    /// `docker run --detach` with the world label plus `labels`; returns the container id.
    pub fn run(&self, image: &str, labels: &[(&str, &str)]) -> String {
        self.containers.run(image, labels).id
    }

    /// `docker run --detach OPTIONS… IMAGE` with the world label plus
    /// `labels` (`--network none` unless `options` name a network).
    pub fn run_with(&self, options: &[&str], image: &str, labels: &[(&str, &str)]) -> Container {
        self.containers.run_with(options, image, labels)
    }

    /// A user-defined bridge network of this test: (name, subnet prefix `a.b.c.`).
    pub fn network(&self) -> (String, String) {
        self.containers.network()
    }

    /// A named volume of this test.
    pub fn volume(&self) -> String {
        self.containers.volume()
    }

    /// Records a volume made some other way (an anonymous one) to remove at the end.
    pub fn adopt_volume(&self, name: &str) {
        self.containers.adopt_volume(name);
    }

    /// Builds `tag` from `dockerfile` (`FROM` a local image); the tag goes on drop.
    pub fn build(&self, tag: &str, dockerfile: &str) {
        images::build(&self.engine, tag, dockerfile);
        self.images.adopt(tag);
    }

    /// `docker create` (never started); returns the container id.
    pub fn create(&self, image: &str, labels: &[(&str, &str)]) -> String {
        self.containers.create(image, labels).id
    }

    /// Stops a container (fast: no grace period).
    pub fn stop(&self, id: &str) {
        self.containers.stop(id);
    }

    /// Removes a container now.
    pub fn remove(&self, id: &str) {
        self.containers.remove(id);
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
        let full = format!(
            "{}{}{text}",
            crate::config::store(&self.dir().join("store.db")),
            crate::config::hub(&self.registries),
        );
        crate::config::write(self.dir(), file, &full)
    }

    /// A scanner built from the config file at `path`.
    pub async fn scanner(&self, path: &Path) -> Scanner {
        match Scanner::new(&crate::config::load(path)).await {
            Ok(scanner) => scanner,
            Err(err) => panic!("scanner setup failed: {err}"),
        }
    }

    /// One scan of the containers of `patterns` (none: all) by a fresh
    /// scanner of the config file at `path`.
    pub async fn scan(&self, path: &Path, patterns: &[&str]) -> ScanReport {
        self.scanner(path).await.scan(&images(patterns)).await
    }

    /// Runs `crowsnest --config PATH ARGS…` in the temp dir.
    pub fn crowsnest(&self, config: &Path, args: &[&str]) -> Output {
        self.crowsnest
            .as_ref()
            .expect("TestWorld::with_crowsnest(env!(\"CARGO_BIN_EXE_crowsnest\")) first")
            .run_with_config(self.dir(), config, args)
    }

    /// The registry HTTP API of `registry` (`host:port`), anonymously.
    pub fn registry_api(&self, registry: &str) -> RegistryApi {
        RegistryApi::new(registry)
    }
}
