//! `crowsnest triggers test NAME`: sends a sample update through one
//! configured trigger — its templates, mode, plugin and retries — and prints
//! what happened: what a user runs after configuring a trigger.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crowsnest_config::{Config, Mode};
use crowsnest_engine::metrics::Metrics;
use crowsnest_engine::triggers::{SampleReport, TriggerDispatcher};
use crowsnest_plugin_host::Catalog;
use crowsnest_store::Store;

/// Output format of `triggers test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// Lines for a person.
    Text,
    /// One JSON object.
    Json,
}

/// `triggers test NAME`: exit 0 when the sample was delivered, 1 when every
/// attempt failed, 2 when there is no such trigger or its configuration is bad.
pub async fn test(config: &Config, name: &str, format: TestFormat) -> anyhow::Result<ExitCode> {
    if !config.triggers.contains_key(name) {
        let known: Vec<&str> = config.triggers.keys().map(String::as_str).collect();
        eprintln!(
            "error: no trigger named `{name}` is configured ({})",
            if known.is_empty() {
                "there is no [triggers.NAME] section".to_string()
            } else {
                format!("configured: {}", known.join(", "))
            }
        );
        return Ok(ExitCode::from(2));
    }
    // Only the tested trigger's plugin is compiled.
    let catalog = Catalog::load_lazy(&crowsnest_engine::plugin_setup::catalog_options(
        &config.plugins,
    ))
    .await;
    // Samples are never remembered: an in-memory store is all the dispatcher needs.
    let store = Store::open_in_memory()
        .await
        .context("cannot open an in-memory store")?;
    let dispatcher = match TriggerDispatcher::from_config_only(
        config,
        &catalog,
        store,
        Arc::new(Metrics::new()),
        Some(name),
    )
    .await
    {
        Ok(dispatcher) => dispatcher,
        Err(err) => {
            eprintln!("error: bad configuration: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = dispatcher
        .send_sample(name)
        .await
        .with_context(|| format!("cannot send a sample through `{name}`"))?;
    let mut out = std::io::stdout().lock();
    match format {
        TestFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&as_json(&report))?)?,
        TestFormat::Text => write_text(&mut out, &report)?,
    }
    Ok(if report.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Simple => "simple",
        Mode::Batch => "batch",
    }
}

fn as_json(report: &SampleReport) -> serde_json::Value {
    serde_json::json!({
        "trigger": report.trigger,
        "plugin": report.plugin,
        "mode": mode_name(report.mode),
        "containers": report.containers,
        "title": report.message.title,
        "body": report.message.body,
        "delivered": report.result.is_ok(),
        "attempts": report.attempts,
        "elapsedMs": report.elapsed.as_millis() as u64,
        "error": report.result.as_ref().err(),
    })
}

fn write_text(out: &mut impl Write, report: &SampleReport) -> std::io::Result<()> {
    writeln!(
        out,
        "trigger `{}` (plugin {}, {} mode): sample update of {}",
        report.trigger,
        report.plugin,
        mode_name(report.mode),
        report.containers.join(", ")
    )?;
    writeln!(out, "title: {}", report.message.title)?;
    writeln!(out, "body:")?;
    for line in report.message.body.lines() {
        writeln!(out, "  {line}")?;
    }
    let attempts = match report.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    let elapsed = report.elapsed.as_millis();
    match &report.result {
        Ok(()) => writeln!(out, "delivered after {attempts} in {elapsed} ms"),
        Err(error) => writeln!(out, "FAILED after {attempts} in {elapsed} ms: {error}"),
    }
}
