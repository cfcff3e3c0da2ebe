//! The live event bus behind `GET /api/events` and the dashboard: scans
//! started, progressing and finished, updates found, containers changed,
//! trigger deliveries and update actions.
//!
//! Every event gets the next id (ids only grow). The bus keeps the last
//! [`REPLAY_CAPACITY`] events, so a client that reconnects with the id it saw
//! last (`Last-Event-ID`) is sent what it missed, as long as that is still in
//! the window; live events go through a tokio broadcast channel. Publishing
//! holds the window's lock while sending, so a subscriber never sees an event
//! both in its backlog and live, nor out of order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for replay after a reconnection.
pub const REPLAY_CAPACITY: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A scan began (`data`: scan number, origin, what it covers).
    ScanStarted,
    /// A scan checked another repository (`data`: scan number, done, total).
    ScanProgress,
    /// A scan ended (`data`: scan number, counts, duration).
    ScanFinished,
    /// A check found an update (`data`: the container's id, name, image, tags).
    UpdateFound,
    /// One container's stored state changed (`data`: the container object).
    ContainerUpdated,
    /// A trigger delivered (`data`: trigger, container ids, attempts).
    TriggerDelivered,
    /// A trigger gave up (`data`: trigger, container ids, attempts, error).
    TriggerFailed,
    /// An update action finished with one container (`data`: the outcome).
    ActionDone,
}

impl EventKind {
    /// The SSE `event:` name, e.g. `scan-started`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScanStarted => "scan-started",
            Self::ScanProgress => "scan-progress",
            Self::ScanFinished => "scan-finished",
            Self::UpdateFound => "update-found",
            Self::ContainerUpdated => "container-updated",
            Self::TriggerDelivered => "trigger-delivered",
            Self::TriggerFailed => "trigger-failed",
            Self::ActionDone => "action-done",
        }
    }
}

/// One published event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Position in the stream (1, 2, …; never reused within a process).
    pub id: u64,
    /// What happened.
    pub kind: EventKind,
    /// When it was published (RFC 3339, UTC).
    pub at: String,
    /// Its details.
    pub data: serde_json::Value,
}

struct Window {
    next_id: u64,
    recent: VecDeque<Arc<Event>>,
}

/// The publish side and replay window; share it as `Arc<EventBus>`.
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    window: Mutex<Window>,
    capacity: usize,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::with_capacity(REPLAY_CAPACITY)
    }
}

/// What a subscriber starts from: the events it missed, then the live ones.
pub struct Subscription {
    /// Events after the id asked for, oldest first.
    pub backlog: Vec<Arc<Event>>,
    /// Some events after the id asked for have already left the window.
    pub gap: bool,
    /// Events published from now on.
    pub live: broadcast::Receiver<Arc<Event>>,
    /// The id of the first event `live` can receive.
    pub next_id: u64,
}

impl EventBus {
    /// A bus replaying the last `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            window: Mutex::new(Window {
                next_id: 1,
                recent: VecDeque::with_capacity(capacity),
            }),
            capacity,
        }
    }

    /// Publishes `data` as the next event of `kind`; returns its id.
    pub fn publish(&self, kind: EventKind, data: serde_json::Value) -> u64 {
        let Ok(mut window) = self.window.lock() else {
            return 0;
        };
        let event = Arc::new(Event {
            id: window.next_id,
            kind,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data,
        });
        window.next_id += 1;
        if window.recent.len() == self.capacity {
            window.recent.pop_front();
        }
        window.recent.push_back(Arc::clone(&event));
        // No receiver is not an error: nobody listens right now.
        let _ = self.sender.send(Arc::clone(&event));
        event.id
    }

    /// [`EventBus::publish`] of a serializable value (`null` if it cannot be).
    pub fn publish_value(&self, kind: EventKind, data: &impl Serialize) -> u64 {
        self.publish(kind, serde_json::to_value(data).unwrap_or_default())
    }

    /// Subscribes; with `after`, first the kept events with a larger id. An
    /// id from before a restart (larger than any published) replays the
    /// whole window (a gap unless it still starts at id 1).
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let Ok(window) = self.window.lock() else {
            return Subscription {
                backlog: Vec::new(),
                gap: after.is_some(),
                live: self.sender.subscribe(),
                next_id: 0,
            };
        };
        let live = self.sender.subscribe();
        let Some(after) = after else {
            return Subscription {
                backlog: Vec::new(),
                gap: false,
                live,
                next_id: window.next_id,
            };
        };
        let after = if after >= window.next_id { 0 } else { after };
        let oldest = window.recent.front().map_or(window.next_id, |e| e.id);
        let backlog = window
            .recent
            .iter()
            .filter(|event| event.id > after)
            .cloned()
            .collect();
        Subscription {
            backlog,
            gap: after + 1 < oldest,
            live,
            next_id: window.next_id,
        }
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.window.lock().map_or(0, |window| window.next_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|event| event.id).collect()
    }

    #[tokio::test]
    async fn replay_window_and_live_events_do_not_overlap() {
        let bus = EventBus::with_capacity(3);
        for n in 0..5 {
            bus.publish(EventKind::ScanProgress, serde_json::json!({ "n": n }));
        }
        // Ids 3, 4, 5 are kept; asking after 1 misses id 2.
        let cases: [(Option<u64>, Vec<u64>, bool); 5] = [
            (None, vec![], false),
            (Some(4), vec![5], false),
            (Some(2), vec![3, 4, 5], false),
            (Some(1), vec![3, 4, 5], true),
            // From before a restart: all that is kept, and ids 1 and 2 are gone.
            (Some(99), vec![3, 4, 5], true),
        ];
        for (after, expected, gap) in cases {
            let subscription = bus.subscribe(after);
            assert_eq!(ids(&subscription.backlog), expected, "after {after:?}");
            assert_eq!(subscription.gap, gap, "gap after {after:?}");
        }
        let mut subscription = bus.subscribe(Some(5));
        assert_eq!(
            bus.publish(EventKind::ScanFinished, serde_json::Value::Null),
            6
        );
        let live = subscription.live.recv().await.unwrap();
        assert_eq!((live.id, live.kind.as_str()), (6, "scan-finished"));
    }
}
