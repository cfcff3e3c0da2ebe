//! The FROM-scratch busybox images the tests run, and the local tags they add.
//!
//! `scripts/dockerd.sh build-images` builds `crowsnest-test/busybox:{1.0,1.1,2.0}`
//! (each version its own image id). Suites that push many tags derive images
//! of their own ([`derive`]) so that their tags never show on the shared ones.

use std::sync::Mutex;

use crate::engine::Engine;

/// The versions every test image exists in.
pub const VERSIONS: [&str; 3] = ["1.0", "1.1", "2.0"];

/// The test image of `version` (one of [`VERSIONS`]), e.g. `crowsnest-test/busybox:1.0`.
pub fn test_image(version: &str) -> String {
    derived("crowsnest-test", version)
}

/// The derived image of `namespace` and `version`: `{namespace}/busybox:{version}`.
pub fn derived(namespace: &str, version: &str) -> String {
    assert!(
        VERSIONS.contains(&version),
        "no test image of version {version} (there are {VERSIONS:?})"
    );
    format!("{namespace}/busybox:{version}")
}

/// The scan tests' images: one label on top of the test images.
pub const E2E_1_0: &str = "crowsnest-e2e/busybox:1.0";
/// See [`E2E_1_0`].
pub const E2E_1_1: &str = "crowsnest-e2e/busybox:1.1";
/// See [`E2E_1_0`].
pub const E2E_2_0: &str = "crowsnest-e2e/busybox:2.0";

/// Builds the test images on `engine` with `scripts/dockerd.sh build-images`
/// unless they all exist.
pub fn ensure_test_images(engine: &Engine) {
    if VERSIONS
        .iter()
        .all(|version| engine.docker_ok(&["image", "inspect", &test_image(version)]))
    {
        return;
    }
    let status = engine
        .script("build-images")
        .status()
        .unwrap_or_else(|error| panic!("cannot run scripts/dockerd.sh build-images: {error}"));
    assert!(status.success(), "scripts/dockerd.sh build-images failed");
}

/// Builds `{namespace}/busybox:{version}` for every version unless present:
/// `FROM` the test image plus the label `{namespace}-base`, which gives it an
/// image id of its own. Returns the images in [`VERSIONS`] order.
pub fn derive(engine: &Engine, namespace: &str) -> Vec<String> {
    ensure_test_images(engine);
    VERSIONS
        .iter()
        .map(|version| {
            let image = derived(namespace, version);
            if !engine.docker_ok(&["image", "inspect", &image]) {
                let dockerfile = format!(
                    "FROM {}\nLABEL {namespace}-base=\"{image}\"\n",
                    test_image(version)
                );
                build(engine, &image, &dockerfile);
            }
            image
        })
        .collect()
}

/// Builds `tag` from `dockerfile` (no context: `FROM` a local image plus
/// instructions) with the legacy builder: no BuildKit, no network.
pub fn build(engine: &Engine, tag: &str, dockerfile: &str) {
    engine.docker_with_input(
        &[("DOCKER_BUILDKIT", "0")],
        &["build", "--quiet", "--tag", tag, "-"],
        dockerfile.as_bytes(),
    );
}

/// Local image tags a test adds, removed on drop with every local reference
/// (tags and `RepoDigests`) of their repositories, also when the test panics.
pub struct LocalImages {
    /// Where the tags are.
    engine: Engine,
    /// Tags added.
    tags: Mutex<Vec<String>>,
    /// Repositories whose every local reference goes on drop.
    repositories: Mutex<Vec<String>>,
}

impl LocalImages {
    /// Nothing recorded yet, on `engine`.
    pub fn new(engine: &Engine) -> Self {
        Self {
            engine: engine.clone(),
            tags: Mutex::default(),
            repositories: Mutex::default(),
        }
    }

    /// `docker tag SOURCE TARGET`, recorded.
    pub fn tag(&self, source: &str, target: &str) {
        self.engine.docker(&["tag", source, target]);
        self.tags.lock().expect("lock").push(target.to_owned());
        self.remember(target);
    }

    /// Records `tag`, made some other way (a build), to remove on drop.
    pub fn adopt(&self, tag: &str) {
        self.tags.lock().expect("lock").push(tag.to_owned());
        self.remember(tag);
    }

    /// `docker push --quiet REFERENCE`; returns the manifest digest pushed.
    pub fn push(&self, reference: &str) -> String {
        let output = self.engine.docker(&["push", reference]);
        output
            .lines()
            .rev()
            .find_map(|line| line.split("digest: ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!("no digest in the output of docker push {reference}: {output}")
            })
    }

    /// `docker pull --quiet REFERENCE`, its repository recorded.
    pub fn pull(&self, reference: &str) {
        self.engine.docker(&["pull", "--quiet", reference]);
        self.remember(reference);
    }

    /// Records the repository of `reference` so that the digest references a
    /// push or pull leaves on the local images go on drop.
    pub fn remember(&self, reference: &str) {
        let repository = repository_of(reference);
        let mut repositories = self.repositories.lock().expect("lock");
        if !repositories.iter().any(|known| known == repository) {
            repositories.push(repository.to_owned());
        }
    }
}

/// The repository of `name[:tag][@digest]` (a registry `host:port` kept whole).
pub fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    }
}

impl Drop for LocalImages {
    fn drop(&mut self) {
        let tags = std::mem::take(&mut *self.tags.lock().unwrap_or_else(|e| e.into_inner()));
        for tag in tags {
            // The tag may already be gone (retagged by another step); that is fine.
            let _ = self.engine.docker_ok(&["rmi", "--no-prune", &tag]);
        }
        let repositories =
            std::mem::take(&mut *self.repositories.lock().unwrap_or_else(|e| e.into_inner()));
        for repository in repositories {
            let Ok(listed) = self
                .engine
                .command()
                .args([
                    "images",
                    "--digests",
                    "--no-trunc",
                    "--format",
                    "{{.Repository}} {{.Tag}} {{.Digest}}",
                    &repository,
                ])
                .output()
            else {
                continue;
            };
            for line in String::from_utf8_lossy(&listed.stdout).lines() {
                let mut fields = line.split_whitespace();
                let (Some(name), Some(tag), Some(digest)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                if tag != "<none>" {
                    let _ = self
                        .engine
                        .docker_ok(&["rmi", "--no-prune", &format!("{name}:{tag}")]);
                }
                if digest != "<none>" {
                    let _ =
                        self.engine
                            .docker_ok(&["rmi", "--no-prune", &format!("{name}@{digest}")]);
                }
            }
        }
    }
}
