//! Pure version-strategy logic for crowsnest's strategy plugins.
//!
//! Three strategies share one signature,
//! `choose(current, candidates, opts) -> Result<Decision, OptionError>`:
//!
//! - [`semver`] (the default): reads tags as *prefix + numeric core +
//!   pre-release + suffix* ([`tag::TagVersion`]) and offers the greatest tag of
//!   the same shape that is strictly greater than the current one.
//! - [`regex`]: reads tags through a user pattern with named groups `major`,
//!   `minor`, `patch`, `build` and `compat`.
//! - [`digest`]: never offers a tag; always watches the digest.
//!
//! The crate has no I/O and no threads so that it compiles for
//! `wasm32-unknown-unknown`; the thin plugin crates wrap it in the WIT
//! `strategy` interface.
//!
//! # Decisions of the `semver` strategy
//!
//! - A tag with no ASCII digit (`latest`, `mainline-alpine`) is not a version:
//!   the decision is to watch its digest.
//! - The prefix is everything before the first digit, so `v2`, `version-1.2.3`,
//!   `jammy-20240125` and even `alpine3.19` read with prefixes `v`, `version-`,
//!   `jammy-` and `alpine`.
//! - The core is dot-joined numbers (`5.14.0.9383`), or, when the first
//!   separator is a dash, dash-joined numbers (`2025-06-03`, a calendar
//!   version). Styles never mix: in `1.2.3-1` the `-1` is a suffix, and a
//!   dashed calendar tag is not compatible with a dotted one.
//! - Pre-releases: `-alpha|beta|rc|pre|preview|dev|snapshot` (any case) with
//!   optional numbers (`-rc1`, `-rc.1`, `-beta-2`, `-rc.1.2`); glued to the core
//!   they are read too, including PEP 440's `a`/`b` followed by a number
//!   (`1.2.3rc1`, `3.13.0b4`). A label must end at `-`, `+` or the end, so
//!   `-devel` and `-rclone` are suffixes. A suffix may follow (`7.0-rc1-alpine`).
//! - A trailing `-ls<N>` (linuxserver.io) or `-r<N>` (Bitnami, Alpine) token is a
//!   *revision* (rebuild counter), not part of the suffix: `4.9.0.12-ls123`
//!   can move to `4.9.0.13-ls130`, which exact suffix equality would forbid
//!   forever. Both tags must carry the same marker; a revision-only bump is a
//!   `Patch`.
//! - Anything else after the core is the suffix, compared verbatim:
//!   `7.2.4-alpine3.19` is never offered `7.2.5-alpine3.20`, and
//!   `8u372-jdk` has the suffix `u372-jdk` (so it is never updated without a
//!   transform).
//! - Build metadata after `+` is ignored for ordering and compatibility.
//! - Equal versions spelled differently (`1.3` and `1.03`) are tied; the
//!   shorter spelling wins, then the lexically smaller one, so the answer
//!   never depends on registry order.
//! - Unknown `extra` options are ignored by `semver` and `digest`.
//! - With a `transform`, a current tag the transform does not match is not a
//!   version under that configuration: its digest is watched.

pub mod digest;
mod filters;
pub mod regex;
pub mod semver;
pub mod tag;

use std::cmp::Ordering;

/// Candidate filters and strategy options from labels and config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Regular expression candidates must match (unanchored unless anchored).
    pub include: Option<String>,
    /// Regular expression candidates must not match.
    pub exclude: Option<String>,
    /// `REGEX => TEMPLATE` applied to the current tag and every candidate before reading them.
    pub transform: Option<String>,
    /// Strategy-specific options, e.g. `regex` = the pattern of the regex strategy.
    pub extra: Vec<(String, String)>,
}

/// Kind of the offered update (the `semverDiff` of the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateKind {
    /// First numeric part changed.
    Major,
    /// Second numeric part changed.
    Minor,
    /// Third or later numeric part (or the rebuild revision) changed.
    Patch,
    /// Only the pre-release changed.
    Prerelease,
    /// Only the digest changed.
    Digest,
    /// The strategy cannot tell.
    Unknown,
}

impl UpdateKind {
    /// Lower-case name as used in the API and the golden table.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Major => "major",
            UpdateKind::Minor => "minor",
            UpdateKind::Patch => "patch",
            UpdateKind::Prerelease => "prerelease",
            UpdateKind::Digest => "digest",
            UpdateKind::Unknown => "unknown",
        }
    }
}

/// The offered tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Tag as published (never the transformed form).
    pub tag: String,
    /// What changed.
    pub kind: UpdateKind,
}

/// The strategy's verdict for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The current tag reads as a version under this strategy.
    pub version_tag: bool,
    /// Compare the remote digest of the current tag with the local one.
    pub watch_digest: bool,
    /// The update to offer, if any.
    pub offer: Option<Offer>,
}

impl Decision {
    /// The verdict for a tag that is not a version: watch its digest.
    pub fn digest_only() -> Decision {
        Decision {
            version_tag: false,
            watch_digest: true,
            offer: None,
        }
    }

    /// The verdict for a version tag, with the offer found (if any).
    pub fn versioned(offer: Option<Offer>) -> Decision {
        Decision {
            version_tag: true,
            watch_digest: false,
            offer,
        }
    }
}

/// A bad option: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid option `{option}`: {message}")]
pub struct OptionError {
    /// `include`, `exclude`, `transform` or an `extra` key such as `regex`.
    pub option: String,
    /// Why it was rejected.
    pub message: String,
}

impl OptionError {
    /// An error about `option`.
    pub fn new(option: impl Into<String>, message: impl Into<String>) -> OptionError {
        OptionError {
            option: option.into(),
            message: message.into(),
        }
    }
}

/// Tie-break between two tags of equal precedence: `Greater` when `a` is the
/// preferred spelling (shorter, then lexically smaller). Total on distinct
/// strings, so the chosen offer never depends on registry order.
pub(crate) fn prefer_spelling(a: &str, b: &str) -> Ordering {
    b.len().cmp(&a.len()).then_with(|| b.cmp(a))
}
