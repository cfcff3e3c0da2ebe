//! Runs every row of `golden.toml` through the native strategies and reports
//! all failing rows at once.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Deserialize;
use versioning::{Decision, OptionError, Options};

/// Minimum number of rows the table must keep.
const MIN_ROWS: usize = 90;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    current: String,
    tags: Vec<String>,
    strategy: Option<String>,
    include: Option<String>,
    exclude: Option<String>,
    transform: Option<String>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
    offer: Option<String>,
    kind: Option<String>,
    version_tag: bool,
    watch_digest: bool,
    error_option: Option<String>,
}

fn load() -> Table {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden.toml");
    let text = std::fs::read_to_string(path).unwrap();
    toml::from_str(&text).unwrap()
}

fn run(case: &Case) -> Result<Decision, OptionError> {
    let opts = Options {
        include: case.include.clone(),
        exclude: case.exclude.clone(),
        transform: case.transform.clone(),
        extra: case.extra.clone().into_iter().collect(),
    };
    match case.strategy.as_deref().unwrap_or("semver") {
        "semver" => versioning::semver::choose(&case.current, &case.tags, &opts),
        "regex" => versioning::regex::choose(&case.current, &case.tags, &opts),
        "digest" => versioning::digest::choose(&case.current, &case.tags, &opts),
        other => panic!("row `{}`: unknown strategy `{other}`", case.name),
    }
}

/// Why a row fails, or `None` when it passes.
fn check(case: &Case) -> Option<String> {
    let outcome = run(case);
    if let Some(option) = &case.error_option {
        return match outcome {
            Err(err) if &err.option == option => None,
            other => Some(format!(
                "expected OptionError naming `{option}`, got {other:?}"
            )),
        };
    }
    let decision = match outcome {
        Ok(decision) => decision,
        Err(err) => return Some(format!("unexpected {err:?}")),
    };
    let got_offer = decision.offer.as_ref().map(|o| o.tag.as_str());
    let got_kind = decision.offer.as_ref().map(|o| o.kind.as_str());
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
    if decision.version_tag != case.version_tag {
        problems.push(format!(
            "version_tag: expected {}, got {}",
            case.version_tag, decision.version_tag
        ));
    }
    if decision.watch_digest != case.watch_digest {
        problems.push(format!(
            "watch_digest: expected {}, got {}",
            case.watch_digest, decision.watch_digest
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[test]
fn golden_table_is_well_formed() {
    let table = load();
    assert!(
        table.case.len() >= MIN_ROWS,
        "only {} rows",
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
        if case.error_option.is_some() {
            assert!(
                case.offer.is_none(),
                "row `{}`: an error row has no offer",
                case.name
            );
        }
    }
}

#[test]
fn golden_table_rows_all_pass() {
    let table = load();
    let mut report = String::new();
    let mut failures = 0;
    for case in &table.case {
        if let Some(problem) = check(case) {
            failures += 1;
            writeln!(
                report,
                "  [{}] current={:?}: {problem}",
                case.name, case.current
            )
            .unwrap();
        }
    }
    assert!(
        failures == 0,
        "{failures} of {} golden rows failed:\n{report}",
        table.case.len()
    );
}

#[test]
fn golden_table_covers_the_incumbent_failures() {
    let table = load();
    let find = |current: &str, offer: Option<&str>| {
        table.case.iter().any(|c| {
            c.current == current && c.offer.as_deref() == offer && c.error_option.is_none()
        })
    };
    assert!(find("4.9.0.9", Some("4.9.0.12")));
    assert!(find("2025-06-03", Some("2025-08-05")));
    assert!(find("1.20-alpine", None));
    assert!(table
        .case
        .iter()
        .any(|c| c.current == "latest" && c.watch_digest && !c.version_tag));
}
