//! crowsnest: container image update scanner whose vendor-specific parts are
//! sandboxed WebAssembly component plugins.

pub mod cli;
pub mod config;
pub mod discovery;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod reference;
pub mod registry;
pub mod scan;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod triggers;
