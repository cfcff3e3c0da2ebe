//! Host-side checks of the values a registry plugin hands back, as pure
//! functions (so they can be fuzzed without a guest). Anything a plugin says
//! is outside input: it is checked against the grammar the host relies on
//! before it reaches a URL, the store or a table, and a rejection quotes at
//! most a bounded, escaped excerpt of it.

use super::registry::{Location, ManifestInfo, MAX_FIELD_LEN, MAX_TAGS};

/// Longest excerpt of a rejected value quoted in an error.
const EXCERPT_CHARS: usize = 64;

/// A bounded, escaped excerpt of `value` for an error message.
pub fn excerpt(value: &str) -> String {
    let shown: String = value.chars().take(EXCERPT_CHARS).collect();
    let more = if shown.len() < value.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// Checks `locate()`'s answer: every field present and bounded, the
/// registry URL an http(s) URL with a host, the repository in the grammar.
pub fn location(location: &Location) -> Result<(), String> {
    for (field, value) in [
        ("registry-url", &location.registry_url),
        ("repository", &location.repository),
        ("display", &location.display),
    ] {
        if value.is_empty() || value.len() > MAX_FIELD_LEN {
            return Err(format!("locate() gave an empty or oversized {field}"));
        }
    }
    let url_ok = url::Url::parse(&location.registry_url)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    if !url_ok {
        return Err(format!(
            "locate() gave registry-url {}, not an http(s) URL with a host",
            excerpt(&location.registry_url)
        ));
    }
    crowsnest_oci::reference::validate_path(&location.repository).map_err(|err| {
        format!(
            "locate() gave repository {}: {}",
            excerpt(&location.repository),
            bounded(&err.to_string())
        )
    })
}

/// Checks `list-tags()`'s answer: at most [`MAX_TAGS`] tags, each in the
/// distribution tag grammar (ASCII, 1-128 characters).
pub fn tags(tags: &[String]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "list-tags() gave {} tags, over the cap of {MAX_TAGS}",
            tags.len()
        ));
    }
    for tag in tags {
        if crowsnest_oci::reference::validate_tag(tag).is_err() {
            return Err(format!(
                "list-tags() gave an invalid tag {} ({} bytes; tags are 1-128 of letters, digits, '_', '.', '-')",
                excerpt(tag),
                tag.len()
            ));
        }
    }
    Ok(())
}

/// Checks `resolve()`'s answer: the digests are `algorithm:encoded` in the
/// OCI digest grammar (ASCII only, bounded), the media type and creation
/// time bounded.
pub fn manifest_info(info: &ManifestInfo) -> Result<(), String> {
    for digest in std::iter::once(&info.digest).chain(info.platform_digest.as_ref()) {
        if !is_digest(digest) {
            return Err(format!(
                "resolve() gave digest {}, not `algorithm:encoded`",
                excerpt(digest)
            ));
        }
    }
    if info.media_type.len() > MAX_FIELD_LEN
        || info
            .created
            .as_ref()
            .is_some_and(|c| c.len() > MAX_FIELD_LEN)
    {
        return Err("resolve() gave an oversized media type or creation time".into());
    }
    Ok(())
}

/// The OCI image-spec digest grammar: `algorithm ":" encoded`, algorithm
/// `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`, at most 256 bytes.
pub fn is_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let component = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    digest.len() <= 256
        && algorithm.split(['+', '.', '_', '-']).all(component)
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

fn bounded(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS * 2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cases() -> ProptestConfig {
        ProptestConfig {
            cases: crowsnest_oci::fuzz_cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    #[test]
    fn digests_follow_the_grammar() {
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(is_digest(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"
        ));
        for bad in [
            "sha256:",
            ":abc",
            "sha256",
            "SHA256:ab",
            "sha256:é",
            "sha256:ab cd",
            "a+:b",
        ] {
            assert!(!is_digest(bad), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(cases())]

        #[test]
        fn manifest_info_never_panics_and_accepts_only_ascii_digests(
            digest in prop_oneof![any::<String>(), "sha256:[0-9a-f]{64}", "[a-z0-9+._-]{1,10}:[^ ]{0,80}"],
            platform in proptest::option::of(any::<String>()),
        ) {
            let info = ManifestInfo {
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                platform_digest: platform,
                created: None,
            };
            match manifest_info(&info) {
                Ok(()) => {
                    prop_assert!(info.digest.is_ascii() && info.digest.contains(':'));
                    prop_assert!(info.platform_digest.as_deref().is_none_or(|d| d.is_ascii()));
                }
                Err(message) => {
                    prop_assert!(message.starts_with("resolve() gave"));
                    // The error quotes a bounded excerpt, never the whole input.
                    prop_assert!(message.chars().count() < 400, "{}", message.len());
                }
            }
        }

        #[test]
        fn tags_never_panic_and_accepted_tags_are_ascii_words(
            tags in prop::collection::vec(prop_oneof![any::<String>(), "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"], 0..20),
        ) {
            match super::tags(&tags) {
                Ok(()) => {
                    for tag in &tags {
                        prop_assert!(tag.is_ascii() && !tag.is_empty() && tag.len() <= 128);
                    }
                }
                Err(message) => prop_assert!(message.chars().count() < 400, "{}", message),
            }
        }

        #[test]
        fn locations_never_panic_and_accepted_urls_are_http(
            registry_url in prop_oneof![any::<String>(), "(http|https|ftp)://[a-z0-9.:\\[\\]]{0,20}(/[a-z]{0,5})?"],
            repository in prop_oneof![any::<String>(), "[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}"],
        ) {
            let target = Location {
                registry_url: registry_url.clone(),
                repository: repository.clone(),
                display: "shown".into(),
            };
            match location(&target) {
                Ok(()) => {
                    let url = url::Url::parse(&registry_url);
                    prop_assert!(url.is_ok_and(|url| url.scheme().starts_with("http")));
                    prop_assert!(repository.is_ascii());
                }
                Err(message) => prop_assert!(message.chars().count() < 500, "{}", message),
            }
        }
    }
}
