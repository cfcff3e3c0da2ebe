//! Command-line front ends of the host's capabilities.

pub mod agent;
pub mod plugins;
pub mod rescan;
pub mod scan;
pub mod serve;
pub mod table;
pub mod triggers;

/// Log to stderr; `RUST_LOG` (or `CROWSNEST_LOG`) picks the level, `warn` by default.
pub fn init_tracing() {
    let filter = std::env::var("CROWSNEST_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
