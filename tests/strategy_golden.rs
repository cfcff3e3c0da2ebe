//! The golden table of `plugins/versioning/golden.toml`, run through the
//! built-in strategy plugins (`semver`, `regex`, `digest`) in the real wasm
//! runtime, exactly as the scanner calls them. Every failing row is reported
//! at once.

#[path = "../plugins/versioning/tests/golden/mod.rs"]
mod golden;

use std::collections::HashMap;

use crowsnest::plugin::strategy::{StrategyError, StrategyOptions};
use crowsnest::plugin::{PluginKind, SandboxLimits, StrategyPlugin};
use crowsnest_testkit::plugins::{catalog, spec};
use golden::{Outcome, Report};

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

#[tokio::test]
async fn every_golden_row_passes_through_the_wasm_plugins() {
    let plugins = strategies().await;
    let mut report = Report::default();
    for case in &golden::load().case {
        let Some(plugin) = plugins.get(case.strategy()) else {
            report.fail(case, &format!("unknown strategy `{}`", case.strategy()));
            continue;
        };
        let options = StrategyOptions {
            include: case.include.clone(),
            exclude: case.exclude.clone(),
            transform: case.transform.clone(),
            extra: case.extra.clone().into_iter().collect(),
        };
        let outcome = match plugin.choose(&case.current, &case.tags, &options).await {
            Ok(decision) => Outcome::Decided {
                offer: decision
                    .offer
                    .map(|offer| (offer.tag, offer.kind.as_str().to_string())),
                version_tag: decision.version_tag,
                watch_digest: decision.watch_digest,
            },
            Err(StrategyError::InvalidOption { option, .. }) => Outcome::OptionRejected(option),
            Err(err) => Outcome::Failed(err.to_string()),
        };
        report.record(case, &outcome);
    }
    report.assert_all_passed("the wasm plugins");
}

#[test]
fn golden_table_is_large_and_well_formed() {
    golden::assert_well_formed(&golden::load());
}

#[test]
fn golden_table_holds_the_incumbent_failures() {
    golden::assert_holds_incumbent_failures(&golden::load());
}
