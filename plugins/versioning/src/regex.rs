//! The regex strategy: the user's pattern says where the numbers are.
//!
//! Option `regex` (in `Options::extra`) is a pattern with the named groups
//! `major`, `minor`, `patch`, `build` (digits, each optional) and `compat`
//! (text that must equal the current tag's). Candidates the pattern does not
//! match are dropped; the rest compare numerically group by group.
//!
//! Decisions: the pattern is used as written (unanchored unless anchored);
//! a candidate must have the same numeric groups taking part in the match as
//! the current tag (the analogue of semver's part count), and its `compat`
//! text must be identical (absent on both counts as equal). A numeric group
//! that captured non-digits drops the candidate, or makes the current tag a
//! non-version (digest watching), as does a current tag the pattern does not
//! match. A pattern with none of the four numeric groups is an `OptionError`.
//! There are no pre-releases here: a pattern that should skip them excludes
//! them itself.

use std::cmp::Ordering;

use regex_lite::Regex;

use crate::filters::{compile_regex, Filters};
use crate::tag::compare_numbers;
use crate::{prefer_spelling, Decision, Offer, OptionError, Options, UpdateKind};

/// The `extra` key holding the pattern.
pub const REGEX_OPTION: &str = "regex";

/// Numeric groups in order of significance.
const NUMERIC_GROUPS: [&str; 4] = ["major", "minor", "patch", "build"];

/// Group whose text must be identical between current tag and candidate.
const COMPAT_GROUP: &str = "compat";

/// A tag read through the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RegexVersion {
    /// `major`, `minor`, `patch`, `build` as captured (absent when the group
    /// did not take part in the match).
    numbers: [Option<String>; 4],
    compat: Option<String>,
}

impl RegexVersion {
    /// Reads `text`; `None` when the pattern does not match, a numeric group
    /// captured something other than digits, or no numeric group took part.
    fn read(regex: &Regex, text: &str) -> Option<RegexVersion> {
        let captures = regex.captures(text)?;
        let mut numbers: [Option<String>; 4] = Default::default();
        for (slot, group) in numbers.iter_mut().zip(NUMERIC_GROUPS) {
            if let Some(found) = captures.name(group) {
                let digits = found.as_str();
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                *slot = Some(digits.to_owned());
            }
        }
        if numbers.iter().all(Option::is_none) {
            return None;
        }
        let compat = captures.name(COMPAT_GROUP).map(|m| m.as_str().to_owned());
        Some(RegexVersion { numbers, compat })
    }

    /// Same numeric groups present and the same `compat` text.
    fn is_compatible_with(&self, other: &RegexVersion) -> bool {
        self.compat == other.compat
            && self
                .numbers
                .iter()
                .zip(&other.numbers)
                .all(|(a, b)| a.is_some() == b.is_some())
    }

    /// Numeric comparison in order major, minor, patch, build, with the
    /// index of the first group that differs.
    fn compare(&self, other: &RegexVersion) -> (Ordering, Option<usize>) {
        for (index, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            let order = match (a, b) {
                (Some(a), Some(b)) => compare_numbers(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            };
            if order != Ordering::Equal {
                return (order, Some(index));
            }
        }
        (Ordering::Equal, None)
    }
}

/// Compiles the `regex` option, which must exist and name a numeric group.
fn pattern(opts: &Options) -> Result<Regex, OptionError> {
    let source = opts
        .extra
        .iter()
        .find(|(key, _)| key == REGEX_OPTION)
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| {
            OptionError::new(
                REGEX_OPTION,
                "the regex strategy needs a `regex` option (a pattern with named groups major, minor, patch, build, compat)",
            )
        })?;
    let regex = compile_regex(REGEX_OPTION, Some(source))?
        .ok_or_else(|| OptionError::new(REGEX_OPTION, "missing pattern"))?;
    let has_numeric_group = regex
        .capture_names()
        .flatten()
        .any(|name| NUMERIC_GROUPS.contains(&name));
    if !has_numeric_group {
        return Err(OptionError::new(
            REGEX_OPTION,
            format!("pattern `{source}` has none of the named groups major, minor, patch, build"),
        ));
    }
    Ok(regex)
}

/// Chooses the greatest candidate that the pattern reads with the same
/// groups and `compat` as `current`, strictly greater than it. A `current`
/// the pattern cannot read yields digest watching.
pub fn choose(
    current: &str,
    candidates: &[String],
    opts: &Options,
) -> Result<Decision, OptionError> {
    let filters = Filters::compile(opts)?;
    let regex = pattern(opts)?;
    let Some(current_version) = filters
        .rewrite(current)
        .and_then(|text| RegexVersion::read(&regex, &text))
    else {
        return Ok(Decision::digest_only());
    };

    let mut best: Option<(&str, RegexVersion, usize)> = None;
    for (tag, text) in filters.candidates(candidates) {
        let Some(version) = RegexVersion::read(&regex, &text) else {
            continue;
        };
        if !version.is_compatible_with(&current_version) {
            continue;
        }
        let (Ordering::Greater, Some(changed)) = version.compare(&current_version) else {
            continue;
        };
        let replaces_best = match &best {
            None => true,
            Some((best_tag, best_version, _)) => version
                .compare(best_version)
                .0
                .then_with(|| prefer_spelling(tag, best_tag))
                .is_gt(),
        };
        if replaces_best {
            best = Some((tag, version, changed));
        }
    }

    let offer = best.map(|(tag, _, changed)| Offer {
        tag: tag.to_owned(),
        kind: match changed {
            0 => UpdateKind::Major,
            1 => UpdateKind::Minor,
            _ => UpdateKind::Patch,
        },
    });
    Ok(Decision::versioned(offer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pattern: &str) -> Options {
        Options {
            extra: vec![(REGEX_OPTION.to_owned(), pattern.to_owned())],
            ..Options::default()
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn compares_groups_numerically() {
        let o = opts(r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)\.(?P<build>\d+)$");
        let decision = choose(
            "4.9.0.9",
            &tags(&["4.9.0.12", "4.9.0.10", "4.10.0.1-x"]),
            &o,
        )
        .unwrap();
        let offer = decision.offer.unwrap();
        assert_eq!(
            (offer.tag.as_str(), offer.kind),
            ("4.9.0.12", UpdateKind::Patch)
        );
    }

    #[test]
    fn compat_group_must_match() {
        let o = opts(r"^(?P<major>\d+)\.(?P<minor>\d+)-(?P<compat>\w+)$");
        let decision = choose("1.20-alpine", &tags(&["1.31-bookworm", "1.21-alpine"]), &o).unwrap();
        assert_eq!(decision.offer.unwrap().tag, "1.21-alpine");
    }

    #[test]
    fn missing_or_bad_pattern_is_an_option_error() {
        let err = choose("1.0", &[], &Options::default()).unwrap_err();
        assert_eq!(err.option, "regex");
        assert_eq!(choose("1.0", &[], &opts("((")).unwrap_err().option, "regex");
        assert_eq!(
            choose("1.0", &[], &opts(r"(\d+)")).unwrap_err().option,
            "regex"
        );
    }

    #[test]
    fn unreadable_current_watches_the_digest() {
        let o = opts(r"^(?P<major>\d+)$");
        assert_eq!(
            choose("latest", &tags(&["2"]), &o).unwrap(),
            Decision::digest_only()
        );
    }
}
