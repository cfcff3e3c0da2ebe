//! Protocol: the OCI distribution v2 operations a scan needs — tag listing
//! with `Link` pagination, manifest HEAD/GET with digest checks, index →
//! platform selection, and the config blob for creation dates. Built on the
//! auth layer; every answer the spec does not allow is a typed error.

pub(crate) mod manifest;

use std::collections::HashSet;

use reqwest::header::{CONTENT_TYPE, LINK};
use reqwest::Method;
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::client::RegistryClient;
use crate::errors::NotFoundMeans;
use crate::headers::next_link;
use crate::reference;
use crate::target::Target;
use crate::{Auth, Location, ManifestInfo, Platform, RegistryError};
use manifest::{
    bare_media_type, first_image_entry, is_image_manifest_media_type, is_index_media_type,
    select_platform, ManifestDocument, MANIFEST_ACCEPT, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};

/// Header carrying the manifest digest.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A manifest fetched with GET, digest checked.
struct FetchedManifest {
    digest: String,
    media_type: String,
    document: ManifestDocument,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    created: Option<String>,
}

impl RegistryClient {
    /// All tags of the repository, every `Link: rel="next"` page followed.
    pub async fn list_tags(
        &self,
        location: &Location,
        auth: &Auth,
    ) -> Result<Vec<String>, RegistryError> {
        let target = self.target(location)?;
        let config = &self.config();
        let mut url = target.endpoint(&format!("v2/{}/tags/list", target.repository))?;
        if let Some(page_size) = config.tag_page_size {
            url.query_pairs_mut()
                .append_pair("n", &page_size.to_string());
        }
        let mut tags = Vec::new();
        let mut visited = HashSet::new();
        let mut bytes_read = 0usize;
        loop {
            if visited.len() >= config.max_tag_pages {
                return Err(RegistryError::Protocol(format!(
                    "tag list of {} has more than {} pages",
                    target.display(),
                    config.max_tag_pages
                )));
            }
            if !visited.insert(url.to_string()) {
                return Err(RegistryError::Protocol(format!(
                    "tag list pagination of {} loops back to {url}",
                    target.display()
                )));
            }
            let sent = self
                .auth()
                .authorized(
                    &*self.policy,
                    &target,
                    Method::GET,
                    &url,
                    Some("application/json"),
                    auth,
                )
                .await?;
            if !sent.status().is_success() {
                return Err(sent.into_error(NotFoundMeans::Name).await);
            }
            let links: Vec<String> = sent
                .response
                .headers()
                .get_all(LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(str::to_string)
                .collect();
            let what = sent.what();
            let body = sent
                .body(config.max_tag_list_bytes.saturating_sub(bytes_read))
                .await?;
            bytes_read += body.len();
            let page: TagList = serde_json::from_slice(&body).map_err(|error| {
                RegistryError::Protocol(format!("{what}: invalid tag list JSON: {error}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = next_link(links.iter().map(String::as_str)) else {
                break;
            };
            let next_url = url.join(&next).map_err(|error| {
                RegistryError::Protocol(format!("{what}: invalid next link {next:?}: {error}"))
            })?;
            if next_url.origin() != target.base.origin() {
                return Err(RegistryError::Protocol(format!(
                    "{what}: next link {next:?} leaves the registry origin {}; not followed",
                    target.origin
                )));
            }
            url = next_url;
        }
        tracing::debug!(repository = %target.display(), count = tags.len(), "listed tags");
        Ok(tags)
    }

    /// Resolves `reference` (tag or digest) with a manifest HEAD. With a
    /// platform and an index, selects that platform's manifest (attestations
    /// skipped). `with_created` reads the creation date from the config blob
    /// (of the selected manifest, or the first image of an index when no
    /// platform is given).
    pub async fn resolve(
        &self,
        location: &Location,
        reference: &str,
        auth: &Auth,
        platform: Option<&Platform>,
        with_created: bool,
    ) -> Result<ManifestInfo, RegistryError> {
        let target = self.target(location)?;
        validate_manifest_reference(reference)?;
        let url = target.endpoint(&format!("v2/{}/manifests/{reference}", target.repository))?;
        let head = self
            .auth()
            .authorized(
                &*self.policy,
                &target,
                Method::HEAD,
                &url,
                Some(MANIFEST_ACCEPT),
                auth,
            )
            .await?;
        let mut fetched: Option<FetchedManifest> = None;
        let head_answer = if head.status().is_success() {
            let digest = head
                .header(DOCKER_CONTENT_DIGEST)
                .filter(|digest| reference::validate_digest(digest).is_ok());
            let media_type = head
                .header(CONTENT_TYPE.as_str())
                .map(|value| bare_media_type(&value))
                .filter(|media_type| is_known_manifest_type(media_type));
            digest.zip(media_type)
        } else {
            // HEAD answers carry no error body: the GET below tells NAME_UNKNOWN
            // from MANIFEST_UNKNOWN, and serves registries that refuse HEAD.
            tracing::debug!(status = head.status().as_u16(), url = %url, "manifest HEAD failed, trying GET");
            None
        };
        drop(head);
        let (digest, media_type) = match head_answer {
            Some(answer) => answer,
            None => {
                let manifest = self.fetch_manifest(&target, reference, auth).await?;
                let answer = (manifest.digest.clone(), manifest.media_type.clone());
                fetched = Some(manifest);
                answer
            }
        };

        let mut platform_digest = None;
        let mut image_digest = (!is_index_media_type(&media_type)).then(|| digest.clone());
        if is_index_media_type(&media_type) && (platform.is_some() || with_created) {
            let index = match fetched.take() {
                Some(manifest) => manifest,
                None => self.fetch_manifest(&target, &digest, auth).await?,
            };
            let entries = index.document.manifests.unwrap_or_default();
            match platform {
                Some(wanted) => {
                    let entry = select_platform(&entries, wanted).ok_or_else(|| {
                        RegistryError::ManifestUnknown(format!(
                            "{}:{reference} ({digest}) has no manifest for platform {wanted}",
                            target.display()
                        ))
                    })?;
                    platform_digest = Some(entry.digest.clone());
                    image_digest = Some(entry.digest.clone());
                }
                None => {
                    image_digest = first_image_entry(&entries).map(|entry| entry.digest.clone())
                }
            }
            if let Some(selected) = &image_digest {
                reference::validate_digest(selected).map_err(|error| {
                    RegistryError::Protocol(format!(
                        "index {digest} lists an invalid digest: {error}"
                    ))
                })?;
            }
        }

        let created = match (with_created, image_digest) {
            (false, _) => None,
            (true, None) => {
                tracing::debug!(digest = %digest, "index has no image manifest; no creation date");
                None
            }
            (true, Some(image_digest)) => {
                let manifest = match fetched.take() {
                    Some(manifest) if manifest.digest == image_digest => manifest,
                    _ => self.fetch_manifest(&target, &image_digest, auth).await?,
                };
                self.created_from_config(&target, &manifest, auth).await?
            }
        };
        Ok(ManifestInfo {
            digest,
            media_type,
            platform_digest,
            created,
        })
    }

    async fn created_from_config(
        &self,
        target: &Target,
        manifest: &FetchedManifest,
        auth: &Auth,
    ) -> Result<Option<String>, RegistryError> {
        if !is_image_manifest_media_type(&manifest.media_type) {
            tracing::debug!(media_type = %manifest.media_type, "not an image manifest; no creation date");
            return Ok(None);
        }
        let config = manifest.document.config.as_ref().ok_or_else(|| {
            RegistryError::Protocol(format!("image manifest {} has no config", manifest.digest))
        })?;
        reference::validate_digest(&config.digest).map_err(|error| {
            RegistryError::Protocol(format!(
                "manifest {} has an invalid config digest: {error}",
                manifest.digest
            ))
        })?;
        let url = target.endpoint(&format!("v2/{}/blobs/{}", target.repository, config.digest))?;
        let sent = self
            .auth()
            .authorized(&*self.policy, target, Method::GET, &url, None, auth)
            .await?;
        if !sent.status().is_success() {
            return Err(sent.into_error(NotFoundMeans::Manifest).await);
        }
        let what = sent.what();
        let body = sent.body(self.config().max_config_bytes).await?;
        if !digest_matches(&body, &config.digest) {
            return Err(RegistryError::Protocol(format!(
                "{what}: config blob does not hash to {}",
                config.digest
            )));
        }
        let parsed: ImageConfig = serde_json::from_slice(&body).map_err(|error| {
            RegistryError::Protocol(format!("{what}: invalid image config JSON: {error}"))
        })?;
        Ok(parsed.created)
    }

    /// GETs a manifest or index and checks its digest.
    async fn fetch_manifest(
        &self,
        target: &Target,
        reference: &str,
        auth: &Auth,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = target.endpoint(&format!("v2/{}/manifests/{reference}", target.repository))?;
        let sent = self
            .auth()
            .authorized(
                &*self.policy,
                target,
                Method::GET,
                &url,
                Some(MANIFEST_ACCEPT),
                auth,
            )
            .await?;
        if !sent.status().is_success() {
            return Err(sent.into_error(NotFoundMeans::Manifest).await);
        }
        let what = sent.what();
        let header_digest = sent.header(DOCKER_CONTENT_DIGEST);
        let content_type = sent
            .header(CONTENT_TYPE.as_str())
            .map(|value| bare_media_type(&value));
        let body = sent.body(self.config().max_manifest_bytes).await?;
        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        let digest = if reference::validate_digest(reference).is_ok() {
            if !digest_matches(&body, reference) {
                return Err(RegistryError::Protocol(format!(
                    "{what}: manifest does not hash to {reference}"
                )));
            }
            reference.to_string()
        } else {
            match header_digest.filter(|digest| reference::validate_digest(digest).is_ok()) {
                Some(reported) if digest_matches(&body, &reported) => reported,
                Some(reported) => {
                    return Err(RegistryError::Protocol(format!(
                    "{what}: Docker-Content-Digest {reported} does not match the body ({computed})"
                )))
                }
                None => computed,
            }
        };
        let document: ManifestDocument = serde_json::from_slice(&body).map_err(|error| {
            RegistryError::Protocol(format!("{what}: invalid manifest JSON: {error}"))
        })?;
        let media_type = content_type
            .filter(|media_type| is_known_manifest_type(media_type))
            .or_else(|| document.effective_media_type().map(str::to_string))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "{what}: manifest has no recognisable media type"
                ))
            })?;
        Ok(FetchedManifest {
            digest,
            media_type,
            document,
        })
    }
}

pub(crate) fn validate_manifest_reference(reference: &str) -> Result<(), RegistryError> {
    let valid = if reference.contains(':') {
        reference::validate_digest(reference).map_err(|error| error.to_string())
    } else {
        reference::validate_tag(reference).map_err(|error| error.to_string())
    };
    valid.map_err(|reason| RegistryError::Unsupported(format!("invalid tag or digest: {reason}")))
}

fn is_known_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_TYPE_DOCKER_MANIFEST
            | MEDIA_TYPE_DOCKER_MANIFEST_LIST
            | MEDIA_TYPE_OCI_INDEX
            | MEDIA_TYPE_OCI_MANIFEST
    )
}

/// Whether `body` hashes to `digest` (`sha256:`, `sha384:` or `sha512:`).
fn digest_matches(body: &[u8], digest: &str) -> bool {
    let Some((algorithm, expected)) = digest.split_once(':') else {
        return false;
    };
    let actual = match algorithm {
        "sha256" => hex::encode(Sha256::digest(body)),
        "sha384" => hex::encode(Sha384::digest(body)),
        "sha512" => hex::encode(Sha512::digest(body)),
        _ => return false,
    };
    actual == expected
}
