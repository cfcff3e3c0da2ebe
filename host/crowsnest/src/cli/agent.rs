//! `crowsnest agent`: runs next to a remote engine, discovers its containers
//! locally (one container listing, one image listing, then the engine's event
//! stream) and streams them to a central `crowsnest serve` over gRPC with the
//! server's token, so no Docker socket is exposed over TCP.
//!
//! Every message carries a sequence number; the server acknowledges each once
//! applied, and a reconnecting agent resends everything not acknowledged, then
//! a fresh snapshot. A refused token ends the agent (exit 1); anything else
//! (server down, engine restarting) is retried with backoff.

use std::collections::VecDeque;
use std::pin::pin;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Status};

use crate::server::grpc::proto::agent_message::Change;
use crate::server::grpc::proto::crowsnest_client::CrowsnestClient;
use crate::server::grpc::proto::{AgentContainer, AgentMessage, AgentSnapshot};
use crowsnest_config::Config;
use crowsnest_docker::{
    watchers_or_default, ContainerAction, DiscoveredContainer, DockerWatcher, WatcherConfig,
};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First wait after a failed connection.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The command line of `crowsnest agent` (each overrides `[agent]`).
#[derive(Debug, Clone, Default)]
pub struct AgentArgs {
    /// gRPC URL of the server.
    pub server: Option<String>,
    /// The server's token.
    pub token: Option<String>,
    /// Watcher name on the server.
    pub name: Option<String>,
}

/// Only containers with this label are sent.
#[derive(Debug, Clone)]
struct LabelFilter {
    key: String,
    value: Option<String>,
}

impl LabelFilter {
    fn parse(text: &str) -> Self {
        match text.split_once('=') {
            Some((key, value)) => Self {
                key: key.trim().to_owned(),
                value: Some(value.trim().to_owned()),
            },
            None => Self {
                key: text.trim().to_owned(),
                value: None,
            },
        }
    }

    fn admits(filter: Option<&Self>, container: &DiscoveredContainer) -> bool {
        filter.is_none_or(|filter| match container.labels.get(&filter.key) {
            Some(value) => filter.value.as_ref().is_none_or(|wanted| wanted == value),
            None => false,
        })
    }
}

/// Everything the agent runs with, resolved from flags and `[agent]`.
struct Settings {
    server: String,
    token: Option<String>,
    name: String,
    filter: Option<LabelFilter>,
}

/// Why a connection to the server ended.
enum Ended {
    /// The server refused the agent for good (bad token, bad name).
    Refused(Status),
    /// Worth retrying (server down or restarting, engine unreachable).
    Transient(String),
}

/// Runs the agent until SIGTERM/SIGINT (exit 0) or a refusal (exit 1).
pub async fn run(config: &Config, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let agent = &config.agent;
    let Some(server) = args.server.or_else(|| agent.server.clone()) else {
        eprintln!("error: no server: pass --server URL or set `[agent] server`");
        return Ok(ExitCode::from(2));
    };
    let (watcher_name, watcher_config) = match local_watcher(config) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let settings = Settings {
        server,
        token: args.token.or_else(|| agent.token.clone()),
        name: args
            .name
            .or_else(|| agent.name.clone())
            .unwrap_or_else(host_name),
        filter: agent.label.as_deref().map(LabelFilter::parse),
    };
    let engine = DockerWatcher::connect(watcher_name.clone(), watcher_config)
        .await
        .with_context(|| format!("cannot connect to the local engine `{watcher_name}`"))?;
    let (changes_tx, changes) = mpsc::unbounded_channel();
    let follower = tokio::spawn(follow_engine(
        engine.clone(),
        settings.filter.clone(),
        changes_tx,
    ));
    let outcome = tokio::select! {
        outcome = stream_forever(&settings, &engine, changes) => outcome,
        signal = super::serve::wait_for_signal() => signal.map(|()| ExitCode::SUCCESS),
    };
    follower.abort();
    outcome
}

