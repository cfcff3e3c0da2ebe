//! Image reference parsing following the distribution reference grammar
//! (`github.com/distribution/reference`).
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] remote-name
//! domain           := host [':' port-number]
//! host             := domain-name | IPv4address | '[' IPv6address ']'
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex
//! ```
//!
//! Normalisation matches Docker's: no domain means `docker.io`,
//! `index.docker.io` is `docker.io`, and a one-component Docker Hub name gets
//! `library/`. Both the as-written and the normalised forms are kept.

use std::fmt;
use std::str::FromStr;

/// Registry domain used when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Legacy spelling of the Docker Hub domain, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Maximum length of the full normalised name (`domain/path`).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Maximum length of a tag.
pub const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("image reference is empty")]
    Empty,
    /// The repository name has no path after the domain.
    #[error("image reference {reference:?} has no repository name")]
    EmptyName {
        /// The input.
        reference: String,
    },
    /// The registry domain does not follow the grammar.
    #[error("invalid registry domain {domain:?}: {reason}")]
    InvalidDomain {
        /// Domain as written.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The repository path contains upper-case letters.
    #[error("repository name {name:?} must be lowercase")]
    UppercaseName {
        /// Repository path as written.
        name: String,
    },
    /// One `/`-separated component of the repository path is invalid.
    #[error("invalid repository path component {component:?} in {name:?}: {reason}")]
    InvalidPathComponent {
        /// Repository path as written.
        name: String,
        /// The offending component.
        component: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The full name is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name {name:?} is {length} characters long, the maximum is {max}")]
    NameTooLong {
        /// Full normalised name.
        name: String,
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The name is a 64-hex identifier, which would be ambiguous with an image id.
    #[error("repository name {name:?} is a 64-character hexadecimal string, which is reserved for image ids")]
    HexIdentifierName {
        /// The input.
        name: String,
    },
    /// The tag does not follow the grammar.
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// Tag as written.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The digest does not follow the grammar or has the wrong length.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// Digest as written.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The digest algorithm is well-formed but not one we can verify.
    #[error("unsupported digest algorithm {algorithm:?} (supported: sha256, sha384, sha512)")]
    UnsupportedDigestAlgorithm {
        /// Algorithm as written.
        algorithm: String,
    },
}

/// A parsed image reference, e.g. `nginx:1.25` or `ghcr.io/org/app@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    written_domain: Option<String>,
    written_path: String,
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// Parses `input` per the distribution grammar and normalises it.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_hex_identifier(input) {
            return Err(ReferenceError::HexIdentifierName {
                name: input.to_string(),
            });
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((before, after)) => {
                validate_digest(after)?;
                (before, Some(after.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let (written_domain, written_path) = split_domain(name);
        if let Some(domain) = written_domain {
            validate_domain(domain)?;
        }
        if written_path.is_empty() {
            return Err(ReferenceError::EmptyName {
                reference: input.to_string(),
            });
        }
        validate_path(written_path)?;

        let domain = match written_domain {
            None => DEFAULT_DOMAIN,
            Some(LEGACY_DEFAULT_DOMAIN) => DEFAULT_DOMAIN,
            Some(other) => other,
        };
        let path = if domain == DEFAULT_DOMAIN && !written_path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{written_path}")
        } else {
            written_path.to_string()
        };
        let full_length = domain.len() + 1 + path.len();
        if full_length > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                name: format!("{domain}/{path}"),
                length: full_length,
                max: NAME_TOTAL_LENGTH_MAX,
            });
        }
        Ok(Self {
            written_domain: written_domain.map(str::to_string),
            written_path: written_path.to_string(),
            domain: domain.to_string(),
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Normalised registry domain (`docker.io` when none was written), with port if any.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Registry domain exactly as written, `None` when the reference has none.
    pub fn written_domain(&self) -> Option<&str> {
        self.written_domain.as_deref()
    }

    /// Domain as written, or `docker.io` when none was (WIT `image-ref.domain`).
    pub fn domain_as_written(&self) -> &str {
        self.written_domain.as_deref().unwrap_or(DEFAULT_DOMAIN)
    }

    /// Normalised repository path, e.g. `library/nginx`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Repository path as written, e.g. `nginx`.
    pub fn written_path(&self) -> &str {
        &self.written_path
    }

    /// Tag, if one was written (no `latest` default is applied).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Tag, or `latest` when neither tag nor digest was written.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// Digest, if one was written, e.g. `sha256:…`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Full normalised name without tag or digest, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Short Docker form of the name, e.g. `nginx` or `ghcr.io/org/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }
}

impl fmt::Display for ImageReference {
    /// Full normalised form, e.g. `docker.io/library/nginx:1.25@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

/// Splits `name[:tag]`: the tag is after the last `:` that follows the last `/`.
fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_and_tag.rfind('/');
    match name_and_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        _ => (name_and_tag, None),
    }
}

/// Splits off the domain the way Docker does: the first component is a domain
/// when it contains `.` or `:`, is `localhost`, or has upper-case letters.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn domain_error(domain: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::InvalidDomain {
        domain: domain.to_string(),
        reason: reason.into(),
    }
}

