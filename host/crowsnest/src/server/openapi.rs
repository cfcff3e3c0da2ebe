//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the schema types below (served at `GET /api/openapi.json`).
//!
//! The model types live in `crate::model` and carry no schema derive, so their
//! JSON shape is described here by mirror types; a test compares a serialised
//! [`crowsnest_model::ContainerObject`] with the [`Container`] schema, so the two
//! cannot drift apart unnoticed.

#![allow(dead_code)] // The mirror types are only read by the schema derive.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::http;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "crowsnest", description = "Container image update scanner: HTTP API of `crowsnest serve`."),
    paths(
        http::list_containers,
        http::get_container,
        http::watch_all,
        http::watch_container,
        http::run_trigger,
        http::scan_images,
        http::watchtower_update,
        http::list_watchers,
        http::list_registries,
        http::list_triggers,
        http::list_plugins,
        http::openapi_document,
        http::health,
        http::metrics,
    ),
    components(schemas(
        Container, Image, RegistryRef, Tag, Digest, CheckResult, UpdateKind, CheckError,
        Report, WatcherFailure, Stats, Delivered, Health, http::ErrorBody, http::ScanBody,
        super::PluginSummary,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON, built once.
pub fn document_json() -> &'static Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT.get_or_init(|| Bytes::from(ApiDoc::openapi().to_pretty_json().unwrap_or_default()))
}

/// A watched container and the result of its latest check (WUD-compatible).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Docker container id.
    id: String,
    /// Container name.
    name: String,
    /// `crowsnest.display.name`, else the name.
    display_name: String,
    /// Docker status.
    status: String,
    /// Watcher it was found on.
    watcher: String,
    /// The image it runs.
    image: Image,
    /// What the registry offers.
    result: Option<CheckResult>,
    /// An update is available (never with `error`).
    update_available: bool,
    /// What kind of update.
    update_kind: Option<UpdateKind>,
    /// Why the check failed.
    error: Option<CheckError>,
    /// Container labels.
    labels: BTreeMap<String, String>,
}

/// The image a container runs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Local image id.
    id: String,
    /// Where it is looked up.
    registry: RegistryRef,
    /// Repository path as looked up.
    name: String,
    /// Deployed tag.
    tag: Tag,
    /// Digest state.
    digest: Digest,
    /// CPU architecture.
    architecture: String,
    /// OS.
    os: String,
    /// CPU variant.
    variant: Option<String>,
    /// Creation time of the local image.
    created: Option<String>,
    /// The image reference as deployed.
    reference: String,
}

/// Registry an image is looked up on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRef {
    /// Registry instance name.
    name: String,
    /// API base URL.
    url: String,
    /// Image as looked up.
    lookup_image: String,
}

/// Deployed tag.
#[derive(Serialize, ToSchema)]
pub struct Tag {
    /// Tag value (null when pinned by digest).
    value: Option<String>,
    /// Read as a version.
    semver: bool,
}

/// Digest state.
#[derive(Serialize, ToSchema)]
pub struct Digest {
    /// Digest watching is on.
    watch: bool,
    /// Local digest.
    value: Option<String>,
    /// Remote digest of the same tag.
    repo: Option<String>,
}

/// What the registry offers.
#[derive(Serialize, ToSchema)]
pub struct CheckResult {
    /// Offered tag.
    tag: Option<String>,
    /// Remote digest.
    digest: Option<String>,
    /// Release-notes link.
    link: Option<String>,
    /// Creation time of the remote image.
    created: Option<String>,
}

/// Kind of update.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateKind {
    /// `tag`, `digest` or `unknown`.
    kind: String,
    /// Current value.
    local_value: Option<String>,
    /// Offered value.
    remote_value: Option<String>,
    /// `major`, `minor`, `patch`, `prerelease` or null.
    semver_diff: Option<String>,
}

/// A failed check.
#[derive(Serialize, ToSchema)]
pub struct CheckError {
    /// What went wrong.
    message: String,
}

