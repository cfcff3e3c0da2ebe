//! The default strategy: same-shape tags, compared part by part.

use std::cmp::Ordering;

use crate::filters::Filters;
use crate::tag::{Difference, TagVersion};
use crate::{prefer_spelling, Decision, Offer, OptionError, Options, UpdateKind};

/// Chooses the greatest candidate compatible with `current` (same prefix,
/// number of core parts, separator, suffix and revision marker) that is
/// strictly greater than it. Pre-release candidates count only when `current`
/// is a pre-release. A `current` that is not a version yields digest watching.
pub fn choose(
    current: &str,
    candidates: &[String],
    opts: &Options,
) -> Result<Decision, OptionError> {
    let filters = Filters::compile(opts)?;
    let Some(current_version) = filters
        .rewrite(current)
        .and_then(|text| TagVersion::parse(&text))
    else {
        return Ok(Decision::digest_only());
    };

    let mut best: Option<(&str, TagVersion)> = None;
    for tag in candidates.iter().map(String::as_str) {
        let Some(version) = filters
            .rewrite(tag)
            .and_then(|text| TagVersion::parse(&text))
        else {
            continue;
        };
        if !version.is_compatible_with(&current_version)
            || (version.is_pre_release() && !current_version.is_pre_release())
            || version.precedence(&current_version) != Ordering::Greater
        {
            continue;
        }
        // `include`/`exclude` are pure tests on the published tag, so testing
        // them last gives the same answer; their regexes are the costliest
        // step, and few candidates get this far (issue 5's < 1 ms target).
        if !filters.admits(tag) {
            continue;
        }
        let replaces_best = match &best {
            None => true,
            Some((best_tag, best_version)) => version
                .precedence(best_version)
                .then_with(|| prefer_spelling(tag, best_tag))
                .is_gt(),
        };
        if replaces_best {
            best = Some((tag, version));
        }
    }

    let offer = best.map(|(tag, version)| Offer {
        tag: tag.to_owned(),
        kind: kind_of(current_version.difference(&version)),
    });
    Ok(Decision::versioned(offer))
}

/// Maps the first differing component to the reported kind.
fn kind_of(difference: Difference) -> UpdateKind {
    match difference {
        Difference::Core(0) => UpdateKind::Major,
        Difference::Core(1) => UpdateKind::Minor,
        Difference::Core(_) | Difference::Revision => UpdateKind::Patch,
        Difference::PreRelease => UpdateKind::Prerelease,
        Difference::None => UpdateKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    fn offer(current: &str, list: &[&str]) -> Option<(String, UpdateKind)> {
        choose(current, &tags(list), &Options::default())
            .unwrap()
            .offer
            .map(|o| (o.tag, o.kind))
    }

    #[test]
    fn equal_versions_spelled_differently_tie_break_by_spelling() {
        let expected = Some(("1.3".to_owned(), UpdateKind::Minor));
        assert_eq!(offer("1.2", &["1.03", "1.3"]), expected);
        assert_eq!(offer("1.2", &["1.3", "1.03"]), expected);
        assert_eq!(offer("1.2", &["1.02"]), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(offer("1.2.3", &["2.0.0"]).unwrap().1, UpdateKind::Major);
        assert_eq!(offer("1.2.3", &["1.3.0"]).unwrap().1, UpdateKind::Minor);
        assert_eq!(offer("1.2.3.4", &["1.2.3.5"]).unwrap().1, UpdateKind::Patch);
        assert_eq!(
            offer("1.2.3-rc1", &["1.2.3"]).unwrap().1,
            UpdateKind::Prerelease
        );
        assert_eq!(offer("1.2-ls1", &["1.2-ls2"]).unwrap().1, UpdateKind::Patch);
    }

    #[test]
    fn non_versions_watch_the_digest() {
        let decision = choose("latest", &tags(&["1.0", "2.0"]), &Options::default()).unwrap();
        assert_eq!(decision, Decision::digest_only());
    }

    #[test]
    fn transform_miss_on_current_watches_the_digest() {
        let opts = Options {
            transform: Some(r"^release_(\d+)$ => $1".to_owned()),
            ..Options::default()
        };
        let decision = choose("v1", &tags(&["release_2"]), &opts).unwrap();
        assert_eq!(decision, Decision::digest_only());
    }
}
