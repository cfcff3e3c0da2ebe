//! `GET /api/events`: the engine's event bus as Server-Sent Events.
//!
//! Each SSE message has `id:` (the event id), `event:` (its kind, e.g.
//! `scan-finished`) and `data:` (the event as JSON: id, kind, at, data). A
//! client reconnecting with `Last-Event-ID` (header, or `lastEventId` in the
//! query for clients that cannot set headers) first gets the events it
//! missed, as long as they are still in the bus's replay window; when some
//! are gone, a `gap` message (no id) says so and the client should reload
//! its state. The stream ends when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::http::{ApiError, ErrorBody};
use super::AppState;
use crowsnest_engine::events::{Event, EventBus};

/// Query of `GET /api/events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (same as the `Last-Event-ID` header, which wins).
    pub last_event_id: Option<u64>,
}

/// The id to resume after: the `Last-Event-ID` header, else the query.
fn resume_after(headers: &HeaderMap, query: &EventsQuery) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(query.last_event_id);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(query.last_event_id);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("Last-Event-ID must be an event id (a whole number), not `{text}`"),
        )
    })
}

/// A subscriber's position: what it still has to be sent, then the live feed.
struct Follower {
    bus: Arc<EventBus>,
    backlog: VecDeque<Arc<Event>>,
    live: Receiver<Arc<Event>>,
    last_sent: u64,
}

fn sse_message(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.id.to_string())
        .event(event.kind.as_str())
        .data(serde_json::to_string(event).unwrap_or_default())
}

impl Follower {
    /// The next event after `last_sent`; `None` when the bus is gone.
    async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.id > self.last_sent {
                    self.last_sent = event.id;
                    return Some(event);
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.id > self.last_sent => {
                    self.last_sent = event.id;
                    return Some(event);
                }
                Ok(_) => {}
                // Too slow for the live channel: catch up from the replay window.
                Err(RecvError::Lagged(_)) => {
                    let subscription = self.bus.subscribe(Some(self.last_sent));
                    self.backlog = subscription.backlog.into();
                    self.live = subscription.live;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The SSE messages for a subscriber resuming after `after`.
fn follow(bus: Arc<EventBus>, after: Option<u64>) -> impl Stream<Item = SseEvent> {
    let subscription = bus.subscribe(after);
    let gap = subscription.gap.then(|| {
        SseEvent::default().event("gap").data(
            serde_json::json!({
                "after": after,
                "message": "some events after this id are no longer kept; reload the state",
            })
            .to_string(),
        )
    });
    let follower = Follower {
        last_sent: subscription.backlog.first().map_or_else(
            || {
                after
                    .unwrap_or(0)
                    .min(subscription.next_id.saturating_sub(1))
            },
            |first| first.id.saturating_sub(1),
        ),
        backlog: subscription.backlog.into(),
        live: subscription.live,
        bus,
    };
    let events = stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((sse_message(&event), follower))
    });
    stream::iter(gap).chain(events)
}

/// Live events (Server-Sent Events): scans started, progressing and
/// finished, updates found, containers changed, trigger deliveries and
/// update actions; resumable with `Last-Event-ID`.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad Last-Event-ID or query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let after = resume_after(&headers, &query)?;
    let stream = follow(Arc::clone(state.coordinator.events()), after)
        .map(Ok::<_, Infallible>)
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
