//! Reading an image tag as a version: prefix, numeric core, pre-release,
//! suffix, revision and build metadata, plus the ordering and compatibility
//! rules of the `semver` strategy.
//!
//! Grammar (see the crate docs for the reasoning behind each rule):
//!
//! ```text
//! tag        = prefix core [pre-release] suffix [revision] ["+" build]
//! prefix     = everything before the first ASCII digit
//! core       = digits *("." digits)            dotted core, e.g. 5.14.0.9383
//!            | digits 1*("-" digits)           dashed calendar core, e.g. 2025-06-03
//! pre-release= "-" label [["." | "-"] digits] *("." digits)
//!            | label [digits] *("." digits)    attached, e.g. 3.13.0rc1, 3.13.0b4
//! label      = alpha | beta | rc | preview | pre | dev | snapshot   (any case)
//!              (attached form also accepts a | b, which then need digits)
//! revision   = "-ls" digits | "-r" digits      last dash token, e.g. -ls123, -r5
//! suffix     = the rest, kept verbatim (with its leading separator)
//! ```

use std::cmp::Ordering;
use std::fmt;

/// Pre-release labels accepted after a dash, longest first so that `preview`
/// is not read as `pre` followed by garbage.
const DASHED_LABELS: [&str; 7] = ["snapshot", "preview", "alpha", "beta", "pre", "dev", "rc"];

/// Labels accepted when glued to the core (`3.13.0rc1`, PEP 440 `3.13.0a1`).
const ATTACHED_LABELS: [&str; 9] = [
    "snapshot", "preview", "alpha", "beta", "pre", "dev", "rc", "a", "b",
];

/// Markers of a trailing rebuild counter (`-ls123` of linuxserver.io,
/// `-r5` of Bitnami and Alpine packages).
const REVISION_MARKERS: [&str; 2] = ["ls", "r"];

/// How the numbers of the core are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreSeparator {
    /// `1.25.3` (also used for single-number cores such as `16`).
    Dot,
    /// `2025-06-03`: a calendar version written with dashes.
    Dash,
}

impl CoreSeparator {
    fn as_char(self) -> char {
        match self {
            CoreSeparator::Dot => '.',
            CoreSeparator::Dash => '-',
        }
    }
}

/// A pre-release marker such as `-rc.1`, `-beta2` or attached `rc1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreRelease {
    /// Exactly as written, including the leading `-` when there is one.
    raw: String,
    /// Lower-cased label with `a`/`b` spelled `alpha`/`beta`, for ordering.
    label: String,
    /// Numeric identifiers after the label, as written (leading zeros kept).
    numbers: Vec<String>,
}

impl PreRelease {
    /// The marker as written, e.g. `-rc.1` or `b4`.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Normalised label used for ordering (`rc`, `alpha`, `beta`, ...).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Numbers following the label, as written.
    pub fn numbers(&self) -> &[String] {
        &self.numbers
    }

    /// Semver-style precedence: label (ASCII, case-insensitive), then the
    /// numbers numerically; fewer identifiers sort first (`rc` < `rc.1`).
    pub fn precedence(&self, other: &Self) -> Ordering {
        self.label
            .cmp(&other.label)
            .then_with(|| compare_number_lists(&self.numbers, &other.numbers))
    }
}

/// A trailing rebuild counter such as linuxserver's `-ls123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// Marker without the dash: `ls` or `r`.
    marker: String,
    /// Counter digits as written.
    number: String,
}

impl Revision {
    /// The marker (`ls` or `r`).
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The counter as written.
    pub fn number(&self) -> &str {
        &self.number
    }
}

/// A tag read as a version. `Display` writes back exactly the parsed text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagVersion {
    prefix: String,
    core: Vec<String>,
    separator: CoreSeparator,
    pre_release: Option<PreRelease>,
    suffix: String,
    revision: Option<Revision>,
    build: Option<String>,
}

/// Which component first differs between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Core number at this index (0-based).
    Core(usize),
    /// Only the pre-release (or its presence) differs.
    PreRelease,
    /// Only the rebuild counter differs.
    Revision,
    /// Same precedence.
    None,
}

