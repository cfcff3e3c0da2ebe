//! `crowsnest rescan --server URL [--image PATTERN]…`: asks a running server to
//! rescan (everything, or the containers whose image matches) and prints the answer.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crowsnest_model::ContainerObject;

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
    let mut out = std::io::stdout().lock();
    if args.format == RescanFormat::Json {
        writeln!(out, "{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let containers: Vec<ContainerObject> = if body.is_some() {
        serde_json::from_str::<ScanReportAnswer>(&text)
            .with_context(|| format!("unexpected answer from {url}"))?
            .containers
    } else {
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}"))?
    };
    write_table(&mut out, &containers)?;
    Ok(ExitCode::SUCCESS)
}

/// The part of a scan report (`POST /api/scan`) the table needs.
#[derive(serde::Deserialize)]
struct ScanReportAnswer {
    containers: Vec<ContainerObject>,
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
            let (available, state) = if let Some(error) = &container.error {
                ("-".to_owned(), format!("error: {}", error.message))
            } else if container.update_available {
                let offered = container
                    .update_kind
                    .as_ref()
                    .and_then(|kind| kind.remote_value.clone())
                    .unwrap_or_else(|| "?".into());
                (offered, "update available".to_owned())
            } else {
                ("-".to_owned(), "up to date".to_owned())
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