/// The answer of a scan.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Containers scanned.
    containers: Vec<Container>,
    /// Watchers that could not be read.
    watcher_errors: Vec<WatcherFailure>,
    /// Figures.
    stats: Stats,
}

/// A watcher that failed as a whole.
#[derive(Serialize, ToSchema)]
pub struct WatcherFailure {
    /// Watcher name.
    watcher: String,
    /// What went wrong.
    message: String,
}

/// Figures about one scan.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Containers checked.
    containers: u64,
    /// Distinct repositories looked up.
    repositories: u64,
    /// Tag listings served from cache.
    tag_cache_hits: u64,
    /// Digest lookups made.
    digest_lookups: u64,
    /// Wall time, milliseconds.
    duration_ms: u64,
}

/// Answer of a manual trigger run.
#[derive(Serialize, ToSchema)]
pub struct Delivered {
    /// Always true.
    delivered: bool,
    /// Trigger name.
    trigger: String,
    /// Container id.
    container: String,
}

/// Answer of `/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_model::*;
    use serde_json::Value;

    fn populated_container() -> ContainerObject {
        ContainerObject {
            id: "c".into(),
            name: "web".into(),
            display_name: "web".into(),
            status: "running".into(),
            watcher: "local".into(),
            image: ImageInfo {
                id: "sha256:1".into(),
                registry: RegistryInfo::default(),
                name: "library/nginx".into(),
                tag: TagInfo::default(),
                digest: DigestInfo::default(),
                architecture: "amd64".into(),
                os: "linux".into(),
                variant: Some("v8".into()),
                created: None,
                reference: "nginx:1".into(),
            },
            result: Some(ScanResult {
                created: Some("x".into()),
                ..Default::default()
            }),
            update_available: false,
            update_kind: Some(UpdateKindInfo {
                kind: "tag".into(),
                local_value: None,
                remote_value: None,
                semver_diff: None,
            }),
            error: Some(ErrorInfo {
                message: "m".into(),
            }),
            labels: BTreeMap::new(),
        }
    }

    /// Follows `$ref`s and `oneOf` (nullable) wrappers to the object schema.
    fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/components/schemas/");
            return resolve(document, &document["components"]["schemas"][name]);
        }
        if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
            if let Some(object) = variants
                .iter()
                .find(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            {
                return resolve(document, object);
            }
        }
        schema
    }

    /// Every key of `value` (recursively through objects) is a property of `schema`, and back.
    fn assert_same_shape(document: &Value, schema: &Value, value: &Value, path: &str) {
        let schema = resolve(document, schema);
        let Some(object) = value.as_object() else {
            return;
        };
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return; // free-form map (labels)
        };
        let mut value_keys: Vec<&String> = object.keys().collect();
        let mut schema_keys: Vec<&String> = properties.keys().collect();
        value_keys.sort();
        schema_keys.sort();
        assert_eq!(value_keys, schema_keys, "shape of {path}");
        for (key, inner) in object {
            assert_same_shape(document, &properties[key], inner, &format!("{path}.{key}"));
        }
    }

    #[test]
    fn container_schema_matches_the_model() {
        let document: Value = serde_json::from_slice(document_json()).unwrap();
        let value = serde_json::to_value(populated_container()).unwrap();
        assert_same_shape(
            &document,
            &document["components"]["schemas"]["Container"],
            &value,
            "Container",
        );
        let report = serde_json::to_value(ScanReport {
            containers: vec![populated_container()],
            watcher_errors: vec![WatcherError {
                watcher: "w".into(),
                message: "m".into(),
            }],
            stats: ScanStats::default(),
        })
        .unwrap();
        assert_same_shape(
            &document,
            &document["components"]["schemas"]["Report"],
            &report,
            "Report",
        );
    }

    #[test]
    fn document_lists_exactly_the_routes_and_every_ref_resolves() {
        let document: Value = serde_json::from_slice(document_json()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        let mut routes: Vec<(String, String)> = http::ROUTES
            .iter()
            .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
        let text = String::from_utf8(document_json().to_vec()).unwrap();
        for reference in text.split("\"$ref\": \"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "dangling $ref {target}"
            );
        }
        assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    }
}
