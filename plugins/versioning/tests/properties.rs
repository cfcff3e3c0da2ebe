//! Property tests of the strategies against an independent oracle: tags are
//! generated from structured specs, and the expected answer is computed from
//! those specs with plain integers, never through the crate's parser.

use std::cmp::Ordering;

use proptest::prelude::*;
use versioning::tag::{compare_numbers, TagVersion};
use versioning::{Decision, Options, UpdateKind};

/// A tag built from parts, in a small universe so that candidates are often
/// compatible with the current tag.
#[derive(Debug, Clone)]
struct Spec {
    prefix: &'static str,
    /// Numbers and whether each is written with a leading zero.
    numbers: Vec<(u64, bool)>,
    dashed: bool,
    /// Label as written, glued or after a dash, and its number.
    pre: Option<(&'static str, bool, Option<u64>)>,
    suffix: &'static str,
    /// linuxserver-style rebuild counter.
    revision: Option<u64>,
}

impl Spec {
    fn render(&self) -> String {
        let separator = if self.dashed { "-" } else { "." };
        let core: Vec<String> = self
            .numbers
            .iter()
            .map(|(n, zero)| {
                if *zero {
                    format!("0{n}")
                } else {
                    n.to_string()
                }
            })
            .collect();
        let mut tag = format!("{}{}", self.prefix, core.join(separator));
        if let Some((label, glued, number)) = self.pre {
            if !glued {
                tag.push('-');
            }
            tag.push_str(label);
            if let Some(number) = number {
                tag.push_str(&number.to_string());
            }
        }
        tag.push_str(self.suffix);
        if let Some(revision) = self.revision {
            tag.push_str(&format!("-ls{revision}"));
        }
        tag
    }

    /// Shape: what must be equal for a candidate to be compatible.
    fn shape(&self) -> (&'static str, usize, bool, &'static str, bool) {
        (
            self.prefix,
            self.numbers.len(),
            self.dashed && self.numbers.len() > 1,
            self.suffix,
            self.revision.is_some(),
        )
    }

    /// Ordering key: core numbers, then release above pre-releases, then
    /// pre-release label and number, then revision.
    #[allow(clippy::type_complexity)]
    fn key(&self) -> (Vec<u64>, Option<(String, Option<u64>)>, bool, Option<u64>) {
        let numbers = self.numbers.iter().map(|(n, _)| *n).collect();
        let pre = self.pre.map(|(label, _, number)| {
            let label = match label.to_ascii_lowercase().as_str() {
                "a" => "alpha".to_owned(),
                "b" => "beta".to_owned(),
                other => other.to_owned(),
            };
            (label, number)
        });
        // `is_none` sorts releases (true) above pre-releases (false).
        (numbers, pre.clone(), pre.is_none(), self.revision)
    }