/// Validates `host[:port]` where host is a domain name, an IPv4 address or `[IPv6]`.
pub fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    if domain.is_empty() {
        return Err(domain_error(domain, "domain is empty"));
    }
    let port = if let Some(bracketed) = domain.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err(domain_error(domain, "IPv6 address has no closing ']'"));
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(domain_error(
                domain,
                "IPv6 address may only contain hexadecimal digits and ':'",
            ));
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(domain_error(
                        domain,
                        "only ':port' may follow an IPv6 address",
                    ))
                }
            },
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        for component in host.split('.') {
            validate_domain_component(domain, component)?;
        }
        port
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(domain_error(
                domain,
                format!("port {port:?} must be one or more digits"),
            ));
        }
    }
    Ok(())
}

fn validate_domain_component(domain: &str, component: &str) -> Result<(), ReferenceError> {
    if component.is_empty() {
        return Err(domain_error(domain, "empty domain component"));
    }
    if !component
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(domain_error(
            domain,
            format!("domain component {component:?} may only contain letters, digits and '-'"),
        ));
    }
    if component.starts_with('-') || component.ends_with('-') {
        return Err(domain_error(
            domain,
            format!("domain component {component:?} must not start or end with '-'"),
        ));
    }
    Ok(())
}

/// Validates a repository path (`component[/component]*`), without domain.
pub fn validate_path(path: &str) -> Result<(), ReferenceError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::UppercaseName {
            name: path.to_string(),
        });
    }
    for component in path.split('/') {
        if let Err(reason) = check_path_component(component) {
            return Err(ReferenceError::InvalidPathComponent {
                name: path.to_string(),
                component: component.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// `alpha-numeric [separator alpha-numeric]*` with separators `.`, `_`, `__`, `-+`.
fn check_path_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() {
        return Err("component is empty (leading, trailing or doubled '/')".into());
    }
    // Only ASCII is in the grammar; rejecting the rest first also keeps the
    // byte slicing below on character boundaries (found by fuzzing: `a-🬀` panicked).
    if let Some(bad) = component.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "character {bad:?} is not allowed (lowercase letters, digits, '.', '_', '-')"
        ));
    }
    if !is_alnum(bytes[0]) {
        return Err("must start with a lowercase letter or digit".into());
    }
    let mut index = 0;
    while index < bytes.len() {
        while index < bytes.len() && is_alnum(bytes[index]) {
            index += 1;
        }
        if index == bytes.len() {
            break;
        }
        let separator_start = index;
        match bytes[index] {
            b'.' => index += 1,
            b'_' => {
                index += 1;
                if bytes.get(index) == Some(&b'_') {
                    index += 1;
                }
            }
            b'-' => {
                while bytes.get(index) == Some(&b'-') {
                    index += 1;
                }
            }
            other => {
                return Err(format!(
                    "character {:?} is not allowed (use lowercase letters, digits and the separators '.', '_', '__', '-')",
                    other as char
                ))
            }
        }
        let separator = &component[separator_start..index];
        match bytes.get(index) {
            None => return Err(format!("must not end with separator {separator:?}")),
            Some(&next) if !is_alnum(next) => {
                return Err(format!(
                    "separator {:?} must be followed by a lowercase letter or digit",
                    &component[separator_start..=index]
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Validates a tag: `[\w][\w.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let error = |reason: String| ReferenceError::InvalidTag {
        tag: tag.to_string(),
        reason,
    };
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let Some(first) = tag.chars().next() else {
        return Err(error("tag is empty".into()));
    };
    if !is_word(first) {
        return Err(error(format!(
            "must start with a letter, digit or '_', not {first:?}"
        )));
    }
    if let Some(bad) = tag.chars().find(|&c| !(is_word(c) || c == '.' || c == '-')) {
        return Err(error(format!(
            "character {bad:?} is not allowed (letters, digits, '_', '.', '-')"
        )));
    }
    if tag.len() > TAG_LENGTH_MAX {
        return Err(error(format!(
            "{} characters long, the maximum is {TAG_LENGTH_MAX}",
            tag.len()
        )));
    }
    Ok(())
}

/// Validates `algorithm:hex`; the algorithm must be sha256, sha384 or sha512
/// with the matching number of lowercase hexadecimal digits.
pub fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let error = |reason: String| ReferenceError::InvalidDigest {
        digest: digest.to_string(),
        reason,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(error("expected ALGORITHM:HEX".into()));
    };
    // digest-algorithm := component [ /[+._-]/ component ]*, component := /[A-Za-z][A-Za-z0-9]*/
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|component| {
        let mut chars = component.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric())
    });
    if !algorithm_ok {
        return Err(error(format!("malformed algorithm {algorithm:?}")));
    }
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error(
            "digest value must be at least 32 hexadecimal digits".into(),
        ));
    }
    let expected_length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ReferenceError::UnsupportedDigestAlgorithm {
                algorithm: algorithm.to_string(),
            })
        }
    };
    if hex.len() != expected_length {
        return Err(error(format!(
            "{algorithm} digest must have {expected_length} hexadecimal digits, found {}",
            hex.len()
        )));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(error("hexadecimal digits must be lowercase".into()));
    }
    Ok(())
}

fn is_hex_identifier(input: &str) -> bool {
    input.len() == 64
        && input
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(input: &str) -> ImageReference {
        ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn fails(input: &str) -> ReferenceError {
        match ImageReference::parse(input) {
            Ok(parsed) => panic!("{input} parsed as {parsed:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn hub_official_image_gets_default_domain_and_library() {
        let r = parse("nginx");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.written_domain(), None);
        assert_eq!(r.domain_as_written(), "docker.io");
        assert_eq!(r.path(), "library/nginx");
        assert_eq!(r.written_path(), "nginx");
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_latest(), Some("latest"));
        assert_eq!(r.name(), "docker.io/library/nginx");
        assert_eq!(r.familiar_name(), "nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx");
    }

    #[test]
    fn hub_user_image_keeps_path() {
        let r = parse("bitnami/redis:7.2");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "bitnami/redis");
        assert_eq!(r.tag(), Some("7.2"));
        assert_eq!(r.familiar_name(), "bitnami/redis");
    }

    #[test]
    fn explicit_hub_domains_normalise() {
        let r = parse("docker.io/nginx:1.25");
        assert_eq!(r.written_domain(), Some("docker.io"));
        assert_eq!(r.path(), "library/nginx");
        let legacy = parse("index.docker.io/library/nginx");
        assert_eq!(legacy.written_domain(), Some("index.docker.io"));
        assert_eq!(legacy.domain(), "docker.io");
        assert_eq!(legacy.domain_as_written(), "index.docker.io");
        assert_eq!(legacy.path(), "library/nginx");
    }

    #[test]
    fn other_registries_get_no_library_prefix() {
        let r = parse("ghcr.io/org/app:v1");
        assert_eq!(r.domain(), "ghcr.io");
        assert_eq!(r.path(), "org/app");
        assert_eq!(r.familiar_name(), "ghcr.io/org/app");
        assert_eq!(parse("quay.io/single").path(), "single");
    }

    #[test]
    fn localhost_and_ports_are_domains() {
        let r = parse("localhost/app");
        assert_eq!(r.domain(), "localhost");
        assert_eq!(r.path(), "app");
        let r = parse("localhost:5000/team/app:1.0");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("1.0"));
        let r = parse("127.0.0.1:5001/app");
        assert_eq!(r.domain(), "127.0.0.1:5001");
        let r = parse("registry:5000/app");
        assert_eq!(r.domain(), "registry:5000");
    }

    #[test]
    fn bare_localhost_with_port_is_a_name_and_tag() {
        // Same as Docker: without a '/', "localhost:5000" is image "localhost", tag "5000".
        let r = parse("localhost:5000");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/localhost");
        assert_eq!(r.tag(), Some("5000"));
    }

    #[test]
    fn first_component_without_dot_is_a_hub_namespace() {
        let r = parse("registry/app");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "registry/app");
    }

    #[test]
    fn uppercase_first_component_is_a_domain() {
        let r = parse("Registry/app");
        assert_eq!(r.domain(), "Registry");
        assert_eq!(r.path(), "app");
    }

    #[test]
    fn ipv6_domains() {
        let r = parse("[::1]:5000/app:tag");
        assert_eq!(r.domain(), "[::1]:5000");
        assert_eq!(r.path(), "app");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(parse("[2001:db8::1]/app").domain(), "[2001:db8::1]");
        assert!(matches!(
            fails("[::1/app"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            fails("[::g]:5000/app"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            fails("[::1]x/app"),
            ReferenceError::InvalidDomain { .. }
        ));
    }

    #[test]
    fn invalid_domains_and_ports() {
        for input in [
            "-bad.io/app",
            "bad-.io/app",
            "a..b.io/app",
            "host.io:/app",
            "host.io:50a/app",
            "ho_st.io/app",
        ] {
            assert!(
                matches!(fails(input), ReferenceError::InvalidDomain { .. }),
                "{input}"
            );
        }
    }

    #[test]
    fn digests() {
        let r = parse(&format!("nginx@{SHA}"));
        assert_eq!(r.digest(), Some(SHA));
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_latest(), None);
        let r = parse(&format!("ghcr.io/org/app:1.2@{SHA}"));
        assert_eq!(r.tag(), Some("1.2"));
        assert_eq!(r.digest(), Some(SHA));
        assert_eq!(r.to_string(), format!("ghcr.io/org/app:1.2@{SHA}"));
        let r = parse(&format!("localhost:5000/app@{SHA}"));
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.tag(), None);
        parse(&format!("app@sha512:{}", "a".repeat(128)));
        parse(&format!("app@sha384:{}", "b".repeat(96)));
    }

    #[test]
    fn invalid_digests() {
        let short = "app@sha256:abcd";
        assert!(matches!(fails(short), ReferenceError::InvalidDigest { .. }));
        let wrong_length = format!("app@sha256:{}", "a".repeat(40));
        assert!(matches!(
            fails(&wrong_length),
            ReferenceError::InvalidDigest { .. }
        ));
        let upper = format!("app@sha256:{}", "A".repeat(64));
        assert!(matches!(
            fails(&upper),
            ReferenceError::InvalidDigest { .. }
        ));
        let non_hex = format!("app@sha256:{}", "g".repeat(64));
        assert!(matches!(
            fails(&non_hex),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            fails("app@notadigest"),
            ReferenceError::InvalidDigest { .. }
        ));
        let bad_algorithm = format!("app@1sha:{}", "a".repeat(64));
        assert!(matches!(
            fails(&bad_algorithm),
            ReferenceError::InvalidDigest { .. }
        ));
        let unknown = format!("app@md5+x:{}", "a".repeat(32));
        assert_eq!(
            fails(&unknown),
            ReferenceError::UnsupportedDigestAlgorithm {
                algorithm: "md5+x".into()
            }
        );
        let twice = format!("app@{SHA}@{SHA}");
        assert!(matches!(
            fails(&twice),
            ReferenceError::InvalidDigest { .. }
        ));
    }

    #[test]
    fn tags() {
        parse("app:_private");
        parse("app:1.25.3-alpine3.19");
        parse("app:UPPER_case");
        parse(&format!("app:{}", "t".repeat(128)));
        let too_long = format!("app:{}", "t".repeat(129));
        assert!(matches!(
            fails(&too_long),
            ReferenceError::InvalidTag { .. }
        ));
        for input in ["app:", "app:.hidden", "app:-dash", "app:a+b", "app:a b"] {
            assert!(
                matches!(
                    fails(input),
                    ReferenceError::InvalidTag { .. } | ReferenceError::InvalidPathComponent { .. }
                ),
                "{input}"
            );
        }
        assert!(matches!(
            fails("app:a+b"),
            ReferenceError::InvalidTag { .. }
        ));
    }

    #[test]
    fn path_components() {
        parse("a.b/c__d/e-f/g---h/i_j");
        for input in [
            "a/.b", "a/b.", "a/b..c", "a/b___c", "a/b-_c", "a/b._c", "a//b", "a/b/", "a/_b",
            "a/b!c",
        ] {
            assert!(
                matches!(fails(input), ReferenceError::InvalidPathComponent { .. }),
                "{input}"
            );
        }
        let ReferenceError::InvalidPathComponent { component, .. } = fails("org/b..c") else {
            panic!("wrong error")
        };
        assert_eq!(component, "b..c");
    }

    #[test]
    fn uppercase_path_is_rejected_precisely() {
        assert_eq!(
            fails("Nginx"),
            ReferenceError::UppercaseName {
                name: "Nginx".into()
            }
        );
        assert_eq!(
            fails("ghcr.io/Org/app"),
            ReferenceError::UppercaseName {
                name: "Org/app".into()
            }
        );
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(fails(""), ReferenceError::Empty);
        assert!(matches!(
            fails("ghcr.io/"),
            ReferenceError::EmptyName { .. } | ReferenceError::InvalidPathComponent { .. }
        ));
        assert!(matches!(fails(":tag"), ReferenceError::EmptyName { .. }));
    }

    #[test]
    fn total_name_length_is_limited() {
        // docker.io/library/ (18) + 237 = 255: allowed.
        parse(&"a".repeat(237));
        let error = fails(&"a".repeat(238));
        assert!(
            matches!(error, ReferenceError::NameTooLong { length: 256, .. }),
            "{error}"
        );
        let long_path = format!("r.io/{}", "b".repeat(251));
        assert!(matches!(
            fails(&long_path),
            ReferenceError::NameTooLong { .. }
        ));
    }

    #[test]
    fn hex_identifier_is_not_a_name() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(matches!(
            fails(id),
            ReferenceError::HexIdentifierName { .. }
        ));
        // With a namespace it is an ordinary name.
        parse(&format!("org/{id}"));
    }

    #[test]
    fn from_str_and_error_messages() {
        let r: ImageReference = "ghcr.io/org/app:v2".parse().unwrap();
        assert_eq!(r.tag(), Some("v2"));
        let message = fails("app:a+b").to_string();
        assert!(message.contains("'+'"), "{message}");
    }
}
