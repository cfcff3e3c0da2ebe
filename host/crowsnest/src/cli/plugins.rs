//! `crowsnest plugins list|check|test`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crowsnest_config::Config;
use crowsnest_plugin_host::catalog::check_file;
use crowsnest_plugin_host::{Catalog, PluginComponent};

/// Output format of `plugins list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// JSON array.
    Json,
}

/// `plugins list`: every loaded plugin, then the files that were skipped.
pub async fn list(config: &Config, format: ListFormat) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::load(&crowsnest_engine::plugin_setup::catalog_options(
        &config.plugins,
    ))
    .await;
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = catalog
                .entries()
                .map(|entry| {
                    let c = &entry.component;
                    serde_json::json!({
                        "name": c.info.name,
                        "kind": c.info.kind,
                        "version": c.info.version,
                        "description": c.info.description,
                        "source": c.source.to_string(),
                        "sha256": c.sha256,
                        "size": c.size,
                        "configKeys": c.info.config_keys,
                        "allowedHosts": entry.grants.allowed_hosts,
                    })
                })
                .collect();
            let problems = serde_json::to_value(catalog.problems())?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"plugins": rows, "skipped": problems})
                )?
            )?;
        }
        ListFormat::Table => {
            let rows: Vec<[String; 5]> = catalog
                .entries()
                .map(|entry| {
                    let c = &entry.component;
                    [
                        c.info.name.clone(),
                        c.info.kind.to_string(),
                        c.info.version.clone(),
                        c.source.to_string(),
                        c.sha256.clone(),
                    ]
                })
                .collect();
            write_table(
                &mut out,
                &["NAME", "KIND", "VERSION", "SOURCE", "SHA256"],
                &rows,
            )?;
            for problem in catalog.problems() {
                writeln!(
                    out,
                    "skipped {}: {}",
                    problem.path.display(),
                    problem.reason
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, header: &[&str], rows: &[[String; 5]]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows.iter().map(|row| row.to_vec()).collect();
    for line in super::table::aligned_lines(header, &rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `plugins check FILE`: the world and `describe()` of a component, or exactly why it is not a plugin.
pub async fn check(config: &Config, path: &Path) -> anyhow::Result<ExitCode> {
    let cache = crowsnest_engine::plugin_setup::catalog_options(&config.plugins).cache;
    match check_file(path, &cache).await {
        Ok(component) => {
            print_description(&component)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!(
                "{}: not a valid crowsnest plugin: {}",
                path.display(),
                reason_of(&err)
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn reason_of(err: &crowsnest_plugin_host::PluginError) -> String {
    match err {
        crowsnest_plugin_host::PluginError::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn print_description(component: &PluginComponent) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let info = &component.info;
    writeln!(out, "valid {} plugin", info.kind)?;
    writeln!(
        out,
        "  world:       crowsnest:plugin/{}@0.2.0",
        info.kind.world()
    )?;
    writeln!(out, "  name:        {}", info.name)?;
    writeln!(out, "  version:     {}", info.version)?;
    writeln!(out, "  description: {}", info.description)?;
    writeln!(out, "  sha256:      {}", component.sha256)?;
    writeln!(out, "  size:        {} bytes", component.size)?;
    if info.config_keys.is_empty() {
        writeln!(out, "  config keys: (none)")?;
    } else {
        writeln!(out, "  config keys:")?;
        for key in &info.config_keys {
            let mut flags = Vec::new();
            if key.required {
                flags.push("required");
            }
            if key.secret {
                flags.push("secret");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            };
            writeln!(out, "    {}{flags}: {}", key.name, key.description)?;
        }
    }
    Ok(())
}

/// `plugins test NAME --image REF`: each step of the registry instance
/// `NAME` for the image, `ok`/`FAILED` with what it gave; exit 1 when a step
/// failed, 2 for bad configuration or a bad reference.
pub async fn test(config: &Config, name: &str, image: &str) -> anyhow::Result<ExitCode> {
    use super::scan::exit;
    let reference = match crowsnest_oci::reference::ImageReference::parse(image) {
        Ok(reference) => reference,
        Err(err) => {
            eprintln!("error: `{image}` is not an image reference: {err}");
            return Ok(ExitCode::from(exit::BAD_CONFIG));
        }
    };
    let scanner = match super::scan::scanner(config).await {
        Ok(scanner) => scanner,
        Err(code) => return Ok(code),
    };
    let steps = scanner.probe_registry(name, &reference).await;
    let mut out = std::io::stdout().lock();
    for step in &steps {
        let status = if step.ok { "ok" } else { "FAILED" };
        writeln!(out, "{:<12} {status:<6} {}", step.step, step.detail)?;
    }
    Ok(if steps.iter().all(|step| step.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    })
}
