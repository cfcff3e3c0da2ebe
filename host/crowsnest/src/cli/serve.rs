//! `crowsnest serve`: the daemon (scheduler, Docker events, HTTP + gRPC API).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crowsnest_config::{Config, ConfigError};
use crowsnest_engine::actions::{finish_handover, UpdateActions};
use crowsnest_engine::metrics::Metrics;
use crowsnest_engine::scan::{ScanSetupError, Scanner};
use crowsnest_engine::scheduler::Coordinator;
use crowsnest_engine::triggers::TriggerDispatcher;

use crate::server::{self, AppState, Background, ConfigInfo, PluginSummary, RunningServer};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is wrong (exit code 2).
    #[error("bad configuration: {0}")]
    Config(#[from] ConfigError),
    /// Anything else (exit code 1).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

/// Builds the scanner, triggers and API state from `config` and starts serving.
pub async fn start(config: &Config) -> Result<RunningServer, StartError> {
    let metrics = Arc::new(Metrics::new());
    let scanner = Scanner::with_observer(config, metrics.clone())
        .await
        .map_err(|error| match error {
            ScanSetupError::Config(error) => StartError::Config(error),
            other => {
                StartError::Runtime(anyhow::Error::new(other).context("cannot set up the scanner"))
            }
        })?;
    metrics.set_request_counters(scanner.registry_client().counters());
    let triggers = TriggerDispatcher::from_config(
        config,
        scanner.catalog(),
        scanner.store().clone(),
        Arc::clone(&metrics),
    )
    .await?;
    let info = ConfigInfo {
        watchers: scanner.watchers().clone(),
        registries: serde_json::to_value(scanner.registries())
            .context("cannot describe the registries")?,
        // The plugin listing describes every plugin, so serve compiles them
        // all (into the cache) where a one-shot scan compiles only what it uses.
        plugins: {
            scanner.catalog().load_all().await;
            PluginSummary::from_catalog(scanner.catalog())
        },
    };
    let store = scanner.store().clone();
    let watchers = scanner.watchers().clone();
    let agents = Arc::new(server::agents::AgentHub::new(
        scanner.configured_watcher_names(),
    ));
    scanner.add_source(agents.clone());
    // A crowsnest that replaced its own container removes the old one first.
    finish_handover(&watchers).await;
    let actions = UpdateActions::from_config(config, scanner.clone(), Arc::clone(&metrics))?;
    let coordinator = Arc::new(
        Coordinator::new(Arc::new(scanner), Arc::new(triggers), metrics)
            .with_actions(Arc::new(actions))
            // A scan is bounded by its own deadline; a minute more for discovery and the store.
            .with_join_timeout(Duration::from_secs(
                config.scan.scan_timeout_secs.saturating_add(60),
            )),
    );
    let state = Arc::new(AppState::new(
        store,
        coordinator,
        server::auth::Token::new(config.server.token.as_deref()),
        info,
        agents,
    ));
    server::start(
        &config.server,
        state,
        Background {
            watchers,
            kubernetes_watchers: config.kubernetes_watchers.clone(),
            schedules: true,
        },
    )
    .await
    .map_err(|error| match error {
        server::ServeError::Schedule(error) => StartError::Config(
            config.error_at(&["watchers", &error.watcher, "schedule"], error.message),
        ),
        other => StartError::Runtime(other.into()),
    })
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let running = match start(config).await {
        Ok(running) => running,
        Err(StartError::Config(error)) => {
            eprintln!("error: bad configuration: {error}");
            return Ok(ExitCode::from(2));
        }
        Err(StartError::Runtime(error)) => return Err(error),
    };
    eprintln!(
        "crowsnest serving HTTP on http://{}{}",
        running.http_addr,
        running
            .grpc_addr
            .map(|addr| format!(", gRPC on {addr}"))
            .unwrap_or_default()
    );
    wait_for_signal().await?;
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT.
pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
