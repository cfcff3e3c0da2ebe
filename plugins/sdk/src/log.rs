//! Log lines written by the host's `tracing`, tagged with the plugin name.
//! Available to registry providers and triggers (strategies have no imports).

#[cfg(feature = "registry")]
use crowsnest_plugin_world_registry::crowsnest::plugin::{log as wit_log, types::LogLevel};
#[cfg(all(feature = "trigger", not(feature = "registry")))]
use crowsnest_plugin_world_trigger::crowsnest::plugin::{log as wit_log, types::LogLevel};

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong but the call goes on.
    Warn,
    /// A call failed.
    Error,
}

/// Writes one log line at `level`. Outside wasm (a plugin's native unit
/// tests) there is no host: the line goes to stderr.
pub fn write(level: Level, message: &str) {
    if !cfg!(target_arch = "wasm32") {
        eprintln!("[{level:?}] {message}");
        return;
    }
    let level = match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    wit_log::write(level, message);
}

/// Writes a trace line.
pub fn trace(message: &str) {
    write(Level::Trace, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a warning.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    write(Level::Error, message);
}
