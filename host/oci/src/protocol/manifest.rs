//! Manifest media types, index documents and platform selection.

use std::collections::HashMap;

use serde::Deserialize;

use crate::Platform;

/// Docker manifest list (multi-arch).
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `Accept` header for manifest requests: every manifest and index type we read.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json";

/// Whether `media_type` is a multi-platform index (OCI index or Docker manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single image manifest we can read a config from.
pub(crate) fn is_image_manifest_media_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// Media type without parameters, lowercase (`application/json; charset=utf-8` → `application/json`).
pub(crate) fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The fields of a manifest or index we read.
#[derive(Debug, Deserialize)]
pub(crate) struct ManifestDocument {
    #[serde(rename = "mediaType")]
    pub media_type: Option<String>,
    pub manifests: Option<Vec<IndexEntry>>,
    pub config: Option<Descriptor>,
}

impl ManifestDocument {
    /// Media type from the document itself, or guessed from its shape.
    pub fn effective_media_type(&self) -> Option<&str> {
        match (&self.media_type, &self.manifests, &self.config) {
            (Some(media_type), _, _) => Some(media_type),
            (None, Some(_), _) => Some(MEDIA_TYPE_OCI_INDEX),
            (None, None, Some(_)) => Some(MEDIA_TYPE_OCI_MANIFEST),
            (None, None, None) => None,
        }
    }
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    pub digest: String,
}

/// Platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EntryPlatform {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
}

/// One entry of an image index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    /// Media type of the referenced manifest.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// Digest of the referenced manifest.
    pub digest: String,
    /// Platform it runs on.
    #[serde(default)]
    pub platform: Option<EntryPlatform>,
    /// Annotations (BuildKit marks attestations here).
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

impl IndexEntry {
    /// BuildKit attestation manifests (`unknown/unknown` or the reference-type annotation).
    pub fn is_attestation(&self) -> bool {
        let unknown_platform = self
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
        unknown_platform
            || self
                .annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|kind| kind == "attestation-manifest")
    }
}

/// The variant an entry without one has, as containerd normalises it:
/// `arm64` → `v8`, `arm` → `v7`; other architectures have none.
fn implied_variant(architecture: &str) -> Option<&'static str> {
    match architecture {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// Selects the manifest for `wanted` among index entries, skipping attestations.
/// An exact variant match wins; an entry without variant matches a wanted
/// variant only when it is the architecture's implied one (arm64 → v8, arm →
/// v7); with no wanted variant, the implied one is preferred, then the first.
pub fn select_platform<'a>(entries: &'a [IndexEntry], wanted: &Platform) -> Option<&'a IndexEntry> {
    let candidates: Vec<(&IndexEntry, &EntryPlatform)> = entries
        .iter()
        .filter(|entry| !entry.is_attestation())
        .filter_map(|entry| entry.platform.as_ref().map(|platform| (entry, platform)))
        .filter(|(_, platform)| {
            platform.os == wanted.os && platform.architecture == wanted.architecture
        })
        .collect();
    let implied = implied_variant(&wanted.architecture);
    let effective = |platform: &EntryPlatform| -> Option<String> {
        platform
            .variant
            .clone()
            .filter(|variant| !variant.is_empty())
            .or_else(|| implied.map(str::to_string))
    };
    match &wanted.variant {
        Some(variant) => candidates
            .iter()
            .find(|(_, platform)| platform.variant.as_deref() == Some(variant.as_str()))
            .or_else(|| {
                candidates
                    .iter()
                    .find(|(_, platform)| effective(platform).as_deref() == Some(variant.as_str()))
            })
            .map(|(entry, _)| *entry),
        None => candidates
            .iter()
            .find(|(_, platform)| effective(platform).as_deref() == implied)
            .or_else(|| candidates.first())
            .map(|(entry, _)| *entry),
    }
}

/// The entry used for the creation date when no platform was asked for: the
/// first that is not an attestation.
pub(crate) fn first_image_entry(entries: &[IndexEntry]) -> Option<&IndexEntry> {
    entries.iter().find(|entry| !entry.is_attestation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, os: &str, architecture: &str, variant: Option<&str>) -> IndexEntry {
        IndexEntry {
            media_type: Some(MEDIA_TYPE_OCI_MANIFEST.into()),
            digest: digest.into(),
            platform: Some(EntryPlatform {
                architecture: architecture.into(),
                os: os.into(),
                variant: variant.map(str::to_string),
            }),
            annotations: HashMap::new(),
        }
    }

    fn attestation(digest: &str, platform_unknown: bool) -> IndexEntry {
        let mut entry = if platform_unknown {
            entry(digest, "unknown", "unknown", None)
        } else {
            entry(digest, "linux", "amd64", None)
        };
        entry.annotations.insert(
            "vnd.docker.reference.type".into(),
            "attestation-manifest".into(),
        );
        entry
    }

    #[test]
    fn selects_by_os_architecture_and_variant() {
        let entries = vec![
            attestation("att1", true),
            attestation("att2", false),
            entry("amd64", "linux", "amd64", None),
            entry("armv6", "linux", "arm", Some("v6")),
            entry("armv7", "linux", "arm", Some("v7")),
            entry("arm64", "linux", "arm64", None),
            entry("win", "windows", "amd64", None),
        ];
        let pick =
            |platform: Platform| select_platform(&entries, &platform).map(|e| e.digest.clone());
        assert_eq!(
            pick(Platform::new("linux", "amd64")).as_deref(),
            Some("amd64")
        );
        assert_eq!(
            pick(Platform::new("windows", "amd64")).as_deref(),
            Some("win")
        );
        assert_eq!(
            pick(Platform::new("linux", "arm").with_variant("v7")).as_deref(),
            Some("armv7")
        );
        assert_eq!(
            pick(Platform::new("linux", "arm").with_variant("v6")).as_deref(),
            Some("armv6")
        );
        assert_eq!(pick(Platform::new("linux", "arm").with_variant("v5")), None);
        assert_eq!(
            pick(Platform::new("linux", "arm")).as_deref(),
            Some("armv7")
        );
        assert_eq!(
            pick(Platform::new("linux", "arm64").with_variant("v8")).as_deref(),
            Some("arm64")
        );
        assert_eq!(
            pick(Platform::new("linux", "arm64")).as_deref(),
            Some("arm64")
        );
        assert_eq!(pick(Platform::new("linux", "s390x")), None);
        assert_eq!(pick(Platform::new("unknown", "unknown")), None);
    }

    #[test]
    fn attestations_are_never_selected() {
        let entries = vec![
            attestation("att", false),
            entry("real", "linux", "amd64", None),
        ];
        let selected = select_platform(&entries, &Platform::new("linux", "amd64")).unwrap();
        assert_eq!(selected.digest, "real");
        assert_eq!(first_image_entry(&entries).unwrap().digest, "real");
    }

    #[test]
    fn media_type_helpers() {
        assert_eq!(
            bare_media_type("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert!(is_index_media_type(MEDIA_TYPE_DOCKER_MANIFEST_LIST));
        assert!(is_index_media_type(MEDIA_TYPE_OCI_INDEX));
        assert!(!is_index_media_type(MEDIA_TYPE_OCI_MANIFEST));
        let document: ManifestDocument =
            serde_json::from_str(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert_eq!(document.effective_media_type(), Some(MEDIA_TYPE_OCI_INDEX));
    }
}
