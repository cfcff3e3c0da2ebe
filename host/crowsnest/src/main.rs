//! The `crowsnest` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use crowsnest::cli;
use crowsnest::config::{self, Config};

/// Watches the containers on your Docker hosts and tells you, fast and correctly, when a newer image exists.
#[derive(Debug, Parser)]
#[command(name = "crowsnest", version, about)]
struct Args {
    /// Configuration file (default: $CROWSNEST_CONFIG, else ./config.toml if present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One-shot scan of every watcher.
    Scan {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: cli::scan::ScanFormat,
        /// Only containers whose image matches (repository with or without registry host; repeatable).
        #[arg(long = "image", value_name = "PATTERN")]
        images: Vec<String>,
        /// Exit with code 3 when any update is available.
        #[arg(long)]
        fail_on_update: bool,
    },
    /// Run the daemon: scheduled scans, Docker events, HTTP + gRPC API.
    Serve,
    /// Ask a running server to rescan (everything, or the matching images).
    Rescan {
        /// Server base URL.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        server: String,
        /// Only containers whose image matches (repeatable).
        #[arg(long = "image", value_name = "PATTERN")]
        images: Vec<String>,
        /// Bearer token of the server.
        #[arg(long, env = "CROWSNEST_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: cli::rescan::RescanFormat,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Stream the local engine's containers and events to a central `crowsnest serve` (gRPC).
    Agent {
        /// gRPC URL of the server, e.g. `http://central:3001` (default: `[agent] server`).
        #[arg(long)]
        server: Option<String>,
        /// The server's `[server] token` (default: `[agent] token`).
        #[arg(long, env = "CROWSNEST_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Watcher name the server stores this engine's containers under (default: the host name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Inspect plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Work with the configured triggers.
    Triggers {
        #[command(subcommand)]
        command: TriggersCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TriggersCommand {
    /// Send a sample update through a configured trigger and print what happened.
    Test {
        /// The trigger, as in `[triggers.NAME]`.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: cli::triggers::TestFormat,
    },
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// List loaded plugins (built-in and drop-in) and the files that were skipped.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: cli::plugins::ListFormat,
    },
    /// Check a component file: which world it implements and its describe(), or why it is not a plugin.
    Check {
        /// The `.wasm` file.
        file: PathBuf,
    },
    /// Run a registry instance's matches / locate / credentials / list-tags /
    /// resolve for one image and print each step.
    Test {
        /// The registry instance (`[registries.NAME]`; `hub` for Docker Hub).
        name: String,
        /// The image reference, e.g. `ghcr.io/org/app:1.2`.
        #[arg(long)]
        image: String,
    },
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_tracing();
    let config = match Config::load(config::resolve_path(args.config.as_deref()).as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: bad configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Scan {
                format,
                images,
                fail_on_update,
            } => cli::scan::run(&config, format, images, fail_on_update).await,
            Command::Serve => cli::serve::run(&config).await,
            Command::Rescan {
                server,
                images,
                token,
                format,
                timeout,
            } => {
                let args = cli::rescan::RescanArgs {
                    server,
                    images,
                    token,
                    format,
                    timeout: std::time::Duration::from_secs(timeout),
                };
                cli::rescan::run(&args).await
            }
            Command::Agent {
                server,
                token,
                name,
            } => {
                let args = cli::agent::AgentArgs {
                    server,
                    token,
                    name,
                };
                cli::agent::run(&config, args).await
            }
            Command::Plugins { command } => match command {
                PluginsCommand::List { format } => cli::plugins::list(&config, format).await,
                PluginsCommand::Check { file } => cli::plugins::check(&config, &file).await,
                PluginsCommand::Test { name, image } => {
                    cli::plugins::test(&config, &name, &image).await
                }
            },
            Command::Triggers { command } => match command {
                TriggersCommand::Test { name, format } => {
                    cli::triggers::test(&config, &name, format).await
                }
            },
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
