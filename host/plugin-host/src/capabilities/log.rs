//! `log`: guest log lines, written by the host's `tracing` with the plugin's
//! label; every world may log, and nothing else is needed for it.

use crate::bindings::registry::crowsnest::plugin::{log, types};
use crate::HostState;

impl log::Host for HostState {
    async fn write(&mut self, level: types::LogLevel, message: String) {
        let message: String = message.chars().take(4096).collect();
        let message = self.capabilities.secrets.scrub(&message);
        let plugin = &*self.label;
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
