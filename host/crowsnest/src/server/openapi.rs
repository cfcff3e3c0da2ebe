//! The OpenAPI 3.1 document's frame: title, description and the bearer
//! security scheme. The operations come from the handlers' `#[utoipa::path]`
//! annotations as the router registers them (see `http`), and the schemas
//! from the model types themselves (`crowsnest_model` derives `ToSchema`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame.
#[derive(OpenApi)]
#[openapi(
    info(title = "crowsnest", description = "Container image update scanner: HTTP API of `crowsnest serve`."),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The frame every operation is added to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crowsnest_model::*;
    use serde_json::Value;

    use super::super::http::{document_json, documented_routes};

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
            kind: Some("service".into()),
            owner: Some("Deployment/web".into()),
            check: crowsnest_model::CheckInfo {
                status: crowsnest_model::CheckStatus::NotChecked,
                reason: Some("pinned by digest".into()),
                stale: true,
                checked_at: Some("2026-01-01T00:00:00Z".into()),
            },
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
            store_error: Some("disk full".into()),
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
    fn every_ref_resolves_and_every_route_is_secured_but_the_probes() {
        let document: Value = serde_json::from_slice(document_json()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        let routes = documented_routes();
        assert!(routes.contains(&("post".to_string(), "/api/containers/watch".to_string())));
        for (method, path) in &routes {
            let secured = document["paths"][path][method]["security"].is_array();
            let open = ["/health", "/livez", "/readyz"].contains(&path.as_str());
            assert_eq!(secured, !open, "{method} {path}");
        }
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
