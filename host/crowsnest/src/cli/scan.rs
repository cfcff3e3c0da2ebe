//! `crowsnest scan`: one-shot scan of every watcher, as a table or JSON.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use crowsnest_config::Config;
use crowsnest_engine::scan::{ScanSetupError, Scanner};
use crowsnest_model::{CheckStatus, ContainerObject, ScanReport, ScanRequest};

/// Output format of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    /// Readable table.
    Table,
    /// JSON array of container objects.
    Json,
}

/// Exit codes of the contract.
pub mod exit {
    /// Scan done.
    pub const OK: u8 = 0;
    /// The scan itself failed (a watcher could not be read, setup failed).
    pub const FAILED: u8 = 1;
    /// Bad configuration or usage.
    pub const BAD_CONFIG: u8 = 2;
    /// `--fail-on-update` and an update is available.
    pub const UPDATE_AVAILABLE: u8 = 3;
}

/// The scanner for `config`, or the exit code after saying why there is none.
pub async fn scanner(config: &Config) -> Result<Scanner, ExitCode> {
    match Scanner::new(config).await {
        Ok(scanner) => Ok(scanner),
        Err(ScanSetupError::Config(err)) => {
            eprintln!("error: bad configuration: {err}");
            Err(ExitCode::from(exit::BAD_CONFIG))
        }
        Err(err) => {
            eprintln!("error: {err}");
            Err(ExitCode::from(exit::FAILED))
        }
    }
}

/// Run `scan`.
pub async fn run(
    config: &Config,
    format: ScanFormat,
    images: Vec<String>,
    fail_on_update: bool,
) -> anyhow::Result<ExitCode> {
    let scanner = match scanner(config).await {
        Ok(scanner) => scanner,
        Err(code) => return Ok(code),
    };
    let request = ScanRequest {
        images,
        ..ScanRequest::default()
    };
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scanning repositories {pos}/{len} {wide_bar} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress: Option<crowsnest_engine::scan::Progress> = bar.clone().map(|bar| {
        Arc::new(move |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }) as crowsnest_engine::scan::Progress
    });
    let report = scanner.scan_with_progress(&request, progress).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut out = std::io::stdout().lock();
    // With nothing read at all, an empty table would read like a clean result.
    let nothing_read = report.containers.is_empty() && report.failed();
    match format {
        ScanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report.containers)?)?,
        ScanFormat::Table if nothing_read => {}
        ScanFormat::Table => write_table(
            &mut out,
            &report,
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        )?,
    }
    // Each message already names its watcher.
    for failed in &report.watcher_errors {
        eprintln!("error: {}", failed.message);
    }
    if let Some(error) = &report.store_error {
        eprintln!("error: {error}");
    }
    if report.failed() {
        return Ok(ExitCode::from(exit::FAILED));
    }
    if fail_on_update && report.containers.iter().any(|c| c.update_available) {
        return Ok(ExitCode::from(exit::UPDATE_AVAILABLE));
    }
    Ok(ExitCode::from(exit::OK))
}

/// Status column text and colour of one container, from its check status:
/// "up to date" only where a comparison was made.
fn status(container: &ContainerObject) -> (String, &'static str) {
    let (text, colour) = match (container.check.status, &container.error) {
        (_, Some(error)) => (format!("error: {}", error.message), "31"),
        (CheckStatus::Update, None) => {
            let detail = container
                .update_kind
                .as_ref()
                .map(|kind| {
                    kind.semver_diff
                        .clone()
                        .unwrap_or_else(|| kind.kind.clone())
                })
                .unwrap_or_else(|| "unknown".into());
            (format!("update ({detail})"), "33")
        }
        (CheckStatus::UpToDate, None) => ("up to date".into(), "32"),
        (CheckStatus::NotChecked | CheckStatus::Error, None) => {
            return (container.check.describe(), "2");
        }
    };
    (format!("{text}{}", container.check.stale_note()), colour)
}

fn write_table(out: &mut impl Write, report: &ScanReport, colour: bool) -> std::io::Result<()> {
    let header = ["NAME", "WATCHER", "IMAGE", "CURRENT", "OFFERED", "STATUS"];
    let rows: Vec<Vec<String>> = report
        .containers
        .iter()
        .map(|c| {
            let current = c
                .image
                .tag
                .value
                .clone()
                .unwrap_or_else(|| "(digest)".into());
            let offered = match &c.update_kind {
                Some(kind) if c.update_available && kind.kind == "digest" => {
                    format!(
                        "new digest {}",
                        short_digest(kind.remote_value.as_deref().unwrap_or_default())
                    )
                }
                Some(kind) if c.update_available => kind.remote_value.clone().unwrap_or_default(),
                _ => "-".into(),
            };
            let (text, code) = status(c);
            // The status is the last column, never padded: colour escapes do not upset alignment.
            let text = if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text
            };
            vec![
                c.display_name.clone(),
                c.watcher.clone(),
                c.image.reference.clone(),
                current,
                offered,
                text,
            ]
        })
        .collect();
    for line in super::table::aligned_lines(&header, &rows) {
        writeln!(out, "{line}")?;
    }
    let updates = report
        .containers
        .iter()
        .filter(|c| c.update_available)
        .count();
    let errors = report
        .containers
        .iter()
        .filter(|c| c.error.is_some())
        .count();
    writeln!(
        out,
        "\n{} containers, {updates} with updates, {errors} errors, {} repositories, {} ms",
        report.containers.len(),
        report.stats.repositories,
        report.stats.duration_ms
    )?;
    Ok(())
}

/// The first 12 characters of a digest's hex (characters, not bytes: a
/// plugin may hand back anything, and byte slicing would panic on non-ASCII).
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_ascii_digest_from_a_plugin_does_not_panic() {
        assert_eq!(short_digest("sha256:ééééééééééééééé"), "éééééééééééé");
        assert_eq!(short_digest("sha256:abc"), "abc");
    }
}
