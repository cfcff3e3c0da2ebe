//! crowsnest: the command-line and server front ends of the scanner.
//!
//! Responsibility: the `crowsnest` commands ([`cli`]: `scan`, `serve`,
//! `rescan`, `plugins`) and the daemon's APIs ([`server`]: HTTP with the
//! OpenAPI document, gRPC, authentication). Everything they show comes from
//! the engine and the crates below it, re-exported here under short names so
//! that tests and embedders need one dependency.
//!
//! The top of the layering: nothing in the workspace depends on it.

pub mod cli;
pub mod server;

pub use crowsnest_config as config;
pub use crowsnest_docker as docker;
pub use crowsnest_engine::{metrics, plugin_setup, scan, scheduler, triggers};
pub use crowsnest_model as model;
pub use crowsnest_oci as oci;
pub use crowsnest_plugin_host as plugin;
pub use crowsnest_store as store;
