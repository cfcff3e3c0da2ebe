//! A checked location: the registry's base URL (scheme, origin, path `/`)
//! and a repository — what every layer above the transport addresses.

use url::Url;

use crate::RegistryError;

/// A checked location: base URL (origin, path `/`) and repository.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub base: Url,
    pub origin: String,
    pub repository: String,
}

impl Target {
    /// `path` resolved on the registry's base URL.
    pub fn endpoint(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|error| {
            RegistryError::Unsupported(format!(
                "cannot build URL {path:?} on {}: {error}",
                self.base
            ))
        })
    }

    /// `origin/repository`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.origin, self.repository)
    }
}

/// Parses a registry base URL: `http://` only when written, `https://`
/// otherwise; a trailing `/v2` is tolerated; the result has path `/`.
pub(crate) fn parse_registry_url(registry_url: &str) -> Result<Url, RegistryError> {
    let raw = registry_url.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|error| {
        RegistryError::Unsupported(format!("invalid registry URL {raw:?}: {error}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} must be an http or https URL with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {} must not contain credentials; pass them as auth",
            url.origin().ascii_serialization()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} must not have a query or fragment"
        )));
    }
    let path = url.path().trim_end_matches('/');
    if !(path.is_empty() || path == "/v2") {
        return Err(RegistryError::Unsupported(format!(
            "registry URL {raw:?} has path {path:?}; give the registry's base URL"
        )));
    }
    url.set_path("/");
    Ok(url)
}
