//! crowsnest-engine: the business layer — what to scan, when, and what to do
//! with the answer.
//!
//! Responsibility: the scan engine ([`scan`]: group containers by repository,
//! list tags once, ask the strategy, look digests up, store results), the
//! scheduler ([`scheduler`]: single-flight coordinator, cron timers, Docker
//! event follower), triggers ([`triggers`]: which fires when, delivery with
//! retries), update actions ([`actions`]: which container is updated when, by
//! which action, with a per-container lock and a history), the live
//! [`events`] bus and the daemon's [`metrics`].
//!
//! Builds on every crate below it (oci, plugin-host, docker, store, config,
//! model); must not depend on a front end (CLI, HTTP, gRPC).

pub mod actions;
pub mod events;
mod instance_setup;
pub mod memory;
pub mod metrics;
pub mod plugin_setup;
pub mod scan;
pub mod scheduler;
pub mod triggers;
