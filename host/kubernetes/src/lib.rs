//! crowsnest-kubernetes: the Kubernetes clusters crowsnest watches.
//!
//! Responsibility: a Kubernetes watcher's configuration ([`config`]), the
//! connection to its API server with kube-rs ([`client`]), discovery of the
//! containers of its Pods with the image and digest each runs and the
//! Deployment/StatefulSet/DaemonSet that owns the Pod ([`discovery`]), the
//! registry credentials of their image pull secrets ([`pull_secrets`]), and a
//! live list/watch of the Pods ([`watch`]).
//!
//! Like crowsnest-docker it reports what the cluster says as
//! [`DiscoveredContainer`]s (taking only that type from the docker crate) and
//! must not depend on the plugin host, the store, the scan engine or a front end.

pub mod client;
pub mod config;
pub mod discovery;
mod errors;
pub mod pull_secrets;
pub mod watch;

pub use client::KubernetesWatcher;
pub use config::KubernetesWatcherConfig;
pub use crowsnest_docker::{DiscoveredContainer, WorkloadKind};
pub use discovery::{discover_all, KubernetesDiscovery};
pub use errors::KubernetesError;
pub use pull_secrets::{PullCredential, PullCredentials};
pub use watch::PodChange;
