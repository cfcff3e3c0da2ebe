//! The golden table (`plugins/versioning/golden.toml`) and how a strategy's
//! answer is judged against one row. Shared, through `#[path]`, by the native
//! test (`plugins/versioning/tests/golden.rs`) and the wasm test
//! (`tests/strategy_golden.rs`), so both judge the same table the same way.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Deserialize;

/// The table keeps at least this many tag situations.
pub const MIN_ROWS: usize = 90;

/// The table's text, embedded so both workspaces read the same file.
const TEXT: &str = include_str!("../../golden.toml");

/// The whole table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The rows, in file order.
    pub case: Vec<Case>,
}

/// One row: a current tag, the tags on offer, options, and the expected answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub current: String,
    pub tags: Vec<String>,
    pub strategy: Option<String>,
    pub include: Option<String>,
    pub exclude: Option<String>,
    pub transform: Option<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    pub offer: Option<String>,
    pub kind: Option<String>,
    pub version_tag: bool,
    pub watch_digest: bool,
    pub error_option: Option<String>,
}

impl Case {
    /// The strategy the row runs through (`semver` when unnamed).
    pub fn strategy(&self) -> &str {
        self.strategy.as_deref().unwrap_or("semver")
    }
}

/// The parsed table; a parse error fails the test with its message.
pub fn load() -> Table {
    toml::from_str(TEXT).unwrap_or_else(|err| panic!("golden.toml: {err}"))
}

/// What a strategy answered for one row.
#[derive(Debug)]
pub enum Outcome {
    /// A decision: the offered (tag, kind), and the two flags.
    Decided {
        offer: Option<(String, String)>,
        version_tag: bool,
        watch_digest: bool,
    },
    /// The strategy rejected the option it names.
    OptionRejected(String),
    /// Any other failure, as text.
    Failed(String),
}

/// Why `outcome` is not the row's expected answer, or `None` when it is.
pub fn check(case: &Case, outcome: &Outcome) -> Option<String> {
    if let Some(option) = &case.error_option {
        return match outcome {
            Outcome::OptionRejected(got) if got == option => None,
            other => Some(format!(
                "expected an error naming `{option}`, got {other:?}"
            )),
        };
    }
    let (offer, version_tag, watch_digest) = match outcome {
        Outcome::Decided {
            offer,
            version_tag,
            watch_digest,
        } => (offer, *version_tag, *watch_digest),
        Outcome::OptionRejected(option) => {
            return Some(format!("unexpected error naming `{option}`"))
        }
        Outcome::Failed(why) => return Some(format!("failed: {why}")),
    };
    let got_offer = offer.as_ref().map(|(tag, _)| tag.as_str());
    let got_kind = offer.as_ref().map(|(_, kind)| kind.as_str());
    let mut problems = Vec::new();
    if got_offer != case.offer.as_deref() {
        problems.push(format!(
            "offer: expected {:?}, got {got_offer:?}",
            case.offer
        ));
    }
    if got_kind != case.kind.as_deref() {
        problems.push(format!("kind: expected {:?}, got {got_kind:?}", case.kind));
    }
    if version_tag != case.version_tag {
        problems.push(format!(
            "version_tag: expected {}, got {version_tag}",
            case.version_tag
        ));
    }
    if watch_digest != case.watch_digest {
        problems.push(format!(
            "watch_digest: expected {}, got {watch_digest}",
            case.watch_digest
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Collects every failing row, so one run reports them all.
#[derive(Default)]
pub struct Report {
    rows: usize,
    failures: usize,
    text: String,
}

impl Report {
    /// Judges one row's outcome.
    pub fn record(&mut self, case: &Case, outcome: &Outcome) {
        self.rows += 1;
        if let Some(problem) = check(case, outcome) {
            self.fail(case, &problem);
        }
    }

    /// Records a row that could not be run at all.
    pub fn fail(&mut self, case: &Case, problem: &str) {
        self.failures += 1;
        let _ = writeln!(
            self.text,
            "  [{}] current={:?}: {problem}",
            case.name, case.current
        );
    }

    /// Panics listing every failing row, if any.
    pub fn assert_all_passed(&self, runtime: &str) {
        assert!(
            self.failures == 0,
            "{} of {} golden rows failed in {runtime}:\n{}",
            self.failures,
            self.rows,
            self.text
        );
    }
}

/// The table is large enough, its names are unique and every row is coherent.
pub fn assert_well_formed(table: &Table) {
    assert!(
        table.case.len() >= MIN_ROWS,
        "only {} golden rows (need {MIN_ROWS})",
        table.case.len()
    );
    let mut names = HashSet::new();
    for case in &table.case {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate row name `{}`",
            case.name
        );
        assert_eq!(
            case.offer.is_some(),
            case.kind.is_some(),
            "row `{}`: offer and kind go together",
            case.name
        );
        if let Some(offer) = &case.offer {
            assert!(
                case.tags.contains(offer),
                "row `{}`: offer `{offer}` is not among its tags",
                case.name
            );
        }
        if case.error_option.is_some() {
            assert!(
                case.offer.is_none(),
                "row `{}`: an error row has no offer",
                case.name
            );
        }
    }
    for name in ["semver", "regex", "digest"] {
        assert!(
            table.case.iter().any(|case| case.strategy() == name),
            "no golden row uses strategy `{name}`"
        );
    }
}

/// The table holds the cases the incumbents get wrong.
pub fn assert_holds_incumbent_failures(table: &Table) {
    let plain_semver_row = |current: &str, offer: Option<&str>, must_contain: &str| {
        table.case.iter().any(|case| {
            case.current == current
                && case.offer.as_deref() == offer
                && case.error_option.is_none()
                && case.strategy() == "semver"
                && case.include.is_none()
                && case.exclude.is_none()
                && case.transform.is_none()
                && case.tags.iter().any(|tag| tag == must_contain)
        })
    };
    // WUD read 4.9.0.12 as older than 4.9.0.9 (it kept only three parts).
    assert!(
        plain_semver_row("4.9.0.9", Some("4.9.0.12"), "4.9.0.12"),
        "missing row: 4.9.0.9 -> 4.9.0.12"
    );
    // WUD coerced calendar tags to 2025.0.0, so 2025-08-05 equalled 2025-06-03.
    assert!(
        plain_semver_row("2025-06-03", Some("2025-08-05"), "2025-08-05"),
        "missing row: 2025-06-03 -> 2025-08-05"
    );
    // WUD offered a different distribution: 1.20-alpine -> 1.31-bookworm.
    let alpine = table.case.iter().any(|case| {
        case.current == "1.20-alpine"
            && case.error_option.is_none()
            && case.tags.iter().any(|tag| tag == "1.31-bookworm")
            && case.offer.as_deref() != Some("1.31-bookworm")
            && case.include.is_none()
            && case.transform.is_none()
    });
    assert!(
        alpine,
        "missing row: 1.20-alpine with 1.31-bookworm available, never offered"
    );
    // A mutable tag is watched by digest, not as a version.
    assert!(
        table
            .case
            .iter()
            .any(|case| case.current == "latest" && case.watch_digest && !case.version_tag),
        "missing row: latest watched by digest"
    );
}
