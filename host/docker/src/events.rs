//! Container lifecycle events from an engine's event stream.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures::{Stream, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::{DiscoveryError, DockerWatcher};

/// Container lifecycle events that change what a watcher should scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerAction {
    /// Container created.
    Create,
    /// Container started.
    Start,
    /// Container removed.
    Destroy,
    /// Container process exited.
    Die,
    /// Container renamed.
    Rename,
}

impl ContainerAction {
    const ALL: [ContainerAction; 5] = [
        ContainerAction::Create,
        ContainerAction::Start,
        ContainerAction::Destroy,
        ContainerAction::Die,
        ContainerAction::Rename,
    ];

    /// The Docker event action name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerAction::Create => "create",
            ContainerAction::Start => "start",
            ContainerAction::Destroy => "destroy",
            ContainerAction::Die => "die",
            ContainerAction::Rename => "rename",
        }
    }

    fn parse(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == action)
    }
}

/// One container lifecycle event from a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// What happened.
    pub action: ContainerAction,
    /// Full id of the container it happened to.
    pub container_id: String,
}

impl DockerWatcher {
    /// Stream of container lifecycle events (create, start, destroy, die, rename).
    /// With `since`, the engine first replays the events from that time on (use
    /// it to resume after a reconnect without a gap). The request is sent when
    /// the stream is first polled. The stream ends after yielding an error when
    /// the connection breaks; the caller decides whether to reconnect.
    pub fn container_events(
        &self,
        since: Option<SystemTime>,
    ) -> impl Stream<Item = Result<ContainerEvent, DiscoveryError>> + Send + 'static {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                ContainerAction::ALL
                    .iter()
                    .map(|action| action.as_str().to_owned())
                    .collect(),
            ),
        ]);
        let since = since.map(|time| {
            let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            format!(
                "{}.{:09}",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            )
        });
        let options = EventsOptions {
            filters: Some(filters),
            since,
            ..Default::default()
        };
        let watcher = self.name.clone();
        let endpoint = self.endpoint.to_string();
        self.docker
            .events(Some(options))
            .map_err(move |source| DiscoveryError::Events {
                watcher: watcher.clone(),
                endpoint: endpoint.clone(),
                source,
            })
            .try_filter_map(|message| async move {
                let action = message
                    .action
                    .as_deref()
                    // Some engines suffix actions with details ("exec_start: sh"); not ours.
                    .and_then(ContainerAction::parse);
                let container_id = message.actor.and_then(|actor| actor.id);
                Ok(action
                    .zip(container_id)
                    .map(|(action, container_id)| ContainerEvent {
                        action,
                        container_id,
                    }))
            })
    }
}
