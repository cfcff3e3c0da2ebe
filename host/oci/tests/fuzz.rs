//! Property-based fuzzing of the parsers that read outside input: image
//! references (from Docker and users), `WWW-Authenticate`, `Link` and
//! `Retry-After` (from registries). Each harness asserts real properties:
//! no panic on any input, round trips where the grammar allows, and errors
//! that name the offending input. `CROWSNEST_FUZZ_CASES` sets the number of
//! cases per harness (256 by default, as CI runs it).

use std::time::{Duration, SystemTime};

use crowsnest_oci::reference::ImageReference;
use crowsnest_oci::{next_link, parse_challenges, parse_link_header, parse_retry_after};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: crowsnest_oci::fuzz_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text shaped like the grammar's alphabet, so the parsers get past their
/// first checks, mixed with anything at all.
fn reference_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._/:@+-]{0,80}",
        "[a-z0-9.-]{1,20}(:[0-9]{1,6})?/[a-z0-9._-]{1,20}(:[A-Za-z0-9._-]{1,20})?(@sha256:[0-9a-f]{0,70})?",
        any::<String>(),
    ]
}

/// A valid reference and its parts: domain (with a dot), path, tag, digest.
fn valid_reference() -> impl Strategy<Value = (String, String, Option<String>, Option<String>)> {
    (
        "[a-z0-9]{1,10}\\.[a-z]{2,5}(:[1-9][0-9]{0,3})?",
        "[a-z0-9]{1,8}(([._]|__|-+)[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}",
        proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"),
        proptest::option::of("[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}"))),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reference_parser_never_panics_and_errors_name_the_input(input in reference_like()) {
        match ImageReference::parse(&input) {
            Ok(parsed) => {
                // What parsed re-parses to the same reference (normalised form is a fixed point).
                // (Only the normalised parts: the written domain is, by design, as written.)
                let again = ImageReference::parse(&parsed.to_string());
                prop_assert!(again.is_ok(), "{} -> {}: {:?}", input, parsed, again);
                let again = again.unwrap();
                prop_assert_eq!(again.to_string(), parsed.to_string());
                prop_assert_eq!((again.domain(), again.path()), (parsed.domain(), parsed.path()));
                prop_assert_eq!((again.tag(), again.digest()), (parsed.tag(), parsed.digest()));
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(!message.is_empty());
                // The message quotes the part it rejects (or says the input is empty).
                let quotes_input = message.contains('"') || input.is_empty();
                prop_assert!(quotes_input, "{:?}: {}", input, message);
            }
        }
    }

    #[test]
    fn valid_references_round_trip((domain, path, tag, digest) in valid_reference()) {
        let mut text = format!("{domain}/{path}");
        if let Some(tag) = &tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &digest {
            text.push('@');
            text.push_str(digest);
        }
        let parsed = ImageReference::parse(&text);
        prop_assert!(parsed.is_ok(), "{}: {:?}", text, parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.domain(), domain.as_str());
        prop_assert_eq!(parsed.path(), path.as_str());
        prop_assert_eq!(parsed.tag(), tag.as_deref());
        prop_assert_eq!(parsed.digest(), digest.as_deref());
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn www_authenticate_never_panics(header in prop_oneof![
        any::<String>(),
        "[A-Za-z]{0,8}( [a-z]{0,6}=(\"[^\"]{0,20}\"|[a-z0-9]{0,10})(, ?)?){0,4}(, [A-Za-z]{1,8} [a-z]=[a-z])?",
    ]) {
        for challenge in parse_challenges(&header) {
            // Schemes are lower-cased tokens; parameter names too.
            prop_assert_eq!(challenge.scheme.clone(), challenge.scheme.to_ascii_lowercase());
            for (name, _) in &challenge.params {
                prop_assert_eq!(name.clone(), name.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn bearer_challenges_round_trip(
        realm in "https?://[a-z0-9.]{1,20}(:[0-9]{1,5})?/[a-zA-Z0-9/_.-]{0,20}",
        service in "[A-Za-z0-9 ,;=._-]{0,30}",
        scope in "[a-z]{1,10}:[a-z0-9/._-]{1,20}:[a-z,*]{1,12}",
        scheme in "(Bearer|bearer|BEARER)",
    ) {
        // Quoted values may hold commas, spaces and `=`; `"` and `\` are escaped.
        let header = format!(r#"{scheme} realm="{realm}",service="{service}",scope="{scope}""#);
        let challenges = parse_challenges(&header);
        prop_assert_eq!(challenges.len(), 1, "{}", header);
        let bearer = &challenges[0];
        prop_assert_eq!(bearer.scheme.as_str(), "bearer");
        prop_assert_eq!(bearer.param("realm"), Some(realm.as_str()));
        prop_assert_eq!(bearer.param("service"), Some(service.as_str()));
        prop_assert_eq!(bearer.param("SCOPE"), Some(scope.as_str()));
    }

    #[test]
    fn link_header_never_panics(header in prop_oneof![
        any::<String>(),
        "(<[^>]{0,30}>?(; ?[a-z]{0,4}=\"?[a-z ]{0,8}\"?){0,3}(, ?)?){0,3}",
    ]) {
        let links = parse_link_header(&header);
        for link in &links {
            prop_assert!(!link.target.contains('>'), "{:?}", link);
        }
        // `next` is one of the parsed links' targets, never something invented.
        if let Some(next) = next_link([header.as_str()]) {
            prop_assert!(links.iter().any(|link| link.target == next), "{} -> {}", header, next);
        }
    }

    #[test]
    fn next_links_round_trip(
        target in "/v2/[a-z0-9/]{1,20}/tags/list\\?n=[0-9]{1,3}&last=[a-z0-9.-]{1,10}",
        other in "/[a-z]{1,10}",
        next_first in any::<bool>(),
    ) {
        let next = format!("<{target}>; rel=\"next\"");
        let prev = format!("<{other}>; rel=\"prev\"");
        let header = if next_first { format!("{next}, {prev}") } else { format!("{prev}, {next}") };
        prop_assert_eq!(next_link([header.as_str()]), Some(target));
    }

    #[test]
    fn retry_after_never_panics_and_reads_seconds(
        text in any::<String>(),
        seconds in 0u64..100_000,
    ) {
        let now = SystemTime::now();
        let _ = parse_retry_after(&text, now);
        prop_assert_eq!(
            parse_retry_after(&seconds.to_string(), now),
            Some(Duration::from_secs(seconds))
        );
    }
}
