//! Mapping of registry error responses (spec `errors[].code`, then status) to
//! [`RegistryError`].

use serde::Deserialize;

use crate::RegistryError;

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What a 404 without an error code means for the endpoint that answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundMeans {
    /// Tag listing, ping: the repository is unknown.
    Name,
    /// Manifest or blob: the reference is unknown.
    Manifest,
}

/// Maps an error response to a typed error. `what` names the request for the
/// message (e.g. `GET http://r/v2/app/tags/list`). The first recognised spec
/// code wins; without one the status decides (401, 403, 404, 429, 5xx).
pub fn error_from_response_body(
    status: u16,
    body: &[u8],
    what: &str,
    not_found: NotFoundMeans,
) -> RegistryError {
    let entries = serde_json::from_slice::<ErrorBody>(body)
        .map(|parsed| parsed.errors)
        .unwrap_or_default();
    for entry in &entries {
        let detail = if entry.message.is_empty() {
            format!("{what}: {} ({status})", entry.code)
        } else {
            format!("{what}: {} ({}, {status})", entry.message, entry.code)
        };
        let mapped = match entry.code.as_str() {
            "NAME_UNKNOWN" => RegistryError::NameUnknown(detail),
            "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" => RegistryError::ManifestUnknown(detail),
            "UNAUTHORIZED" => RegistryError::Unauthorized(detail),
            "DENIED" => RegistryError::Denied(detail),
            "TOOMANYREQUESTS" => RegistryError::TooManyRequests(detail),
            "UNSUPPORTED" => RegistryError::Unsupported(detail),
            _ => continue,
        };
        return mapped;
    }
    let first_code = entries
        .first()
        .map(|entry| format!(" ({}: {})", entry.code, entry.message))
        .unwrap_or_default();
    let detail = format!("{what} answered {status}{first_code}");
    match status {
        401 => RegistryError::Unauthorized(detail),
        403 => RegistryError::Denied(detail),
        404 => match not_found {
            NotFoundMeans::Name => RegistryError::NameUnknown(detail),
            NotFoundMeans::Manifest => RegistryError::ManifestUnknown(detail),
        },
        429 => RegistryError::TooManyRequests(detail),
        500..=599 => RegistryError::Transport(detail),
        _ => RegistryError::Protocol(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str, not_found: NotFoundMeans) -> RegistryError {
        error_from_response_body(status, body.as_bytes(), "GET /x", not_found)
    }

    #[test]
    fn spec_codes_win_over_status() {
        let body = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        let error = map(404, body, NotFoundMeans::Manifest);
        assert!(
            matches!(&error, RegistryError::NameUnknown(m) if m.contains("repository name not known")),
            "{error:?}"
        );
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert!(matches!(
            map(404, body, NotFoundMeans::Name),
            RegistryError::ManifestUnknown(_)
        ));
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert!(matches!(
            map(401, body, NotFoundMeans::Name),
            RegistryError::Unauthorized(_)
        ));
        let body = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        assert!(matches!(
            map(403, body, NotFoundMeans::Name),
            RegistryError::Denied(_)
        ));
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#;
        assert!(matches!(
            map(429, body, NotFoundMeans::Name),
            RegistryError::TooManyRequests(_)
        ));
        // An unknown code first, a known one second: the known one is used.
        let body = r#"{"errors":[{"code":"WHATEVER"},{"code":"DENIED"}]}"#;
        assert!(matches!(
            map(400, body, NotFoundMeans::Name),
            RegistryError::Denied(_)
        ));
    }

    #[test]
    fn status_fallbacks_without_code() {
        assert!(matches!(
            map(401, "", NotFoundMeans::Name),
            RegistryError::Unauthorized(_)
        ));
        assert!(matches!(
            map(403, "forbidden", NotFoundMeans::Name),
            RegistryError::Denied(_)
        ));
        assert!(matches!(
            map(404, "", NotFoundMeans::Name),
            RegistryError::NameUnknown(_)
        ));
        assert!(matches!(
            map(404, "{}", NotFoundMeans::Manifest),
            RegistryError::ManifestUnknown(_)
        ));
        assert!(matches!(
            map(429, "", NotFoundMeans::Name),
            RegistryError::TooManyRequests(_)
        ));
        assert!(matches!(
            map(503, "", NotFoundMeans::Name),
            RegistryError::Transport(_)
        ));
        let error = map(
            400,
            r#"{"errors":[{"code":"TAG_INVALID","message":"bad tag"}]}"#,
            NotFoundMeans::Name,
        );
        assert!(
            matches!(&error, RegistryError::Protocol(m) if m.contains("TAG_INVALID")),
            "{error:?}"
        );
    }
}