    fn compare(&self, other: &Spec) -> Ordering {
        let (a_core, a_pre, a_release, a_rev) = self.key();
        let (b_core, b_pre, b_release, b_rev) = other.key();
        a_core
            .cmp(&b_core)
            .then(a_release.cmp(&b_release))
            .then(a_pre.cmp(&b_pre))
            .then(a_rev.cmp(&b_rev))
    }
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let numbers = prop::collection::vec((0u64..6, prop::bool::weighted(0.1)), 1..=3);
    let pre = prop::option::weighted(
        0.3,
        prop_oneof![
            Just(("rc", false)),
            Just(("RC", false)),
            Just(("alpha", false)),
            Just(("beta", false)),
            Just(("rc", true)),
            Just(("b", true)),
        ]
        .prop_flat_map(|(label, glued)| {
            // Glued single-letter labels need a number.
            let number = if label.len() == 1 {
                (0u64..12).prop_map(Some).boxed()
            } else {
                prop::option::of(0u64..12).boxed()
            };
            number.prop_map(move |number| (label, glued, number))
        }),
    );
    (
        prop_oneof![Just(""), Just("v"), Just("version-")],
        numbers,
        prop::bool::weighted(0.2),
        pre,
        prop_oneof![
            Just(""),
            Just("-alpine"),
            Just("-alpine3.19"),
            Just("-slim-bookworm")
        ],
        prop::option::weighted(0.2, 0u64..20),
    )
        .prop_map(|(prefix, numbers, dashed, pre, suffix, revision)| Spec {
            prefix,
            numbers,
            dashed,
            pre,
            suffix,
            revision,
        })
}

/// What the semver strategy must offer, computed from the specs alone.
fn oracle(current: &Spec, candidates: &[Spec]) -> Option<(String, UpdateKind)> {
    let eligible = candidates.iter().filter(|c| {
        c.shape() == current.shape()
            && (c.pre.is_none() || current.pre.is_some())
            && c.compare(current) == Ordering::Greater
    });
    let best = eligible.max_by(|a, b| {
        a.compare(b).then_with(|| {
            let (a, b) = (a.render(), b.render());
            b.len().cmp(&a.len()).then_with(|| b.cmp(&a))
        })
    })?;
    let changed = current
        .numbers
        .iter()
        .zip(&best.numbers)
        .position(|((x, _), (y, _))| x != y);
    let kind = match changed {
        Some(0) => UpdateKind::Major,
        Some(1) => UpdateKind::Minor,
        Some(_) => UpdateKind::Patch,
        None if current.key().1 != best.key().1 => UpdateKind::Prerelease,
        None => UpdateKind::Patch,
    };
    Some((best.render(), kind))
}

fn semver(current: &str, tags: &[String]) -> Decision {
    versioning::semver::choose(current, tags, &Options::default()).unwrap()
}

/// `spec` bumped past itself as a release, plus the same version spelled
/// with leading zeros: a tie the strategy must break by spelling.
fn greater_twins(spec: &Spec) -> (Spec, Spec) {
    let mut bumped = spec.clone();
    bumped.pre = None;
    if let Some((first, _)) = bumped.numbers.first_mut() {
        *first += 1;
    }
    let mut zeros = bumped.clone();
    for (_, zero) in &mut zeros.numbers {
        *zero = true;
    }
    (bumped, zeros)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn equal_versions_tie_break_by_spelling(
        current in spec_strategy(),
        others in prop::collection::vec(spec_strategy(), 0..8),
        zeros_first in any::<bool>(),
    ) {
        let (plain, zeros) = greater_twins(&current);
        let mut candidates = others;
        if zeros_first {
            candidates.extend([zeros, plain]);
        } else {
            candidates.extend([plain, zeros]);
        }
        let tags: Vec<String> = candidates.iter().map(Spec::render).collect();
        let got = semver(&current.render(), &tags).offer.map(|o| (o.tag, o.kind));
        prop_assert!(got.is_some());
        prop_assert_eq!(got, oracle(&current, &candidates));
    }

    #[test]
    fn semver_matches_the_oracle(current in spec_strategy(), candidates in prop::collection::vec(spec_strategy(), 0..24)) {
        let tags: Vec<String> = candidates.iter().map(Spec::render).collect();
        let decision = semver(&current.render(), &tags);
        prop_assert!(decision.version_tag);
        prop_assert!(!decision.watch_digest);
        let got = decision.offer.map(|o| (o.tag, o.kind));
        prop_assert_eq!(got, oracle(&current, &candidates));
    }

    #[test]
    fn offer_is_compatible_greater_and_listed(current in spec_strategy(), candidates in prop::collection::vec(spec_strategy(), 0..24)) {
        let tags: Vec<String> = candidates.iter().map(Spec::render).collect();
        let current_tag = current.render();
        if let Some(offer) = semver(&current_tag, &tags).offer {
            prop_assert!(tags.contains(&offer.tag));
            let ours = TagVersion::parse(&current_tag).unwrap();
            let theirs = TagVersion::parse(&offer.tag).unwrap();
            prop_assert_eq!(ours.prefix(), theirs.prefix());
            prop_assert_eq!(ours.core().len(), theirs.core().len());
            prop_assert_eq!(ours.suffix(), theirs.suffix());
            prop_assert!(ours.is_compatible_with(&theirs));
            prop_assert_eq!(theirs.precedence(&ours), Ordering::Greater);
            if !ours.is_pre_release() {
                prop_assert!(!theirs.is_pre_release(), "release {} offered pre-release {}", current_tag, offer.tag);
            }
        }
    }

    #[test]
    fn release_is_never_offered_a_pre_release(numbers in prop::collection::vec(0u64..4, 1..=3), candidates in prop::collection::vec(spec_strategy(), 0..24)) {
        let current = numbers.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
        let tags: Vec<String> = candidates.iter().map(Spec::render).collect();
        if let Some(offer) = semver(&current, &tags).offer {
            prop_assert!(!TagVersion::parse(&offer.tag).unwrap().is_pre_release());
        }
    }

    #[test]
    fn registry_order_never_changes_the_answer(
        (current, tags, shuffled) in (spec_strategy(), prop::collection::vec(spec_strategy(), 0..24))
            .prop_flat_map(|(current, candidates)| {
                let tags: Vec<String> = candidates.iter().map(Spec::render).collect();
                (Just(current.render()), Just(tags.clone()), Just(tags).prop_shuffle())
            })
    ) {
        prop_assert_eq!(semver(&current, &tags), semver(&current, &shuffled));
        let opts = Options {
            extra: vec![("regex".to_owned(), r"(?P<major>\d+)\.(?P<minor>\d+)".to_owned())],
            ..Options::default()
        };
        prop_assert_eq!(
            versioning::regex::choose(&current, &tags, &opts),
            versioning::regex::choose(&current, &shuffled, &opts)
        );
    }

    #[test]
    fn tags_without_digits_watch_the_digest(current in "[a-z][a-z-]{0,15}", tags in prop::collection::vec("[a-z0-9.-]{1,12}", 0..10)) {
        prop_assert_eq!(semver(&current, &tags), Decision::digest_only());
    }

    #[test]
    fn parse_then_display_round_trips(tag in "[a-zA-Z0-9._+-]{0,24}") {
        if let Some(version) = TagVersion::parse(&tag) {
            prop_assert_eq!(version.to_string(), tag);
        } else {
            prop_assert!(!tag.bytes().any(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn parse_reads_back_the_generated_parts(spec in spec_strategy()) {
        let tag = spec.render();
        let version = TagVersion::parse(&tag).unwrap();
        prop_assert_eq!(version.to_string(), tag.clone());
        prop_assert_eq!(version.prefix(), spec.prefix);
        prop_assert_eq!(version.core().len(), spec.numbers.len());
        prop_assert_eq!(version.suffix(), spec.suffix);
        prop_assert_eq!(version.is_pre_release(), spec.pre.is_some());
        prop_assert_eq!(version.revision().map(|r| r.number().to_owned()), spec.revision.map(|r| r.to_string()));
    }

    #[test]
    fn precedence_agrees_with_the_oracle(a in spec_strategy(), b in spec_strategy()) {
        let (pa, pb) = (TagVersion::parse(&a.render()).unwrap(), TagVersion::parse(&b.render()).unwrap());
        if a.shape() == b.shape() {
            prop_assert_eq!(pa.precedence(&pb), a.compare(&b));
        }
        prop_assert_eq!(pa.precedence(&pb), pb.precedence(&pa).reverse());
    }

    #[test]
    fn number_comparison_matches_integers(a in any::<u64>(), b in any::<u64>(), za in 0usize..3, zb in 0usize..3) {
        let (sa, sb) = (format!("{}{a}", "0".repeat(za)), format!("{}{b}", "0".repeat(zb)));
        prop_assert_eq!(compare_numbers(&sa, &sb), a.cmp(&b));
        // Past u64: appending the same digit keeps the order.
        prop_assert_eq!(compare_numbers(&format!("{sa}7"), &format!("{sb}7")), a.cmp(&b));
    }
}
