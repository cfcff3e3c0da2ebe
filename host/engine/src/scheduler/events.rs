//! Following each engine's Docker events: a container's events are
//! debounced, then that container alone is refreshed (or forgotten).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crowsnest_docker::{ContainerAction, DockerWatcher, WatcherConfig};

use super::Coordinator;

/// Container refreshes run at once per watcher on Docker events.
const EVENT_REFRESH_CONCURRENCY: usize = 4;

/// Follows one watcher's Docker events until `cancel`: each container's events
/// are debounced, then the container is refreshed (or forgotten when destroyed).
/// A broken stream is reconnected with backoff, replaying events since the break.
pub async fn follow_events(
    coordinator: Arc<Coordinator>,
    watcher_name: String,
    watcher_config: WatcherConfig,
    debounce: Duration,
    cancel: CancellationToken,
) {
    let limiter = Arc::new(Semaphore::new(EVENT_REFRESH_CONCURRENCY));
    let tasks = TaskTracker::new();
    let mut since: Option<SystemTime> = None;
    let mut backoff = Duration::from_millis(500);
    'connect: loop {
        let watcher = match DockerWatcher::connect(watcher_name.clone(), watcher_config.clone())
            .await
        {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(watcher = %watcher_name, %error, retry_in_ms = backoff.as_millis() as u64, "cannot follow Docker events");
                tokio::select! {
                    () = cancel.cancelled() => break 'connect,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let mut events = pin!(watcher.container_events(since));
        let mut due: HashMap<String, (ContainerAction, tokio::time::Instant)> = HashMap::new();
        tracing::info!(watcher = %watcher_name, "following Docker events");
        loop {
            let next_deadline = due.values().map(|(_, deadline)| *deadline).min();
            tokio::select! {
                () = cancel.cancelled() => break 'connect,
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        backoff = Duration::from_millis(500);
                        since = Some(SystemTime::now());
                        coordinator.metrics().record_event(event.action.as_str());
                        tracing::debug!(watcher = %watcher_name, container = %event.container_id, action = event.action.as_str(), "Docker event");
                        due.insert(event.container_id, (event.action, tokio::time::Instant::now() + debounce));
                    }
                    Some(Err(error)) => {
                        tracing::warn!(watcher = %watcher_name, %error, "Docker event stream broke; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!(watcher = %watcher_name, "Docker event stream ended; reconnecting");
                        break;
                    }
                },
                () = sleep_until_option(next_deadline) => {
                    let now = tokio::time::Instant::now();
                    let ready: Vec<String> = due
                        .iter()
                        .filter(|(_, (_, deadline))| *deadline <= now)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for container_id in ready {
                        let Some((action, _)) = due.remove(&container_id) else { continue };
                        let coordinator = Arc::clone(&coordinator);
                        let limiter = Arc::clone(&limiter);
                        let watcher = watcher_name.clone();
                        tasks.spawn(async move {
                            let Ok(_permit) = limiter.acquire_owned().await else { return };
                            apply_event(&coordinator, &watcher, &container_id, action).await;
                        });
                    }
                }
            }
        }
        // Process what was pending before the break rather than losing it.
        for (container_id, (action, _)) in due.drain() {
            apply_event(&coordinator, &watcher_name, &container_id, action).await;
        }
        since = since.or_else(|| Some(SystemTime::now()));
        tokio::select! {
            () = cancel.cancelled() => break 'connect,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    tasks.close();
    tasks.wait().await;
}

/// Sleeps until `deadline`, or forever without one.
pub(super) async fn sleep_until_option(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn apply_event(
    coordinator: &Coordinator,
    watcher: &str,
    container_id: &str,
    action: ContainerAction,
) {
    let outcome = if action == ContainerAction::Destroy {
        coordinator.forget(container_id).await.map(|()| "forgotten")
    } else {
        coordinator
            .refresh(watcher, container_id)
            .await
            .map(|found| {
                if found.is_some() {
                    "refreshed"
                } else {
                    "not watched"
                }
            })
    };
    match outcome {
        Ok(what) => {
            tracing::debug!(%watcher, container = %container_id, action = action.as_str(), what, "event applied")
        }
        Err(error) => {
            tracing::warn!(%watcher, container = %container_id, action = action.as_str(), %error, "event could not be applied")
        }
    }
}