impl TagVersion {
    /// Reads `tag` as a version; `None` when it contains no ASCII digit.
    pub fn parse(tag: &str) -> Option<TagVersion> {
        let first_digit = tag.find(|c: char| c.is_ascii_digit())?;
        let prefix = &tag[..first_digit];
        let rest = &tag[first_digit..];

        let (core, separator, after_core) = split_core(rest);
        let (pre_release, after_pre) = split_pre_release(after_core);
        let (body, build) = match after_pre.split_once('+') {
            Some((body, build)) => (body, Some(build.to_owned())),
            None => (after_pre, None),
        };
        let (suffix, revision) = split_revision(body);

        Some(TagVersion {
            prefix: prefix.to_owned(),
            core,
            separator,
            pre_release,
            suffix: suffix.to_owned(),
            revision,
            build,
        })
    }

    /// Text before the first digit, e.g. `v`, `version-`, `jammy-`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Numbers of the core as written.
    pub fn core(&self) -> &[String] {
        &self.core
    }

    /// How the core's numbers are joined.
    pub fn separator(&self) -> CoreSeparator {
        self.separator
    }

    /// The pre-release marker, if any.
    pub fn pre_release(&self) -> Option<&PreRelease> {
        self.pre_release.as_ref()
    }

    /// Everything after the core/pre-release that is not a revision or build
    /// metadata, verbatim with its separator (`-alpine3.19`, `-slim-bookworm`).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The trailing rebuild counter, if any.
    pub fn revision(&self) -> Option<&Revision> {
        self.revision.as_ref()
    }

    /// Build metadata after `+`, ignored for ordering and compatibility.
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }

    /// True when this is a pre-release.
    pub fn is_pre_release(&self) -> bool {
        self.pre_release.is_some()
    }

    /// Same shape: prefix, number of core parts, core separator, suffix and
    /// revision marker (presence and kind) all equal.
    pub fn is_compatible_with(&self, other: &TagVersion) -> bool {
        self.prefix == other.prefix
            && self.core.len() == other.core.len()
            && self.separator == other.separator
            && self.suffix == other.suffix
            && self.revision.as_ref().map(|r| &r.marker)
                == other.revision.as_ref().map(|r| &r.marker)
    }

    /// Version precedence: core numerically, then release above its own
    /// pre-releases, then pre-release identifiers, then the revision counter.
    /// Meant for compatible versions; build metadata is ignored.
    pub fn precedence(&self, other: &TagVersion) -> Ordering {
        compare_number_lists(&self.core, &other.core)
            .then_with(|| match (&self.pre_release, &other.pre_release) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.precedence(b),
            })
            .then_with(|| {
                let counter = |v: &TagVersion| v.revision.as_ref().map(|r| r.number.clone());
                match (counter(self), counter(other)) {
                    (Some(a), Some(b)) => compare_numbers(&a, &b),
                    (a, b) => a.is_some().cmp(&b.is_some()),
                }
            })
    }

    /// The first component in which `self` and `other` differ.
    pub fn difference(&self, other: &TagVersion) -> Difference {
        let longest = self.core.len().max(other.core.len());
        for index in 0..longest {
            let ours = self.core.get(index).map_or("", String::as_str);
            let theirs = other.core.get(index).map_or("", String::as_str);
            if compare_numbers(ours, theirs) != Ordering::Equal {
                return Difference::Core(index);
            }
        }
        let pre_order = match (&self.pre_release, &other.pre_release) {
            (None, None) => Ordering::Equal,
            (Some(a), Some(b)) => a.precedence(b),
            _ => Ordering::Less,
        };
        if pre_order != Ordering::Equal {
            return Difference::PreRelease;
        }
        let counter = |v: &TagVersion| v.revision.as_ref().map(|r| r.number.clone());
        let same_revision = match (counter(self), counter(other)) {
            (Some(a), Some(b)) => compare_numbers(&a, &b) == Ordering::Equal,
            (a, b) => a.is_none() && b.is_none(),
        };
        if same_revision {
            Difference::None
        } else {
            Difference::Revision
        }
    }
}

