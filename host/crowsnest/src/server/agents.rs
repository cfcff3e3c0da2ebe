//! Connected agents (`crowsnest agent`): each streams one engine's containers
//! over gRPC — a snapshot on every connection, then deltas from the engine's
//! events — and the hub holds them as a container source of the scan engine,
//! under the agent's name as watcher. Registries are then scanned once for
//! the whole fleet; a disconnected agent's containers are marked stale, never
//! deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::Stream;
use tonic::{Status, Streaming};

use super::grpc::proto::{agent_message::Change, AgentAck, AgentMessage};
use super::AppState;
use crowsnest_docker::DiscoveredContainer;
use crowsnest_engine::metrics::ScanOrigin;
use crowsnest_engine::scan::{ContainerSource, SourceListing};
use crowsnest_model::{ContainerObject, ScanRequest};

/// The acknowledgements a server sends on an agent's stream.
pub type AckStream = Pin<Box<dyn Stream<Item = Result<AgentAck, Status>> + Send>>;

/// What one agent last told the server.
#[derive(Default)]
struct AgentState {
    /// The agent process's session; sequence numbers count within it.
    session: String,
    /// Highest sequence number applied in `session`.
    applied: u64,
    /// Which connection is current (a reconnect replaces an old one).
    connection: Option<u64>,
    /// The engine's containers, by id.
    containers: BTreeMap<String, DiscoveredContainer>,
}

/// What applying one message changed, for the scan engine to follow.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Already applied (a resend after a reconnect): only acknowledged.
    Duplicate,
    /// The agent's whole engine was replaced: rescan its watcher.
    Snapshot,
    /// One container was added or changed: refresh it.
    Upsert(String),
    /// One container is gone: forget it.
    Removed(String),
}

/// Every agent that connected since the server started.
pub struct AgentHub {
    /// Configured Docker watchers: an agent may not take one of their names.
    reserved: BTreeSet<String>,
    agents: Mutex<BTreeMap<String, AgentState>>,
    next_connection: std::sync::atomic::AtomicU64,
}

