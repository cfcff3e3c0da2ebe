//! Waiting for a started container to prove itself: running, and healthy
//! when it has a health check, within a deadline.

use std::time::{Duration, Instant};

use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use bollard::Docker;
use futures::StreamExt;

/// How often the container's state is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Log lines quoted when a container fails to start.
const LOG_LINES: &str = "10";

/// Waits until container `id` is proven: healthy when it has a health check,
/// else running without a restart for `settle`. Fails as soon as it exits,
/// restarts or turns unhealthy, or when `timeout` passes; the error says how
/// and quotes its last log lines.
pub async fn until_proven(
    docker: &Docker,
    id: &str,
    timeout: Duration,
    settle: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut running_since: Option<(Instant, Option<String>)> = None;
    loop {
        let inspected = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|error| format!("inspecting the new container failed: {error}"))?;
        let state = inspected.state.unwrap_or_default();
        let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
        let health = state.health.as_ref().and_then(|health| health.status);
        let last_state: String;
        match status {
            ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => {
                let code = state.exit_code.unwrap_or_default();
                let error = state.error.filter(|error| !error.is_empty());
                let why = match error {
                    Some(error) => format!("exited with code {code}: {error}"),
                    None => format!("exited with code {code}"),
                };
                return Err(with_logs(docker, id, why).await);
            }
            ContainerStateStatusEnum::RESTARTING => {
                let why = format!(
                    "is restarting (exit code {})",
                    state.exit_code.unwrap_or_default()
                );
                return Err(with_logs(docker, id, why).await);
            }
            ContainerStateStatusEnum::RUNNING => match health {
                Some(HealthStatusEnum::HEALTHY) => return Ok(()),
                Some(HealthStatusEnum::UNHEALTHY) => {
                    let output = state
                        .health
                        .and_then(|health| health.log)
                        .and_then(|log| log.into_iter().last())
                        .and_then(|probe| probe.output)
                        .map(|output| output.trim().to_owned())
                        .unwrap_or_default();
                    return Err(with_logs(
                        docker,
                        id,
                        format!("is unhealthy (last probe: {output:?})"),
                    )
                    .await);
                }
                Some(HealthStatusEnum::STARTING) => last_state = "health: starting".into(),
                _ => {
                    // No health check: it must keep running, not restart, for `settle`.
                    let started_at = state.started_at.clone();
                    match &running_since {
                        Some((since, seen_start)) if *seen_start == started_at => {
                            if since.elapsed() >= settle {
                                return Ok(());
                            }
                        }
                        _ => running_since = Some((Instant::now(), started_at)),
                    }
                    last_state = "running".into();
                }
            },
            other => last_state = other.to_string(),
        }
        if Instant::now() >= deadline {
            let why = format!(
                "was not proven within {}s (last state: {last_state})",
                timeout.as_secs()
            );
            return Err(with_logs(docker, id, why).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `why`, followed by the container's last log lines when it wrote any.
async fn with_logs(docker: &Docker, id: &str, why: String) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: LOG_LINES.to_owned(),
        ..Default::default()
    };
    let mut logs = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        if text.len() > 2000 {
            break;
        }
    }
    let text = text.trim();
    if text.is_empty() {
        format!("the new container {why}")
    } else {
        format!("the new container {why}; its last output: {text}")
    }
}
