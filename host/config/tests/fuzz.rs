//! Property-based fuzzing of the config loader: random TOML-ish documents
//! built from the real sections and keys with random values (and plain
//! random text). Loading never panics, and every error names the file and,
//! for what is in the file, the line it is on. `CROWSNEST_FUZZ_CASES` sets
//! the number of cases (256 by default, as CI runs it).

use std::path::Path;

use crowsnest_config::Config;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: crowsnest_oci::fuzz_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Section headers the loader knows, and a few it does not.
fn section() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[scan]".to_string()),
        Just("[plugins]".to_string()),
        Just("[store]".to_string()),
        Just("[server]".to_string()),
        Just("[actions]".to_string()),
        Just("[agent]".to_string()),
        "\\[registries\\.[a-z]{1,6}\\]",
        "\\[triggers\\.[a-z]{1,6}\\]",
        "\\[watchers\\.[a-z]{1,6}\\]",
        "\\[triggers\\.[a-z]{1,4}\\.(smtp|mqtt)\\]",
        "\\[[a-z.]{1,12}\\]",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "plugin",
            "url",
            "insecure",
            "allowed_hosts",
            "strategy",
            "regex",
            "concurrency",
            "lookup_timeout_secs",
            "scan_timeout_secs",
            "registry_timeout",
            "memory_limit_mib",
            "cpu_limit_ms",
            "cache_dir",
            "dir",
            "threshold",
            "mode",
            "retries",
            "host",
            "port",
            "token",
            "token_file",
            "password_file",
            "username",
            "path",
            "cron",
            "watch_all",
            "retention_days",
            "tls",
            "socket",
            "label",
            "auto",
            "window",
            "request_timeout_secs",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
        "[a-z]{1,5}\\.[a-z]{1,5}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\"[^\"\\\\\n]{0,20}\"",
        "\"(http|https|tcp|unix)://[a-z0-9.:/\\[\\]]{0,20}\"",
        Just("\"oci\"".to_string()),
        Just("\"webhook\"".to_string()),
        Just("\"semver\"".to_string()),
        "[0-9.eE+-]{1,8}",
        "[a-z\"'\\[\\]{}=,]{1,10}",
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..3).prop_map(|pairs| {
                let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (section(), prop::collection::vec((key(), value()), 0..5)),
        0..5,
    )
    .prop_map(|sections| {
        let mut text = String::new();
        for (header, pairs) in sections {
            text.push_str(&header);
            text.push('\n');
            for (key, value) in pairs {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text
    })
}

/// Checks one load: no panic (the harness would fail), and an error names
/// the file, a line inside the text when it has one, and a message.
fn check(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("fuzz.toml");
    if let Err(err) = Config::parse(text, Some(file), &[]) {
        let shown = err.to_string();
        prop_assert!(!err.message.trim().is_empty(), "{:?}", err);
        prop_assert_eq!(err.file.as_path(), file, "{}", shown);
        prop_assert!(shown.starts_with("fuzz.toml"), "{}", shown);
        if let Some(line) = err.line {
            let lines = text.lines().count().max(1);
            prop_assert!(
                line >= 1 && line <= lines + 1,
                "line {} of {}: {}",
                line,
                lines,
                shown
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn structured_documents_load_or_fail_naming_file_and_line(text in document()) {
        check(&text)?;
        // An error inside a non-empty document is placed on a line.
        if let Err(err) = Config::parse(&text, Some(Path::new("fuzz.toml")), &[]) {
            let placed = err.line.is_some() || text.trim().is_empty();
            prop_assert!(placed, "no line: {} in\n{}", err, text);
        }
    }

    #[test]
    fn any_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn toml_like_text_never_panics(text in "[a-z\\[\\]=\"'.,{}0-9 \n_#-]{0,200}") {
        check(&text)?;
    }
}
