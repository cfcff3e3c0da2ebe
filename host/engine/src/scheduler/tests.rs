use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use crowsnest_docker::WatcherConfig;
use crowsnest_store::Store;

use super::*;
use crate::metrics::{Metrics, ScanOrigin};
use crate::triggers::TriggerDispatcher;

/// Counts scans and holds each one open until released, to observe joining.
struct GatedEngine {
    scans: AtomicUsize,
    gate: tokio::sync::Notify,
}

impl ScanEngine for GatedEngine {
    fn scan(
        &self,
        request: ScanRequest,
        _progress: Option<crate::scan::Progress>,
    ) -> BoxFuture<'_, ScanReport> {
        Box::pin(async move {
            let number = self.scans.fetch_add(1, Ordering::SeqCst) + 1;
            self.gate.notified().await;
            ScanReport {
                stats: crowsnest_model::ScanStats {
                    containers: number * 100 + request.images.len(),
                    ..Default::default()
                },
                ..Default::default()
            }
        })
    }

    fn refresh_container<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<ContainerObject>, String>> {
        Box::pin(async { Ok(None) })
    }

    fn forget_container<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

async fn coordinator(engine: Arc<GatedEngine>) -> Arc<Coordinator> {
    let store = Store::open_in_memory().await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let triggers = Arc::new(TriggerDispatcher::new(
        Vec::new(),
        store,
        Arc::clone(&metrics),
    ));
    Arc::new(Coordinator::new(engine, triggers, metrics))
}

#[tokio::test]
async fn equal_requests_join_one_scan_and_different_ones_do_not() {
    let engine = Arc::new(GatedEngine {
        scans: AtomicUsize::new(0),
        gate: tokio::sync::Notify::new(),
    });
    let coordinator = coordinator(Arc::clone(&engine)).await;
    let mut callers = Vec::new();
    for _ in 0..10 {
        let coordinator = Arc::clone(&coordinator);
        callers.push(tokio::spawn(async move {
            coordinator
                .scan(ScanRequest::default(), ScanOrigin::Http)
                .await
        }));
    }
    let images = ScanRequest {
        images: vec!["b".into(), "a".into()],
        ..ScanRequest::default()
    };
    let coordinator_for_images = Arc::clone(&coordinator);
    let image_scan =
        tokio::spawn(async move { coordinator_for_images.scan(images, ScanOrigin::Http).await });
    while engine.scans.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        engine.scans.load(Ordering::SeqCst),
        2,
        "10 equal requests share one scan"
    );
    engine.gate.notify_waiters();
    let answers: Vec<usize> = futures::future::join_all(callers)
        .await
        .into_iter()
        .map(|answer| answer.unwrap().unwrap().stats.containers)
        .collect();
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
    assert_eq!(image_scan.await.unwrap().unwrap().stats.containers % 100, 2);
    assert_eq!(coordinator.started_scans(), 2);
    // Once finished, a new request starts a new scan.
    let coordinator_again = Arc::clone(&coordinator);
    let again = tokio::spawn(async move {
        coordinator_again
            .scan(ScanRequest::default(), ScanOrigin::Http)
            .await
    });
    while engine.scans.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await;
    }
    engine.gate.notify_waiters();
    again.await.unwrap().unwrap();
    assert_eq!(coordinator.started_scans(), 3);
}

#[test]
fn schedules_accept_optional_seconds_and_name_bad_keys() {
    let hourly = Schedule::parse(DEFAULT_SCHEDULE).unwrap();
    let base = chrono::Local
        .with_ymd_and_hms(2025, 6, 3, 10, 15, 0)
        .unwrap();
    assert_eq!(
        hourly.next_after(base).unwrap(),
        chrono::Local
            .with_ymd_and_hms(2025, 6, 3, 11, 0, 0)
            .unwrap()
    );
    let every_ten_seconds = Schedule::parse("*/10 * * * * *").unwrap();
    assert_eq!(
        every_ten_seconds.next_after(base).unwrap(),
        chrono::Local
            .with_ymd_and_hms(2025, 6, 3, 10, 15, 10)
            .unwrap()
    );
    let watchers = BTreeMap::from([
        (
            "a".to_owned(),
            WatcherConfig {
                jitter: Some(5),
                ..Default::default()
            },
        ),
        (
            "b".to_owned(),
            WatcherConfig {
                jitter: Some(9),
                ..Default::default()
            },
        ),
        (
            "c".to_owned(),
            WatcherConfig {
                schedule: Some("*/5 * * * *".into()),
                ..Default::default()
            },
        ),
    ]);
    let plan = ScanPlan::new(&watchers).unwrap();
    assert_eq!(plan.timers.len(), 2);
    let shared = plan
        .timers
        .iter()
        .find(|(_, _, names)| names.len() == 2)
        .unwrap();
    assert_eq!(shared.1, Duration::from_secs(9));
    // A timer scans only its own watchers…
    assert_eq!(plan.request_for(&shared.2).watchers, shared.2);
    // …and one that has every watcher is a plain full scan.
    let single = ScanPlan::new(&BTreeMap::from([(
        "only".to_owned(),
        WatcherConfig::default(),
    )]))
    .unwrap();
    assert!(single.request_for(&single.timers[0].2).watchers.is_empty());
    let bad = BTreeMap::from([(
        "x".to_owned(),
        WatcherConfig {
            schedule: Some("every hour".into()),
            ..Default::default()
        },
    )]);
    assert!(ScanPlan::new(&bad)
        .unwrap_err()
        .to_string()
        .starts_with("watchers.x.schedule"));
}
