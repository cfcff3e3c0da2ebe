//! Minimal `http(s)` URL handling for settings (a full URL crate would
//! dominate the size of a small plugin).

use std::fmt;

/// Why a string is not an acceptable `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

/// An absolute `http://` or `https://` URL split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    scheme: &'static str,
    authority: String,
    rest: String,
}

impl HttpUrl {
    /// Parses `raw`; the scheme and host are lowercased, user info is refused
    /// (credentials belong in their own, secret settings).
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let (scheme, after_scheme) = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => ("https", rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => ("http", rest),
            _ => {
                return Err(UrlError(format!(
                    "`{raw}` is not an absolute http:// or https:// URL"
                )))
            }
        };
        let split_at = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(split_at);
        if authority.is_empty() {
            return Err(UrlError(format!("`{raw}` has no host")));
        }
        if authority.contains('@') {
            return Err(UrlError(format!(
                "`{raw}` carries credentials; use the username/password settings"
            )));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(UrlError(format!("`{raw}` has an invalid host")));
        }
        if let Some((_, port)) = authority.rsplit_once(':') {
            // An IPv6 literal without port ends in `]`.
            if !port.ends_with(']') && port.parse::<u16>().is_err() {
                return Err(UrlError(format!("`{raw}` has an invalid port")));
            }
        }
        Ok(Self {
            scheme,
            authority: authority.to_ascii_lowercase(),
            rest: rest.to_string(),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// `host[:port]` as written (lowercased), the form image references use as domain.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The URL as given, normalised scheme and host: `https://host:port/path?query`.
    pub fn as_string(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.rest)
    }

    /// A registry base URL: path kept, query dropped, without trailing `/` or `/v2`.
    pub fn registry_base(&self) -> String {
        let path = self.rest.split(['?', '#']).next().unwrap_or_default();
        let mut path = path.trim_end_matches('/');
        if let Some(without) = path.strip_suffix("/v2") {
            path = without.trim_end_matches('/');
        }
        format!("{}://{}{}", self.scheme, self.authority, path)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_base_drops_slash_and_v2() {
        let url = HttpUrl::parse("HTTPS://Registry.Example:5000/v2/").unwrap();
        assert_eq!(url.authority(), "registry.example:5000");
        assert_eq!(url.registry_base(), "https://registry.example:5000");
        let url = HttpUrl::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(url.registry_base(), "http://127.0.0.1:5000");
        let url = HttpUrl::parse("https://host/prefix/").unwrap();
        assert_eq!(url.registry_base(), "https://host/prefix");
    }

    #[test]
    fn rejects_non_http_and_credentials() {
        assert!(HttpUrl::parse("ftp://host").is_err());
        assert!(HttpUrl::parse("host:5000").is_err());
        assert!(HttpUrl::parse("https://").is_err());
        assert!(HttpUrl::parse("https://user:pw@host").is_err());
        assert!(HttpUrl::parse("https://host:port").is_err());
        assert!(HttpUrl::parse("http://[::1]:8080/x").is_ok());
        assert!(HttpUrl::parse("http://[::1]/x").is_ok());
    }

    #[test]
    fn keeps_query_in_full_form() {
        let url = HttpUrl::parse("https://hooks.example/path?token=a").unwrap();
        assert_eq!(url.as_string(), "https://hooks.example/path?token=a");
        assert_eq!(url.registry_base(), "https://hooks.example/path");
    }
}
