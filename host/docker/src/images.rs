//! What discovery needs to know of the images containers run, at the cost of
//! one image listing per engine and scan: names (`RepoTags`, `RepoDigests`)
//! come from `GET /images/json`; the platform and creation time, which the
//! listing lacks, are immutable per image id (the id is the digest of the
//! image config that holds them), so they are inspected once per id and
//! process and cached.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use bollard::models::ImageInspect;
use bollard::query_parameters::ListImagesOptions;
use futures::StreamExt;

use crate::DockerWatcher;

/// How many image inspections run at once against one engine.
const INSPECT_CONCURRENCY: usize = 8;

/// Image ids whose platform is cached before the cache starts over (a few
/// hundred bytes each; far above any real engine's image count).
const PLATFORM_CACHE_CAPACITY: usize = 100_000;

/// Names the engine shows for an image it has no name for (API < 1.44).
const NO_NAME: [&str; 2] = ["<none>:<none>", "<none>@<none>"];

/// The immutable part of an image's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlatformFacts {
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    created: Option<String>,
}

/// Platforms by image id, shared by every watcher of the process.
static PLATFORMS: LazyLock<Mutex<HashMap<String, PlatformFacts>>> = LazyLock::new(Mutex::default);

fn cached_platform(image_id: &str) -> Option<PlatformFacts> {
    PLATFORMS
        .lock()
        .ok()
        .and_then(|platforms| platforms.get(image_id).cloned())
}

fn cache_platform(image_id: &str, facts: &PlatformFacts) {
    if let Ok(mut platforms) = PLATFORMS.lock() {
        if platforms.len() >= PLATFORM_CACHE_CAPACITY {
            platforms.clear();
        }
        platforms.insert(image_id.to_string(), facts.clone());
    }
}

/// What discovery reports of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageFacts {
    /// `RepoTags` (`name:tag`).
    pub repo_tags: Vec<String>,
    /// `RepoDigests` (`name@sha256:…`).
    pub repo_digests: Vec<String>,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: Option<String>,
    /// Operating system, e.g. `linux`.
    pub os: Option<String>,
    /// Architecture variant, e.g. `v8`.
    pub variant: Option<String>,
    /// Creation time as the engine reports it on inspection (RFC 3339).
    pub created: Option<String>,
}

impl ImageFacts {
    fn from_inspection(image: ImageInspect) -> (Self, PlatformFacts) {
        let platform = PlatformFacts {
            architecture: image.architecture,
            os: image.os,
            variant: image.variant,
            created: image.created,
        };
        let facts = Self::named(
            image.repo_tags.unwrap_or_default(),
            image.repo_digests.unwrap_or_default(),
            platform.clone(),
        );
        (facts, platform)
    }

    fn named(repo_tags: Vec<String>, repo_digests: Vec<String>, platform: PlatformFacts) -> Self {
        let named = |names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .filter(|name| !NO_NAME.contains(&name.as_str()))
                .collect()
        };
        Self {
            repo_tags: named(repo_tags),
            repo_digests: named(repo_digests),
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            created: platform.created,
        }
    }
}

/// Facts, or why they could not be had, by image id.
pub(crate) type ImageFactsById = HashMap<String, Result<ImageFacts, String>>;

impl DockerWatcher {
    /// Facts of every image in `image_ids`: one listing for the names, an
    /// inspection only for an image whose platform is not cached yet or that
    /// the listing missed (or all of them when the listing fails).
    pub(crate) async fn image_facts(&self, image_ids: HashSet<String>) -> ImageFactsById {
        let mut names: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
        match self
            .docker
            .list_images(Some(ListImagesOptions {
                all: false,
                ..Default::default()
            }))
            .await
        {
            Ok(listed) => {
                for image in listed.into_iter().filter(|i| image_ids.contains(&i.id)) {
                    names.insert(image.id, (image.repo_tags, image.repo_digests));
                }
            }
            Err(error) => {
                tracing::warn!(watcher = %self.name, %error, "image listing failed; inspecting each image");
            }
        }
        let mut facts = ImageFactsById::with_capacity(image_ids.len());
        let mut to_inspect = Vec::new();
        for image_id in image_ids {
            match (names.remove(&image_id), cached_platform(&image_id)) {
                (Some((tags, digests)), Some(platform)) => {
                    facts.insert(image_id, Ok(ImageFacts::named(tags, digests, platform)));
                }
                _ => to_inspect.push(image_id),
            }
        }
        facts.extend(self.inspect_images(to_inspect).await);
        facts
    }

    /// Inspects each image (a bounded number at a time) and caches its platform.
    pub(crate) async fn inspect_images(
        &self,
        image_ids: impl IntoIterator<Item = String>,
    ) -> ImageFactsById {
        futures::stream::iter(image_ids)
            .map(|image_id| async move {
                let inspected = match self.docker.inspect_image(&image_id).await {
                    Ok(image) => {
                        let (facts, platform) = ImageFacts::from_inspection(image);
                        cache_platform(&image_id, &platform);
                        Ok(facts)
                    }
                    Err(error) => Err(format!(
                        "watcher `{}`: inspecting image {image_id} failed: {error}",
                        self.name
                    )),
                };
                (image_id, inspected)
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_images_have_no_names_and_platforms_are_cached() {
        let platform = PlatformFacts {
            architecture: Some("amd64".into()),
            os: Some("linux".into()),
            variant: None,
            created: Some("2026-01-01T00:00:00Z".into()),
        };
        let facts = ImageFacts::named(
            vec!["<none>:<none>".into(), "app:1".into()],
            vec!["<none>@<none>".into()],
            platform.clone(),
        );
        assert_eq!(facts.repo_tags, ["app:1"]);
        assert!(facts.repo_digests.is_empty());
        assert_eq!(facts.architecture.as_deref(), Some("amd64"));
        cache_platform("sha256:test-only", &platform);
        assert_eq!(cached_platform("sha256:test-only"), Some(platform));
        assert_eq!(cached_platform("sha256:never-seen"), None);
    }
}
