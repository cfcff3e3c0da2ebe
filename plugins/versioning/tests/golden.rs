//! Runs every row of `golden.toml` through the native strategies and reports
//! all failing rows at once.

#[path = "golden/mod.rs"]
mod golden;

use golden::{Case, Outcome, Report};
use versioning::Options;

fn run(case: &Case) -> Outcome {
    let opts = Options {
        include: case.include.clone(),
        exclude: case.exclude.clone(),
        transform: case.transform.clone(),
        extra: case.extra.clone().into_iter().collect(),
    };
    let outcome = match case.strategy() {
        "semver" => versioning::semver::choose(&case.current, &case.tags, &opts),
        "regex" => versioning::regex::choose(&case.current, &case.tags, &opts),
        "digest" => versioning::digest::choose(&case.current, &case.tags, &opts),
        other => return Outcome::Failed(format!("unknown strategy `{other}`")),
    };
    match outcome {
        Ok(decision) => Outcome::Decided {
            offer: decision
                .offer
                .map(|offer| (offer.tag, offer.kind.as_str().to_string())),
            version_tag: decision.version_tag,
            watch_digest: decision.watch_digest,
        },
        Err(err) => Outcome::OptionRejected(err.option),
    }
}

#[test]
fn golden_table_is_well_formed() {
    golden::assert_well_formed(&golden::load());
}

#[test]
fn golden_table_rows_all_pass() {
    let mut report = Report::default();
    for case in &golden::load().case {
        report.record(case, &run(case));
    }
    report.assert_all_passed("the native strategies");
}

#[test]
fn golden_table_covers_the_incumbent_failures() {
    golden::assert_holds_incumbent_failures(&golden::load());
}
