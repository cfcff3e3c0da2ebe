//! `crowsnest rescan --server URL [--image PATTERN]…`: asks a running server to
//! rescan (everything, or the containers whose image matches) and prints the answer.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crowsnest_model::{CheckStatus, ContainerObject, WatcherError};

/// Output format of `rescan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RescanFormat {
    /// Aligned columns.
    Table,
    /// The server's JSON answer.
    Json,
}

/// What to ask.
#[derive(Debug, Clone)]
pub struct RescanArgs {
    /// Base URL of the server, e.g. `http://127.0.0.1:3000`.
    pub server: String,
    /// Image patterns; empty = full rescan.
    pub images: Vec<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// Output format.
    pub format: RescanFormat,
    /// Request timeout.
    pub timeout: Duration,
}

/// Sends the rescan and prints the result; exit 1 when the server refuses or fails.
pub async fn run(args: &RescanArgs) -> anyhow::Result<ExitCode> {
    let base = args.server.trim_end_matches('/');
    let (url, body) = if args.images.is_empty() {
        (format!("{base}/api/containers/watch"), None)
    } else {
        (
            format!("{base}/api/scan"),
            Some(serde_json::json!({ "images": args.images })),
        )
    };
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .build()
        .context("cannot build the HTTP client")?;
    let mut request = client.post(&url);
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let watcher_errors: Vec<WatcherError> = response
        .headers()
        .get(crate::server::WATCHER_ERRORS_HEADER)
        .and_then(|value| serde_json::from_slice(value.as_bytes()).ok())
        .unwrap_or_default();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|value| {
                value
                    .get("error")
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or(text);
        eprintln!("error: {url} answered {status}: {message}");
        return Ok(ExitCode::from(1));
    }
    let (containers, watcher_errors): (Vec<ContainerObject>, Vec<WatcherError>) = if body.is_some()
    {
        let answer = serde_json::from_str::<ScanReportAnswer>(&text)
            .with_context(|| format!("unexpected answer from {url}"))?;
        (answer.containers, answer.watcher_errors)
    } else {
        let containers =
            serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}"))?;
        (containers, watcher_errors)
    };
    let mut out = std::io::stdout().lock();
    if args.format == RescanFormat::Json {
        writeln!(out, "{text}")?;
    } else {
        write_table(&mut out, &containers)?;
    }
    // A watcher the server could not read fails the rescan: its containers
    // show their last (stale) result, never a fresh one.
    for failed in &watcher_errors {
        eprintln!("error: {}", failed.message);
    }
    if watcher_errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

/// The parts of a scan report (`POST /api/scan`) the table needs.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanReportAnswer {
    containers: Vec<ContainerObject>,
    #[serde(default)]
    watcher_errors: Vec<WatcherError>,
}

/// Prints containers as aligned columns; a failed check says so, never "up to date".
pub fn write_table(
    out: &mut impl std::io::Write,
    containers: &[ContainerObject],
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|container| {
            let current = container
                .image
                .tag
                .value
                .clone()
                .unwrap_or_else(|| "-".into());
            // The check status decides: "up to date" only where a comparison was made.
            let (available, state) = match (&container.error, container.check.status) {
                (Some(error), _) => ("-".to_owned(), format!("error: {}", error.message)),
                (None, CheckStatus::Update) => {
                    let offered = container
                        .update_kind
                        .as_ref()
                        .and_then(|kind| kind.remote_value.clone())
                        .unwrap_or_else(|| "?".into());
                    (offered, "update available".to_owned())
                }
                (None, _) => ("-".to_owned(), container.check.describe()),
            };
            vec![
                container.display_name.clone(),
                container.image.reference.clone(),
                current,
                available,
                state,
            ]
        })
        .collect();
    let header = ["NAME", "IMAGE", "CURRENT", "AVAILABLE", "STATUS"];
    for line in super::table::aligned_lines(&header, &rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
