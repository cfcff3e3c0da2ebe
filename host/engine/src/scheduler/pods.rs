//! Following a Kubernetes watcher's Pods: after the watch's first list
//! (which the start-up and scheduled scans cover), each change — a Pod
//! added, modified or deleted, or a relist after `410 Gone` — schedules one
//! debounced rescan of that watcher alone.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crowsnest_kubernetes::{KubernetesWatcher, KubernetesWatcherConfig, PodChange};
use crowsnest_model::ScanRequest;

use super::Coordinator;
use crate::metrics::ScanOrigin;

/// Follows one Kubernetes watcher's Pods until `cancel` (see the module doc).
/// The watch relists and retries by itself; a client that cannot be built
/// is retried with backoff.
pub async fn follow_pods(
    coordinator: Arc<Coordinator>,
    watcher_name: String,
    watcher_config: KubernetesWatcherConfig,
    debounce: Duration,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    'connect: loop {
        let watcher = match KubernetesWatcher::connect(watcher_name.clone(), watcher_config.clone())
            .await
        {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(watcher = %watcher_name, %error, retry_in_ms = backoff.as_millis() as u64, "cannot watch Pods");
                tokio::select! {
                    () = cancel.cancelled() => break 'connect,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let mut changes = pin!(watcher.watch());
        let mut listed_scopes = HashSet::new();
        let mut due: Option<tokio::time::Instant> = None;
        tracing::info!(watcher = %watcher_name, "watching Pods");
        loop {
            tokio::select! {
                () = cancel.cancelled() => break 'connect,
                change = changes.next() => match change {
                    Some(Ok(PodChange::Relisted { scope, .. })) if listed_scopes.insert(scope.clone()) => {
                        tracing::debug!(watcher = %watcher_name, %scope, "Pods listed");
                    }
                    Some(Ok(_)) => {
                        backoff = Duration::from_millis(500);
                        due.get_or_insert_with(|| tokio::time::Instant::now() + debounce);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(watcher = %watcher_name, %error, "Pod watch failed; it retries");
                    }
                    None => break,
                },
                () = super::events::sleep_until_option(due) => {
                    due = None;
                    let request = ScanRequest {
                        watchers: vec![watcher_name.clone()],
                        ..ScanRequest::default()
                    };
                    if let Err(error) = coordinator.scan(request, ScanOrigin::PodWatch).await {
                        tracing::warn!(watcher = %watcher_name, %error, "rescan after a Pod change");
                    }
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break 'connect,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