impl fmt::Display for TagVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)?;
        for (index, number) in self.core.iter().enumerate() {
            if index > 0 {
                write!(f, "{}", self.separator.as_char())?;
            }
            f.write_str(number)?;
        }
        if let Some(pre) = &self.pre_release {
            f.write_str(&pre.raw)?;
        }
        f.write_str(&self.suffix)?;
        if let Some(revision) = &self.revision {
            write!(f, "-{}{}", revision.marker, revision.number)?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

/// Compares two unsigned decimal numbers of any length without overflow:
/// leading zeros are ignored, then the longer number is greater, then digits
/// compare lexically. The empty string counts as zero.
pub fn compare_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares lists of numbers element-wise; a shorter list that is a prefix of
/// a longer one sorts first.
fn compare_number_lists(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = compare_numbers(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Length of the run of ASCII digits at the start of `text`.
fn digit_run(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// True when `text` starts with `separator` immediately followed by a digit.
fn starts_with_separated_digit(text: &str, separator: char) -> bool {
    text.strip_prefix(separator)
        .is_some_and(|tail| tail.starts_with(|c: char| c.is_ascii_digit()))
}

/// Splits the numeric core off `text` (which starts with a digit).
fn split_core(text: &str) -> (Vec<String>, CoreSeparator, &str) {
    let first = digit_run(text);
    let mut core = vec![text[..first].to_owned()];
    let mut rest = &text[first..];
    // The first separator decides the style: `2025-06-03` is a dashed
    // calendar core, `1.25.3` a dotted one. Styles never mix.
    let separator = if starts_with_separated_digit(rest, '.') {
        CoreSeparator::Dot
    } else if starts_with_separated_digit(rest, '-') {
        CoreSeparator::Dash
    } else {
        return (core, CoreSeparator::Dot, rest);
    };
    let separator_char = separator.as_char();
    while starts_with_separated_digit(rest, separator_char) {
        let tail = &rest[1..];
        let run = digit_run(tail);
        core.push(tail[..run].to_owned());
        rest = &tail[run..];
    }
    (core, separator, rest)
}

/// Case-insensitive ASCII `starts_with`.
fn starts_with_ignore_case(text: &str, needle: &str) -> bool {
    text.len() >= needle.len()
        && text.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
}

/// Reads an optional pre-release at the start of `text` (what follows the core).
fn split_pre_release(text: &str) -> (Option<PreRelease>, &str) {
    let (lead, body, labels): (&str, &str, &[&str]) = match text.strip_prefix('-') {
        Some(body) => ("-", body, &DASHED_LABELS),
        None => ("", text, &ATTACHED_LABELS),
    };
    for &label in labels {
        if !starts_with_ignore_case(body, label) {
            continue;
        }
        let mut rest = &body[label.len()..];
        let mut numbers = Vec::new();
        // First number: glued, or after `.` / `-`.
        let first_separator_len = if rest.starts_with(|c: char| c.is_ascii_digit()) {
            Some(0)
        } else if starts_with_separated_digit(rest, '.') || starts_with_separated_digit(rest, '-') {
            Some(1)
        } else {
            None
        };
        if let Some(skip) = first_separator_len {
            let tail = &rest[skip..];
            let run = digit_run(tail);
            numbers.push(tail[..run].to_owned());
            rest = &tail[run..];
            while starts_with_separated_digit(rest, '.') {
                let tail = &rest[1..];
                let run = digit_run(tail);
                numbers.push(tail[..run].to_owned());
                rest = &tail[run..];
            }
        }
        // The short PEP 440 labels are only labels when a number follows
        // (`3.13.0b4`), so that `8u372` or `1.2.3a` are not pre-releases.
        if label.len() == 1 && numbers.is_empty() {
            continue;
        }
        // A label must end at a boundary: `-devel` or `-rclone` are suffixes.
        if !(rest.is_empty() || rest.starts_with('-') || rest.starts_with('+')) {
            continue;
        }
        let consumed = text.len() - rest.len();
        let normalised = match label {
            "a" => "alpha",
            "b" => "beta",
            other => other,
        };
        let pre = PreRelease {
            raw: format!("{lead}{}", &body[..consumed - lead.len()]),
            label: normalised.to_owned(),
            numbers,
        };
        return (Some(pre), rest);
    }
    (None, text)
}

/// Splits a trailing `-ls123` / `-r5` revision off the suffix body.
fn split_revision(body: &str) -> (&str, Option<Revision>) {
    let Some(dash) = body.rfind('-') else {
        return (body, None);
    };
    let token = &body[dash + 1..];
    for marker in REVISION_MARKERS {
        if let Some(number) = token.strip_prefix(marker) {
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                let revision = Revision {
                    marker: marker.to_owned(),
                    number: number.to_owned(),
                };
                return (&body[..dash], Some(revision));
            }
        }
    }
    (body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tag: &str) -> TagVersion {
        TagVersion::parse(tag).unwrap_or_else(|| panic!("{tag} should parse"))
    }

    fn core(tag: &str) -> Vec<String> {
        parse(tag).core().to_vec()
    }

    #[test]
    fn tags_without_digits_are_not_versions() {
        for tag in [
            "latest",
            "stable",
            "edge",
            "mainline-alpine",
            "",
            "alpine",
            "bookworm-slim",
        ] {
            assert_eq!(TagVersion::parse(tag), None, "{tag}");
        }
    }

    #[test]
    fn reads_prefix_core_and_suffix() {
        let v = parse("1.25.3-alpine3.19-slim");
        assert_eq!(v.prefix(), "");
        assert_eq!(core("1.25.3-alpine3.19-slim"), ["1", "25", "3"]);
        assert_eq!(v.suffix(), "-alpine3.19-slim");
        assert!(v.pre_release().is_none());

        let v = parse("version-1.2.3");
        assert_eq!(v.prefix(), "version-");
        assert_eq!(v.core().len(), 3);

        let v = parse("jammy-20240125");
        assert_eq!(v.prefix(), "jammy-");
        assert_eq!(core("jammy-20240125"), ["20240125"]);
        assert_eq!(v.suffix(), "");

        let v = parse("v2");
        assert_eq!(v.prefix(), "v");
        assert_eq!(core("v2"), ["2"]);

        let v = parse("alpine3.19");
        assert_eq!(v.prefix(), "alpine");
        assert_eq!(core("alpine3.19"), ["3", "19"]);
    }

    #[test]
    fn any_number_of_core_parts() {
        assert_eq!(core("7"), ["7"]);
        assert_eq!(core("5.14.0.9383"), ["5", "14", "0", "9383"]);
        assert_eq!(core("2024.01.15"), ["2024", "01", "15"]);
    }

    #[test]
    fn dashed_calendar_versions() {
        let v = parse("2025-06-03");
        assert_eq!(core("2025-06-03"), ["2025", "06", "03"]);
        assert_eq!(v.separator(), CoreSeparator::Dash);
        assert_eq!(v.suffix(), "");
        let v = parse("2025-06-03-alpine");
        assert_eq!(v.core().len(), 3);
        assert_eq!(v.suffix(), "-alpine");
        // A dotted core never continues with dashes: `-1` is a suffix.
        let v = parse("1.2.3-1");
        assert_eq!(v.core().len(), 3);
        assert_eq!(v.suffix(), "-1");
        assert_eq!(v.separator(), CoreSeparator::Dot);
    }

    #[test]
    fn pre_releases() {
        let v = parse("7.0-rc1-alpine");
        assert_eq!(v.pre_release().unwrap().raw(), "-rc1");
        assert_eq!(v.pre_release().unwrap().label(), "rc");
        assert_eq!(v.suffix(), "-alpine");

        let v = parse("1.0.0-RC.10");
        assert_eq!(v.pre_release().unwrap().label(), "rc");
        assert_eq!(v.pre_release().unwrap().numbers(), ["10"]);

        let v = parse("2.0-beta-1");
        assert_eq!(v.pre_release().unwrap().numbers(), ["1"]);
        assert_eq!(v.suffix(), "");

        let v = parse("1.2.3rc1");
        assert_eq!(v.pre_release().unwrap().raw(), "rc1");
        assert_eq!(v.suffix(), "");

        let v = parse("3.13.0b4-slim-bookworm");
        assert_eq!(v.pre_release().unwrap().label(), "beta");
        assert_eq!(v.suffix(), "-slim-bookworm");

        let v = parse("4.0-preview.2");
        assert_eq!(v.pre_release().unwrap().label(), "preview");

        let v = parse("1.0-SNAPSHOT");
        assert_eq!(v.pre_release().unwrap().label(), "snapshot");
    }

    #[test]
    fn look_alike_words_are_suffixes() {
        for (tag, suffix) in [
            ("1.2-devel", "-devel"),
            ("1.2-rclone", "-rclone"),
            ("1.2-alpine", "-alpine"),
            ("1.2-prod", "-prod"),
            ("1.2.3a", "a"),
            ("8u372-jdk", "u372-jdk"),
            ("1.2-rc1a", "-rc1a"),
        ] {
            let v = parse(tag);
            assert!(v.pre_release().is_none(), "{tag}");
            assert_eq!(v.suffix(), suffix, "{tag}");
        }
    }

    #[test]
    fn revisions_and_build_metadata() {
        let v = parse("4.9.0.12-ls123");
        assert_eq!(v.suffix(), "");
        assert_eq!(v.revision().unwrap().marker(), "ls");
        assert_eq!(v.revision().unwrap().number(), "123");

        let v = parse("16.2.0-debian-12-r5");
        assert_eq!(v.suffix(), "-debian-12");
        assert_eq!(v.revision().unwrap().marker(), "r");

        let v = parse("1.2.3+build.7");
        assert_eq!(v.build(), Some("build.7"));
        assert_eq!(v.suffix(), "");

        let v = parse("1.2.3-rc.1+meta");
        assert!(v.is_pre_release());
        assert_eq!(v.build(), Some("meta"));
    }

    #[test]
    fn display_round_trips() {
        for tag in [
            "1.25.3-alpine3.19-slim",
            "v2",
            "jammy-20240125",
            "4.9.0.12-ls123",
            "7.0-rc1-alpine",
            "2025-06-03",
            "1.2.3rc1",
            "3.13.0B4-slim",
            "1.0.0-rc.1.2+build.5",
            "version-01.002.3",
            "16.2.0-debian-12-r5",
            "8u372-b07-jdk",
        ] {
            assert_eq!(parse(tag).to_string(), tag);
        }
    }

    #[test]
    fn numbers_compare_without_overflow() {
        assert_eq!(compare_numbers("12", "9"), Ordering::Greater);
        assert_eq!(compare_numbers("0012", "12"), Ordering::Equal);
        assert_eq!(compare_numbers("", "0"), Ordering::Equal);
        let huge = "123456789012345678901234567890";
        let huger = "123456789012345678901234567891";
        assert_eq!(compare_numbers(huge, huger), Ordering::Less);
        assert_eq!(
            compare_numbers(huge, "18446744073709551615"),
            Ordering::Greater
        );
    }

    #[test]
    fn precedence_rules() {
        let order = |a: &str, b: &str| parse(a).precedence(&parse(b));
        assert_eq!(order("4.9.0.12", "4.9.0.9"), Ordering::Greater);
        assert_eq!(order("2025-08-05", "2025-06-03"), Ordering::Greater);
        assert_eq!(order("1.02", "1.2"), Ordering::Equal);
        assert_eq!(order("1.2.3", "1.2.3-rc1"), Ordering::Greater);
        assert_eq!(order("1.0.0-rc.10", "1.0.0-rc.2"), Ordering::Greater);
        assert_eq!(order("1.0.0-rc10", "1.0.0-rc2"), Ordering::Greater);
        assert_eq!(order("1.0.0-alpha", "1.0.0-beta"), Ordering::Less);
        assert_eq!(order("1.0.0-beta.11", "1.0.0-rc.1"), Ordering::Less);
        assert_eq!(order("1.0.0-rc", "1.0.0-rc.1"), Ordering::Less);
        assert_eq!(order("1.0.0-RC2", "1.0.0-rc1"), Ordering::Greater);
        assert_eq!(order("3.13.0a1", "3.13.0b1"), Ordering::Less);
        assert_eq!(order("3.13.0b1", "3.13.0rc1"), Ordering::Less);
        assert_eq!(order("1.2.3+a", "1.2.3+b"), Ordering::Equal);
        assert_eq!(order("4.9.0.12-ls124", "4.9.0.12-ls123"), Ordering::Greater);
    }

    #[test]
    fn compatibility_rules() {
        let compatible = |a: &str, b: &str| parse(a).is_compatible_with(&parse(b));
        assert!(compatible("1.20-alpine", "1.31-alpine"));
        assert!(!compatible("1.20-alpine", "1.31-bookworm"));
        assert!(!compatible("1.20-alpine", "1.31.0-alpine"));
        assert!(!compatible("v1.2", "1.3"));
        assert!(!compatible("2025-06-03", "2025.06.03"));
        assert!(compatible("7.0-rc1-alpine", "7.0-alpine"));
        assert!(compatible("4.9.0.12-ls123", "4.9.0.13-ls130"));
        assert!(!compatible("4.9.0.12-ls123", "4.9.0.13"));
        assert!(!compatible("7.2.4-alpine3.19", "7.2.5-alpine3.20"));
    }

    #[test]
    fn differences() {
        let diff = |a: &str, b: &str| parse(a).difference(&parse(b));
        assert_eq!(diff("1.2.3", "2.0.0"), Difference::Core(0));
        assert_eq!(diff("1.2.3", "1.3.0"), Difference::Core(1));
        assert_eq!(diff("1.2.3.4", "1.2.3.5"), Difference::Core(3));
        assert_eq!(diff("1.2.3-rc1", "1.2.3"), Difference::PreRelease);
        assert_eq!(diff("1.2.3-rc1", "1.2.3-rc2"), Difference::PreRelease);
        assert_eq!(diff("1.2-ls1", "1.2-ls2"), Difference::Revision);
        assert_eq!(diff("1.02", "1.2"), Difference::None);
    }
}