impl AgentHub {
    /// A hub refusing agents named like one of the `reserved` watchers.
    pub fn new(reserved: impl IntoIterator<Item = String>) -> Self {
        Self {
            reserved: reserved.into_iter().collect(),
            agents: Mutex::new(BTreeMap::new()),
            next_connection: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Registers `agent`, known from the store but not connected since the
    /// server started, as disconnected (its containers then turn stale);
    /// false when it connected meanwhile or is a configured watcher.
    pub fn mark_absent(&self, agent: &str) -> bool {
        if self.reserved.contains(agent) {
            return false;
        }
        let mut agents = self.lock();
        if agents.contains_key(agent) {
            return false;
        }
        agents.insert(agent.to_owned(), AgentState::default());
        true
    }

    /// Whether `agent` is connected now.
    pub fn is_connected(&self, agent: &str) -> bool {
        self.lock()
            .get(agent)
            .is_some_and(|state| state.connection.is_some())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AgentState>> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection of `agent`; returns its number.
    pub fn connect(&self, agent: &str) -> Result<u64, Status> {
        if agent.trim().is_empty() {
            return Err(Status::invalid_argument("the agent name is empty"));
        }
        if self.reserved.contains(agent) {
            return Err(Status::invalid_argument(format!(
                "agent name `{agent}` is a configured watcher of the server; give the agent another --name"
            )));
        }
        let connection = self
            .next_connection
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().entry(agent.to_owned()).or_default().connection = Some(connection);
        Ok(connection)
    }

    /// Ends `connection` of `agent`; true when it was the current one (the
    /// agent is now disconnected).
    pub fn disconnect(&self, agent: &str, connection: u64) -> bool {
        match self.lock().get_mut(agent) {
            Some(state) if state.connection == Some(connection) => {
                state.connection = None;
                true
            }
            _ => false,
        }
    }

    /// Applies one message of `agent` (in the order sent).
    pub fn apply(&self, agent: &str, message: AgentMessage) -> Result<Applied, Status> {
        let mut agents = self.lock();
        let state = agents.entry(agent.to_owned()).or_default();
        if state.session != message.session {
            state.session = message.session.clone();
            state.applied = 0;
        } else if message.sequence <= state.applied {
            return Ok(Applied::Duplicate);
        }
        let parse = |json: &str| {
            serde_json::from_str::<DiscoveredContainer>(json)
                .map(|mut container| {
                    container.watcher = agent.to_owned();
                    container
                })
                .map_err(|error| {
                    Status::invalid_argument(format!(
                        "message {}: not a container: {error}",
                        message.sequence
                    ))
                })
        };
        let applied = match &message.change {
            Some(Change::Snapshot(snapshot)) => {
                let containers = snapshot
                    .containers
                    .iter()
                    .map(|container| parse(&container.json).map(|c| (c.id.clone(), c)))
                    .collect::<Result<BTreeMap<_, _>, _>>()?;
                state.containers = containers;
                Applied::Snapshot
            }
            Some(Change::Upsert(container)) => {
                let container = parse(&container.json)?;
                let id = container.id.clone();
                state.containers.insert(id.clone(), container);
                Applied::Upsert(id)
            }
            Some(Change::Removed(id)) => {
                state.containers.remove(id);
                Applied::Removed(id.clone())
            }
            None => {
                return Err(Status::invalid_argument(format!(
                    "message {} carries no change",
                    message.sequence
                )))
            }
        };
        state.applied = message.sequence;
        Ok(applied)
    }
}

impl ContainerSource for AgentHub {
    fn list<'a>(&'a self, wanted: &'a [String]) -> BoxFuture<'a, Vec<SourceListing>> {
        let listings = self
            .lock()
            .iter()
            .filter(|(agent, _)| wanted.is_empty() || wanted.contains(agent))
            .map(|(agent, state)| SourceListing {
                watcher: agent.clone(),
                containers: match state.connection {
                    Some(_) => Ok(state.containers.values().cloned().collect()),
                    None if state.session.is_empty() => Err(format!(
                        "agent `{agent}` has not reported since the server started"
                    )),
                    None => Err(format!("agent `{agent}` is disconnected")),
                },
            })
            .collect();
        Box::pin(std::future::ready(listings))
    }
}

/// Serves one agent's stream: applies each message, makes the scan engine
/// follow it, then acknowledges it. When the stream ends the agent is
/// disconnected and its watcher rescanned (its containers turn stale).
pub fn serve_stream(state: Arc<AppState>, mut inbound: Streaming<AgentMessage>) -> AckStream {
    let (acks, outbound) = tokio::sync::mpsc::channel::<Result<AgentAck, Status>>(64);
    tokio::spawn(async move {
        let mut current: Option<(String, u64)> = None;
        loop {
            let message = tokio::select! {
                () = state.shutdown.cancelled() => break,
                message = inbound.message() => message,
            };
            let message = match message {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => {
                    tracing::info!(error = %status, "agent stream broke");
                    break;
                }
            };
            let agent = message.agent.clone();
            if current.as_ref().is_none_or(|(name, _)| *name != agent) {
                if current.is_some() {
                    let _ = acks
                        .send(Err(Status::invalid_argument(
                            "one stream carries one agent's messages",
                        )))
                        .await;
                    break;
                }
                match state.agents.connect(&agent) {
                    Ok(connection) => {
                        tracing::info!(%agent, "agent connected");
                        current = Some((agent.clone(), connection));
                    }
                    Err(status) => {
                        let _ = acks.send(Err(status)).await;
                        break;
                    }
                }
            }
            let sequence = message.sequence;
            let applied = match state.agents.apply(&agent, message) {
                Ok(applied) => applied,
                Err(status) => {
                    tracing::warn!(%agent, error = %status, "agent message refused");
                    let _ = acks.send(Err(status)).await;
                    break;
                }
            };
            follow(&state, &agent, applied).await;
            if acks.send(Ok(AgentAck { sequence })).await.is_err() {
                break;
            }
        }
        if let Some((agent, connection)) = current {
            // At shutdown the store is closing: the next start finds the agent anew.
            if state.agents.disconnect(&agent, connection) && !state.shutdown.is_cancelled() {
                tracing::warn!(%agent, "agent disconnected; its containers are stale until it returns");
                rescan(&state, &agent).await;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(outbound))
}

/// After a restart: the agents whose containers are stored but that do not
/// reconnect within `grace` have those containers marked stale (with the
/// time of their last good check), as if they had disconnected.
pub async fn stale_unless_back(state: Arc<AppState>, grace: Duration) {
    let stored = match state.store.list_containers::<ContainerObject>().await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%error, "cannot read the stored containers of agents");
            return;
        }
    };
    let agents: BTreeSet<String> = stored
        .into_iter()
        .map(|container| container.watcher)
        .filter(|watcher| !state.agents.reserved.contains(watcher))
        .collect();
    if agents.is_empty() {
        return;
    }
    tokio::select! {
        () = state.shutdown.cancelled() => return,
        () = tokio::time::sleep(grace) => {}
    }
    for agent in agents {
        if state.agents.mark_absent(&agent) {
            tracing::warn!(%agent, grace_secs = grace.as_secs(), "agent did not reconnect after the restart; its containers are stale until it returns");
            rescan(&state, &agent).await;
        }
    }
}

/// Makes the scan engine follow one applied change.
async fn follow(state: &AppState, agent: &str, applied: Applied) {
    let outcome = match &applied {
        Applied::Duplicate => Ok(()),
        Applied::Snapshot => {
            rescan(state, agent).await;
            Ok(())
        }
        Applied::Upsert(id) => state.coordinator.refresh(agent, id).await.map(drop),
        Applied::Removed(id) => state.coordinator.forget(id).await,
    };
    if let Err(error) = outcome {
        tracing::warn!(%agent, ?applied, %error, "agent change could not be checked");
    }
}

/// Scans `agent`'s watcher alone (stores, prunes by its listing, or marks its
/// containers stale when it is disconnected).
async fn rescan(state: &AppState, agent: &str) {
    let request = ScanRequest {
        watchers: vec![agent.to_owned()],
        ..ScanRequest::default()
    };
    if let Err(error) = state.coordinator.scan(request, ScanOrigin::Grpc).await {
        tracing::warn!(%agent, %error, "scan of the agent's containers failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::grpc::proto::{AgentContainer, AgentSnapshot};

    fn container_json(id: &str) -> String {
        serde_json::json!({
            "id": id, "name": id, "status": "running", "watcher": "elsewhere",
            "imageReference": "nginx:1.25", "imageId": "sha256:00", "repoDigests": [],
            "repoTags": [], "architecture": null, "os": null, "variant": null,
            "imageCreated": null, "labels": {}, "options": {}, "watched": true, "error": null
        })
        .to_string()
    }

    fn message(session: &str, sequence: u64, change: Change) -> AgentMessage {
        AgentMessage {
            agent: "edge".into(),
            session: session.into(),
            sequence,
            change: Some(change),
        }
    }

    fn listed(hub: &AgentHub) -> Result<Vec<String>, String> {
        let listings = futures::executor::block_on(hub.list(&[]));
        let listing = listings.into_iter().find(|l| l.watcher == "edge");
        listing
            .map(|l| {
                l.containers
                    .map(|cs| cs.into_iter().map(|c| c.id).collect())
            })
            .unwrap_or_else(|| Err("not listed".into()))
    }

    #[test]
    fn snapshots_deltas_resends_and_disconnects() {
        let hub = AgentHub::new(["local".to_owned()]);
        assert_eq!(
            hub.connect("local").map_err(|s| s.code()).err(),
            Some(tonic::Code::InvalidArgument)
        );
        let connection = hub.connect("edge").expect("connects");
        let snapshot = Change::Snapshot(AgentSnapshot {
            containers: vec![AgentContainer {
                json: container_json("a"),
            }],
        });
        assert_eq!(
            hub.apply("edge", message("s1", 1, snapshot)).ok(),
            Some(Applied::Snapshot)
        );
        let upsert = || {
            Change::Upsert(AgentContainer {
                json: container_json("b"),
            })
        };
        assert_eq!(
            hub.apply("edge", message("s1", 2, upsert())).ok(),
            Some(Applied::Upsert("b".into()))
        );
        // A resend of what was applied is only acknowledged.
        assert_eq!(
            hub.apply("edge", message("s1", 2, upsert())).ok(),
            Some(Applied::Duplicate)
        );
        assert_eq!(listed(&hub), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(
            hub.apply("edge", message("s1", 3, Change::Removed("a".into())))
                .ok(),
            Some(Applied::Removed("a".into()))
        );
        let garbage = Change::Upsert(AgentContainer { json: "{".into() });
        assert!(hub.apply("edge", message("s1", 4, garbage)).is_err());
        // An old connection ending does not disconnect a newer one.
        let newer = hub.connect("edge").expect("reconnects");
        assert!(!hub.disconnect("edge", connection));
        assert!(hub.is_connected("edge"));
        assert!(hub.disconnect("edge", newer));
        assert!(listed(&hub).is_err_and(|e| e.contains("disconnected")));
        // A restarted agent (new session) counts from one again.
        assert_eq!(
            hub.apply("edge", message("s2", 1, Change::Removed("b".into())))
                .ok(),
            Some(Applied::Removed("b".into()))
        );
    }
}