/// The `[watchers.NAME]` the agent reads: `[agent] watcher`, else the only one.
fn local_watcher(config: &Config) -> Result<(String, WatcherConfig), String> {
    let watchers = watchers_or_default(&config.watchers);
    match &config.agent.watcher {
        Some(name) => watchers
            .get(name)
            .map(|found| (name.clone(), found.clone()))
            .ok_or_else(|| format!("[agent] watcher: no `[watchers.{name}]`")),
        None if watchers.len() == 1 => watchers
            .into_iter()
            .next()
            .ok_or_else(|| "no watcher".to_owned()),
        None => {
            Err("several watchers configured: name the local one with `[agent] watcher`".into())
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

/// Connects, streams, and reconnects with backoff until refused.
async fn stream_forever(
    settings: &Settings,
    engine: &DockerWatcher,
    mut changes: mpsc::UnboundedReceiver<Change>,
) -> anyhow::Result<ExitCode> {
    let session = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let mut outbox = Outbox::new(settings.name.clone(), session);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended =
            connect_and_stream(settings, engine, &mut outbox, &mut changes, &mut backoff).await;
        match ended {
            Ended::Refused(status) => {
                eprintln!(
                    "error: the server at {} refused agent `{}`: {} ({:?})",
                    settings.server,
                    settings.name,
                    status.message(),
                    status.code()
                );
                return Ok(ExitCode::from(1));
            }
            Ended::Transient(why) => {
                tracing::warn!(server = %settings.server, retry_in_ms = backoff.as_millis() as u64, "agent connection lost: {why}");
                eprintln!("warning: agent connection lost ({why}); retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The messages sent and not yet acknowledged, in order.
struct Outbox {
    agent: String,
    session: String,
    next_sequence: u64,
    unacknowledged: VecDeque<AgentMessage>,
}

impl Outbox {
    fn new(agent: String, session: String) -> Self {
        Self {
            agent,
            session,
            next_sequence: 1,
            unacknowledged: VecDeque::new(),
        }
    }

    /// Numbers `change`, keeps it until acknowledged, and returns the message.
    fn push(&mut self, change: Change) -> AgentMessage {
        let message = AgentMessage {
            agent: self.agent.clone(),
            session: self.session.clone(),
            sequence: self.next_sequence,
            change: Some(change),
        };
        self.next_sequence += 1;
        self.unacknowledged.push_back(message.clone());
        message
    }

    fn acknowledge(&mut self, sequence: u64) {
        while self
            .unacknowledged
            .front()
            .is_some_and(|message| message.sequence <= sequence)
        {
            self.unacknowledged.pop_front();
        }
    }
}

fn classify(status: Status) -> Ended {
    match status.code() {
        Code::Unauthenticated
        | Code::PermissionDenied
        | Code::InvalidArgument
        | Code::Unimplemented => Ended::Refused(status),
        _ => Ended::Transient(format!("{}: {}", status.code(), status.message())),
    }
}

/// One connection: resend what was not acknowledged, send a fresh snapshot,
/// then every change as it happens, until the connection ends.
async fn connect_and_stream(
    settings: &Settings,
    engine: &DockerWatcher,
    outbox: &mut Outbox,
    changes: &mut mpsc::UnboundedReceiver<Change>,
    backoff: &mut Duration,
) -> Ended {
    let endpoint = match Endpoint::from_shared(settings.server.clone()) {
        Ok(endpoint) => endpoint.connect_timeout(Duration::from_secs(5)),
        Err(error) => {
            return Ended::Refused(Status::invalid_argument(format!(
                "`{}` is not a server URL: {error}",
                settings.server
            )))
        }
    };
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => return Ended::Transient(format!("cannot connect: {error}")),
    };
    let (sender, outbound) = mpsc::unbounded_channel::<AgentMessage>();
    let mut request = Request::new(tokio_stream::wrappers::UnboundedReceiverStream::new(
        outbound,
    ));
    if let Some(token) = &settings.token {
        match format!("Bearer {token}").parse() {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => {
                return Ended::Refused(Status::invalid_argument(
                    "the token has characters a header cannot carry",
                ))
            }
        }
    }
    let mut acks = match CrowsnestClient::new(channel).agent_stream(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return classify(status),
    };
    // Changes seen while disconnected join the unacknowledged ones, in order.
    while let Ok(change) = changes.try_recv() {
        outbox.push(change);
    }
    for message in &outbox.unacknowledged {
        let _ = sender.send(message.clone());
    }
    let snapshot = match engine.discover().await {
        Ok(containers) => snapshot_of(containers, settings.filter.as_ref()),
        Err(error) => return Ended::Transient(format!("cannot list the local engine: {error}")),
    };
    let _ = sender.send(outbox.push(snapshot));
    tracing::info!(server = %settings.server, agent = %settings.name, "agent connected");
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Some(change) => { let _ = sender.send(outbox.push(change)); }
                None => return Ended::Transient("the engine's event follower stopped".into()),
            },
            ack = acks.message() => match ack {
                Ok(Some(ack)) => {
                    outbox.acknowledge(ack.sequence);
                    *backoff = FIRST_BACKOFF;
                }
                Ok(None) => return Ended::Transient("the server closed the stream".into()),
                Err(status) => return classify(status),
            },
        }
    }
}

fn wire(container: &DiscoveredContainer) -> AgentContainer {
    AgentContainer {
        // A derived Serialize of plain data cannot fail.
        json: serde_json::to_string(container).unwrap_or_default(),
    }
}

fn snapshot_of(containers: Vec<DiscoveredContainer>, filter: Option<&LabelFilter>) -> Change {
    Change::Snapshot(AgentSnapshot {
        containers: containers
            .iter()
            .filter(|container| LabelFilter::admits(filter, container))
            .map(wire)
            .collect(),
    })
}

/// Follows the engine's events for ever (reconnecting, replaying from the
/// last event), turning each into an upsert or a removal.
async fn follow_engine(
    engine: DockerWatcher,
    filter: Option<LabelFilter>,
    changes: mpsc::UnboundedSender<Change>,
) {
    let mut since: Option<SystemTime> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut events = pin!(engine.container_events(since));
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    backoff = FIRST_BACKOFF;
                    since = Some(SystemTime::now());
                    let change =
                        describe(&engine, filter.as_ref(), event.action, event.container_id).await;
                    if let Some(change) = change {
                        if changes.send(change).is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "engine event stream broke; reconnecting");
                    break;
                }
            }
        }
        since = since.or_else(|| Some(SystemTime::now()));
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What an event means for the server: the container as discovered now, or
/// its removal (destroyed, or no longer listed or labelled). `None` when the
/// engine cannot say now (the next snapshot will).
async fn describe(
    engine: &DockerWatcher,
    filter: Option<&LabelFilter>,
    action: ContainerAction,
    id: String,
) -> Option<Change> {
    if action == ContainerAction::Destroy {
        return Some(Change::Removed(id));
    }
    match engine.discover_one(&id).await {
        Ok(found) if engine.lists(&found) && LabelFilter::admits(filter, &found) => {
            Some(Change::Upsert(wire(&found)))
        }
        Ok(_) => Some(Change::Removed(id)),
        Err(error) if error.is_not_found() => Some(Change::Removed(id)),
        Err(error) => {
            tracing::warn!(container = %id, %error, "cannot inspect a container after its event");
            None
        }
    }
}
