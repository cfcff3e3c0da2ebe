//! The golden table of `plugins/versioning/golden.toml`, run through the
//! built-in strategy plugins (`semver`, `regex`, `digest`) in the real wasm
//! runtime, exactly as the scanner calls them. Every failing row is reported
//! at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crowsnest::plugin::strategy::{Decision, StrategyError, StrategyOptions};
use crowsnest::plugin::{PluginKind, SandboxLimits, StrategyPlugin};
use crowsnest_testkit::plugins::{catalog, spec};
use serde::Deserialize;

/// The issue asks for at least this many tag situations.
const MIN_ROWS: usize = 80;

const GOLDEN: &str = include_str!("../plugins/versioning/golden.toml");

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

fn table() -> Table {
    toml::from_str(GOLDEN).expect("golden.toml parses")
}

/// One configured instance of each built-in strategy plugin.
async fn strategies() -> HashMap<String, StrategyPlugin> {
    let catalog = catalog(None, None).await;
    let mut plugins = HashMap::new();
    for name in ["semver", "regex", "digest"] {
        let entry = catalog
            .find(name, PluginKind::VersionStrategy)
            .await
            .unwrap_or_else(|err| panic!("built-in strategy `{name}`: {err}"));
        let plugin = StrategyPlugin::new(
            &entry.component,
            spec(Vec::new(), SandboxLimits::default(), 1),
        )
        .await
        .unwrap_or_else(|err| panic!("instantiating `{name}`: {err}"));
        plugins.insert(name.to_string(), plugin);
    }
    plugins
}

/// Why a row fails, or `None` when the plugin's answer is the expected one.
fn check(case: &Case, outcome: Result<Decision, StrategyError>) -> Option<String> {
    if let Some(option) = &case.error_option {
        return match outcome {
            Err(StrategyError::InvalidOption { option: got, .. }) if &got == option => None,
            other => Some(format!(
                "expected InvalidOption naming `{option}`, got {other:?}"
            )),
        };
    }
    let decision = match outcome {
        Ok(decision) => decision,
        Err(err) => return Some(format!("unexpected error: {err}")),
    };
    let got_offer = decision.offer.as_ref().map(|offer| offer.tag.as_str());
    let got_kind = decision.offer.as_ref().map(|offer| offer.kind.as_str());
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

#[tokio::test]
async fn every_golden_row_passes_through_the_wasm_plugins() {
    let table = table();
    let plugins = strategies().await;
    let mut report = String::new();
    let mut failures = 0;
    let mut per_strategy: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &table.case {
        let name = case.strategy.as_deref().unwrap_or("semver");
        *per_strategy.entry(name).or_default() += 1;
        let Some(plugin) = plugins.get(name) else {
            failures += 1;
            writeln!(report, "  [{}] unknown strategy `{name}`", case.name).unwrap();
            continue;
        };
        let options = StrategyOptions {
            include: case.include.clone(),
            exclude: case.exclude.clone(),
            transform: case.transform.clone(),
            extra: case.extra.clone().into_iter().collect(),
        };
        let outcome = plugin.choose(&case.current, &case.tags, &options).await;
        if let Some(problem) = check(case, outcome) {
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
        "{failures} of {} golden rows failed in the wasm plugins:\n{report}",
        table.case.len()
    );
    // Every strategy is exercised, not only the default one.
    for name in ["semver", "regex", "digest"] {
        assert!(
            per_strategy.get(name).copied().unwrap_or(0) > 0,
            "no golden row uses strategy `{name}`"
        );
    }
}

#[test]
fn golden_table_is_large_and_well_formed() {
    let table = table();
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
    }
}

#[test]
fn golden_table_holds_the_incumbent_failures() {
    let table = table();
    let row = |current: &str, offer: Option<&str>, must_contain: &str| {
        table.case.iter().any(|case| {
            case.current == current
                && case.offer.as_deref() == offer
                && case.error_option.is_none()
                && case.strategy.as_deref().unwrap_or("semver") == "semver"
                && case.include.is_none()
                && case.exclude.is_none()
                && case.transform.is_none()
                && case.tags.iter().any(|tag| tag == must_contain)
        })
    };
    // WUD read 4.9.0.12 as older than 4.9.0.9 (it kept only three parts).
    assert!(
        row("4.9.0.9", Some("4.9.0.12"), "4.9.0.12"),
        "missing row: 4.9.0.9 -> 4.9.0.12"
    );
    // WUD coerced calendar tags to 2025.0.0, so 2025-08-05 equalled 2025-06-03.
    assert!(
        row("2025-06-03", Some("2025-08-05"), "2025-08-05"),
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
}
