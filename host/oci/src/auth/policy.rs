//! Which registry hosts a caller (a plugin instance) may reach, and how it
//! learns the token realms those registries name.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::RwLock;

use url::Url;

/// Decides which registry URLs a caller may use. The plugin runtime gives each
/// plugin instance its own policy (its allow-list).
pub trait AccessPolicy: Send + Sync + fmt::Debug {
    /// Whether requests to `url`'s host may be made for this caller.
    fn allows(&self, url: &Url) -> bool;

    /// Called when a registry the caller may reach names a token realm, so the
    /// runtime can record it. `realm_origin` is like `https://auth.docker.io`.
    /// A realm only ever serves the host's own token requests (which bypass
    /// the policy); it must never widen what [`AccessPolicy::allows`] answers,
    /// or a registry could lend a plugin raw HTTP to any host it names.
    fn realm_learned(&self, registry_origin: &str, realm_origin: &str) {
        let _ = (registry_origin, realm_origin);
    }

    /// Whether credentials may travel over plain `http://` to a host that is
    /// not loopback (`[registries.NAME] insecure = true`); never by default.
    fn allows_plain_http_credentials(&self) -> bool {
        false
    }
}

/// Whether `url` names a loopback host (`127.0.0.0/8`, `::1`, `localhost`),
/// where plain http never leaves the machine.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Allows every host (the host's own use, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn allows(&self, _url: &Url) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `host` (any port) or `host:port`.
    Exact { host: String, port: Option<u16> },
    /// `*.example.com`: any subdomain, not the domain itself.
    Subdomains { suffix: String },
}

impl HostPattern {
    fn parse(pattern: &str) -> Option<Self> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if let Some(domain) = pattern.strip_prefix("*.") {
            return (!domain.is_empty()).then(|| HostPattern::Subdomains {
                suffix: format!(".{domain}"),
            });
        }
        if pattern.is_empty()
            || !pattern
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
        {
            return None;
        }
        // Parse as an authority so IPv6 brackets and ports are handled like URLs.
        let parsed = Url::parse(&format!("http://{pattern}/")).ok()?;
        let host = parsed.host_str()?.to_string();
        let has_port = pattern
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            && !pattern.ends_with(']');
        let port = if has_port {
            // Url drops the default port 80; read it from the pattern itself.
            pattern
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse().ok())
        } else {
            None
        };
        Some(HostPattern::Exact { host, port })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        match self {
            HostPattern::Exact {
                host: allowed,
                port: allowed_port,
            } => allowed == host && allowed_port.is_none_or(|p| Some(p) == port),
            HostPattern::Subdomains { suffix } => host.ends_with(suffix.as_str()),
        }
    }
}

/// An allow-list of hosts: `registry.example.com`, `127.0.0.1:5001`,
/// `[::1]:5000`, `*.example.com`. Token realm hosts learned from allowed
/// registries are recorded (for display) but never allowed by it: a realm
/// serves the host's token requests only, not the plugin's raw HTTP.
#[derive(Debug, Default)]
pub struct HostAllowList {
    patterns: Vec<HostPattern>,
    learned_realms: RwLock<BTreeSet<String>>,
    plain_http_credentials: bool,
}

impl HostAllowList {
    /// Builds an allow-list; entries that are not host patterns are returned as errors.
    pub fn new<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            patterns.push(
                HostPattern::parse(entry)
                    .ok_or_else(|| format!("invalid host pattern {entry:?}"))?,
            );
        }
        Ok(Self {
            patterns,
            learned_realms: RwLock::new(BTreeSet::new()),
            plain_http_credentials: false,
        })
    }

    /// The same list, letting credentials travel over plain http to hosts
    /// that are not loopback when `allowed` (the user's `insecure = true`).
    pub fn with_plain_http_credentials(mut self, allowed: bool) -> Self {
        self.plain_http_credentials = allowed;
        self
    }

    /// Token realm origins learned so far (e.g. `https://auth.docker.io`).
    pub fn learned_realms(&self) -> Vec<String> {
        self.learned_realms
            .read()
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl AccessPolicy for HostAllowList {
    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.patterns
            .iter()
            .any(|pattern| pattern.matches(&host, port))
    }

    fn realm_learned(&self, _registry_origin: &str, realm_origin: &str) {
        if let Ok(mut set) = self.learned_realms.write() {
            set.insert(realm_origin.to_string());
        }
    }

    fn allows_plain_http_credentials(&self) -> bool {
        self.plain_http_credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn exact_hosts_ports_and_wildcards() {
        let list = HostAllowList::new([
            "registry.example.com",
            "127.0.0.1:5001",
            "[::1]:5000",
            "*.corp.example",
        ])
        .unwrap();
        assert!(list.allows(&url("https://registry.example.com/v2/")));
        assert!(list.allows(&url("http://REGISTRY.example.com:8080/")));
        assert!(list.allows(&url("http://127.0.0.1:5001/")));
        assert!(!list.allows(&url("http://127.0.0.1:5002/")));
        assert!(list.allows(&url("http://[::1]:5000/")));
        assert!(!list.allows(&url("http://[::1]:5001/")));
        assert!(list.allows(&url("https://a.b.corp.example/")));
        assert!(!list.allows(&url("https://corp.example/")));
        assert!(!list.allows(&url("https://evil-registry.example.com/")));
        assert!(HostAllowList::new(["http://x/ y"]).is_err());
    }

    #[test]
    fn learned_realms_are_recorded_but_never_allowed() {
        let list = HostAllowList::new(["127.0.0.1:5003"]).unwrap();
        assert!(!list.allows(&url("http://127.0.0.1:5010/token")));
        list.realm_learned("http://127.0.0.1:5003", "http://127.0.0.1:5010");
        assert!(
            !list.allows(&url("http://127.0.0.1:5010/token")),
            "a realm must not widen the allow-list"
        );
        assert!(!list.allows(&url("http://127.0.0.1:5010/admin")));
        assert_eq!(list.learned_realms(), ["http://127.0.0.1:5010"]);
    }
}
