//! crowsnest-docker: the Docker engines crowsnest watches.
//!
//! Responsibility: a watcher's configuration and endpoint ([`watcher`]), the
//! connection to its engine with bollard ([`client`]), discovery of its
//! containers with the image each runs ([`discovery`]), the options their
//! labels carry ([`labels`]), container lifecycle events ([`events`]), and
//! acting on an update ([`update`]: pull, replace a container with the same
//! configuration, prove it, roll back; Swarm `service update`; compose files).
//!
//! Must not depend on the plugin host, the store, the scan engine or any
//! front end: it reports what the engines say and acts on them as asked;
//! from oci it takes only the credentials type of a pull.

pub mod client;
pub mod discovery;
mod errors;
pub mod events;
mod images;
pub mod labels;
pub mod update;
pub mod watcher;

pub use client::DockerWatcher;
pub use discovery::{discover_all, DiscoveredContainer, WatcherDiscovery, WorkloadKind};
pub use errors::DiscoveryError;
pub use events::{ContainerAction, ContainerEvent};
pub use labels::ContainerOptions;
pub use watcher::{
    watchers_or_default, Endpoint, WatcherConfig, DEFAULT_SOCKET, DEFAULT_WATCHER_NAME,
};
