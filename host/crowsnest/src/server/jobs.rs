//! Batch scans as jobs: `POST /api/scan` in either body shape — crowsnest's
//! (`{"images": […]}` / `{"all": true}`) or Huawei HSS's batch-scan shape
//! (`{"image_info_list": [{namespace, image_name, image_version}], "operate_all": …}`)
//! — and, with `?async=true`, a `202` with a job whose per-image status
//! (`unscan`, `scanning`, `success`, `failed` with the error) is read at
//! `GET /api/scans/{id}`. Finished jobs are kept for [`JOB_RETENTION`], and
//! at most [`MAX_JOBS`] jobs are kept at all (the oldest finished go first).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crowsnest_engine::metrics::ScanOrigin;
use crowsnest_model::{ContainerObject, ScanRequest};

use super::AppState;

/// How long a finished job stays readable.
pub const JOB_RETENTION: Duration = Duration::from_secs(3600);
/// Most jobs kept at once.
pub const MAX_JOBS: usize = 256;

/// One image of the HSS batch-scan body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HssImageInfo {
    /// Organisation (repository path before the image name); may be empty.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Image name.
    pub image_name: String,
    /// Image version (tag); absent = any tag.
    #[serde(default)]
    pub image_version: Option<String>,
}

/// The HSS batch-scan body (`POST /v5/{project_id}/image/batch-scan`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HssScanBody {
    /// `private_image` or `shared_image` (accepted; crowsnest scans what its watchers run).
    #[serde(default)]
    pub image_type: Option<String>,
    /// Images to scan; required unless `operate_all` is true.
    #[serde(default)]
    pub image_info_list: Vec<HssImageInfo>,
    /// Scan every image.
    #[serde(default)]
    pub operate_all: bool,
}

/// What a batch scan covers, from either body shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchTarget {
    /// Every watched container.
    All,
    /// These image patterns (HSS entries kept alongside).
    Images(Vec<ImageEntry>),
}

/// One requested image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// The image pattern scanned, e.g. `team/app:1.0`.
    pub image: String,
    /// HSS `namespace`, when the HSS shape was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// HSS `image_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// HSS `image_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
}

/// A body field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct BodyError {
    /// The JSON path, e.g. `image_info_list[1].image_name`.
    pub field: String,
    /// Why.
    pub why: String,
}

fn body_error(field: impl Into<String>, why: impl Into<String>) -> BodyError {
    BodyError {
        field: field.into(),
        why: why.into(),
    }
}

/// Deserializes `value` as `T`, naming the field at fault.
fn parse_shape<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, BodyError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        body_error(field, error.into_inner().to_string())
    })
}

/// A read `POST /api/scan` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBody {
    /// What to scan.
    pub target: BatchTarget,
    /// The HSS shape was used (a synchronous answer is then the finished job).
    pub hss: bool,
}

impl BatchTarget {
    /// The scan request covering the whole target.
    pub fn request(&self) -> ScanRequest {
        match self {
            Self::All => ScanRequest::default(),
            Self::Images(entries) => ScanRequest {
                images: entries.iter().map(|entry| entry.image.clone()).collect(),
                ..ScanRequest::default()
            },
        }
    }
}

/// Reads a `POST /api/scan` body of either shape.
pub fn parse_body(body: &[u8]) -> Result<ParsedBody, BodyError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| body_error("body", format!("invalid JSON: {error}")))?;
    let Some(object) = value.as_object() else {
        return Err(body_error("body", "must be a JSON object"));
    };
    let hss = ["image_info_list", "operate_all", "image_type"]
        .iter()
        .any(|key| object.contains_key(*key));
    let target = if hss {
        hss_target(parse_shape(value)?)?
    } else {
        native_target(parse_shape(value)?)?
    };
    Ok(ParsedBody { target, hss })
}

fn native_target(body: super::http::ScanBody) -> Result<BatchTarget, BodyError> {
    let request = body.request().map_err(|why| body_error("images", why))?;
    if request.images.is_empty() {
        return Ok(BatchTarget::All);
    }
    Ok(BatchTarget::Images(
        request
            .images
            .into_iter()
            .map(|image| ImageEntry {
                image,
                namespace: None,
                image_name: None,
                image_version: None,
            })
            .collect(),
    ))
}

fn hss_target(body: HssScanBody) -> Result<BatchTarget, BodyError> {
    match (body.operate_all, body.image_info_list.is_empty()) {
        (true, true) => return Ok(BatchTarget::All),
        (true, false) => {
            return Err(body_error(
                "operate_all",
                "give either `image_info_list` or `\"operate_all\": true`, not both",
            ))
        }
        (false, true) => {
            return Err(body_error(
                "image_info_list",
                "required (a non-empty array) unless `operate_all` is true",
            ))
        }
        (false, false) => {}
    }
    let mut entries = Vec::with_capacity(body.image_info_list.len());
    for (index, info) in body.image_info_list.into_iter().enumerate() {
        let name = info.image_name.trim();
        let field = |key: &str| format!("image_info_list[{index}].{key}");
        if name.is_empty() {
            return Err(body_error(field("image_name"), "must not be empty"));
        }
        let namespace = info
            .namespace
            .as_deref()
            .map(|n| n.trim().trim_matches('/'))
            .filter(|n| !n.is_empty());
        let version = info
            .image_version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(bad) = [("image_name", Some(name)), ("image_version", version)]
            .into_iter()
            .find(|(_, value)| value.is_some_and(|v| v.contains([':', '@', ' '])))
        {
            return Err(body_error(
                field(bad.0),
                "must not contain `:`, `@` or spaces",
            ));
        }
        let mut image = namespace.map_or_else(|| name.to_owned(), |n| format!("{n}/{name}"));
        if let Some(version) = version {
            image = format!("{image}:{version}");
        }
        entries.push(ImageEntry {
            image,
            namespace: namespace.map(str::to_owned),
            image_name: Some(name.to_owned()),
            image_version: version.map(str::to_owned),
        });
    }
    Ok(BatchTarget::Images(entries))
}

/// Where one image of a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    /// Not scanned yet.
    Unscan,
    /// Being scanned.
    Scanning,
    /// Scanned: every container running it was checked.
    Success,
    /// No watched container runs it, or a check failed (see `error`).
    Failed,
}

/// One image of a job and how its scan went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageScan {
    /// What was asked for.
    #[serde(flatten)]
    pub entry: ImageEntry,
    /// Where it is.
    pub status: ImageStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Ids of the containers checked for it.
    pub containers: Vec<String>,
    /// How many of them have an update.
    pub updates: usize,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Images are being scanned.
    Running,
    /// Every image has its final status.
    Finished,
}

/// A batch scan job (`GET /api/scans/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanJob {
    /// Job id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// Every image was asked for (`all` / `operate_all`); the images are
    /// listed once the scan found them.
    pub operate_all: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Per image.
    pub images: Vec<ImageScan>,
}

struct KeptJob {
    job: ScanJob,
    finished: Option<Instant>,
}

/// The jobs table.
#[derive(Default)]
pub struct ScanJobs {
    jobs: Mutex<HashMap<String, KeptJob>>,
    counter: AtomicU64,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ScanJobs {
    /// Creates a job for `target`, dropping expired and excess jobs.
    fn create(&self, target: &BatchTarget) -> ScanJob {
        let number = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let images = match target {
            BatchTarget::All => Vec::new(),
            BatchTarget::Images(entries) => entries
                .iter()
                .map(|entry| ImageScan {
                    entry: entry.clone(),
                    status: ImageStatus::Unscan,
                    error: None,
                    containers: Vec::new(),
                    updates: 0,
                })
                .collect(),
        };
        let job = ScanJob {
            id: format!("scan-{number}-{:08x}", rand::random::<u32>()),
            state: JobState::Running,
            operate_all: matches!(target, BatchTarget::All),
            created_at: now(),
            finished_at: None,
            images,
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.retain(|_, kept| kept.finished.is_none_or(|at| at.elapsed() < JOB_RETENTION));
            while jobs.len() >= MAX_JOBS {
                let oldest = jobs
                    .iter()
                    .filter(|(_, kept)| kept.finished.is_some())
                    .min_by_key(|(_, kept)| kept.finished)
                    .map(|(id, _)| id.clone());
                match oldest {
                    Some(id) => jobs.remove(&id),
                    None => break,
                };
            }
            jobs.insert(
                job.id.clone(),
                KeptJob {
                    job: job.clone(),
                    finished: None,
                },
            );
        }
        job
    }

    /// The job `id`, unless unknown or expired.
    pub fn get(&self, id: &str) -> Option<ScanJob> {
        let jobs = self.jobs.lock().ok()?;
        jobs.get(id)
            .filter(|kept| kept.finished.is_none_or(|at| at.elapsed() < JOB_RETENTION))
            .map(|kept| kept.job.clone())
    }

    fn edit(&self, id: &str, change: impl FnOnce(&mut ScanJob)) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(kept) = jobs.get_mut(id) {
                change(&mut kept.job);
                if kept.job.state == JobState::Finished && kept.finished.is_none() {
                    kept.finished = Some(Instant::now());
                }
            }
        }
    }
}

/// How the containers a scan checked for one image went.
fn settle(scan: &mut ImageScan, containers: &[&ContainerObject]) {
    scan.containers = containers.iter().map(|c| c.id.clone()).collect();
    scan.updates = containers.iter().filter(|c| c.update_available).count();
    let errors: Vec<String> = containers
        .iter()
        .filter_map(|c| {
            c.error
                .as_ref()
                .map(|e| format!("{}: {}", c.name, e.message))
        })
        .collect();
    (scan.status, scan.error) = if containers.is_empty() {
        (
            ImageStatus::Failed,
            Some(format!("no watched container runs `{}`", scan.entry.image)),
        )
    } else if errors.is_empty() {
        (ImageStatus::Success, None)
    } else {
        (ImageStatus::Failed, Some(errors.join("; ")))
    };
}

/// Creates a job for `target` and runs it in the background; returns the
/// job as created.
pub fn start(state: &Arc<AppState>, target: BatchTarget) -> ScanJob {
    let job = state.jobs.create(&target);
    let id = job.id.clone();
    let state = Arc::clone(state);
    tokio::spawn(async move { run(&state, &id, target).await });
    job
}

/// Creates a job for `target`, runs it, and returns it finished.
pub async fn run_now(state: &Arc<AppState>, target: BatchTarget) -> ScanJob {
    let job = state.jobs.create(&target);
    run(state, &job.id, target).await;
    state.jobs.get(&job.id).unwrap_or(job)
}

async fn run(state: &Arc<AppState>, id: &str, target: BatchTarget) {
    match target {
        BatchTarget::All => {
            let outcome = state
                .coordinator
                .scan(ScanRequest::default(), ScanOrigin::Http)
                .await;
            state.jobs.edit(id, |job| {
                match &outcome {
                    Ok(report) => {
                        let mut by_image: Vec<(String, Vec<&ContainerObject>)> = Vec::new();
                        for container in &report.containers {
                            let image = &container.image.reference;
                            match by_image.iter_mut().find(|(seen, _)| seen == image) {
                                Some((_, list)) => list.push(container),
                                None => by_image.push((image.clone(), vec![container])),
                            }
                        }
                        job.images = by_image
                            .into_iter()
                            .map(|(image, containers)| {
                                let mut scan = ImageScan {
                                    entry: ImageEntry {
                                        image,
                                        namespace: None,
                                        image_name: None,
                                        image_version: None,
                                    },
                                    status: ImageStatus::Scanning,
                                    error: None,
                                    containers: Vec::new(),
                                    updates: 0,
                                };
                                settle(&mut scan, &containers);
                                scan
                            })
                            .collect();
                    }
                    Err(error) => job.images.push(ImageScan {
                        entry: ImageEntry {
                            image: "*".into(),
                            namespace: None,
                            image_name: None,
                            image_version: None,
                        },
                        status: ImageStatus::Failed,
                        error: Some(error.to_string()),
                        containers: Vec::new(),
                        updates: 0,
                    }),
                }
                job.state = JobState::Finished;
                job.finished_at = Some(now());
            });
        }
        BatchTarget::Images(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                state.jobs.edit(id, |job| {
                    if let Some(scan) = job.images.get_mut(index) {
                        scan.status = ImageStatus::Scanning;
                    }
                });
                let request = ScanRequest {
                    images: vec![entry.image.clone()],
                    ..ScanRequest::default()
                };
                let outcome = state.coordinator.scan(request, ScanOrigin::Http).await;
                state.jobs.edit(id, |job| {
                    let Some(scan) = job.images.get_mut(index) else {
                        return;
                    };
                    match &outcome {
                        Ok(report) => {
                            let containers: Vec<&ContainerObject> =
                                report.containers.iter().collect();
                            settle(scan, &containers);
                            if containers.is_empty() && !report.watcher_errors.is_empty() {
                                let watchers = report
                                    .watcher_errors
                                    .iter()
                                    .map(|e| format!("{}: {}", e.watcher, e.message))
                                    .collect::<Vec<_>>()
                                    .join("; ");
                                scan.error = Some(format!(
                                    "no watched container runs `{}` (watchers failed: {watchers})",
                                    entry.image
                                ));
                            }
                        }
                        Err(error) => {
                            scan.status = ImageStatus::Failed;
                            scan.error = Some(error.to_string());
                        }
                    }
                });
            }
            state.jobs.edit(id, |job| {
                job.state = JobState::Finished;
                job.finished_at = Some(now());
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(target: &BatchTarget) -> Vec<&str> {
        match target {
            BatchTarget::All => vec!["*"],
            BatchTarget::Images(entries) => entries.iter().map(|e| e.image.as_str()).collect(),
        }
    }

    #[test]
    fn both_body_shapes_and_their_errors() {
        let ok: &[(&str, &[&str])] = &[
            (r#"{"all": true}"#, &["*"]),
            (
                r#"{"images": ["nginx", "ghcr.io/o/a:1"]}"#,
                &["nginx", "ghcr.io/o/a:1"],
            ),
            (
                r#"{"operate_all": true, "image_type": "private_image"}"#,
                &["*"],
            ),
            (
                r#"{"image_info_list": [{"namespace": "cn", "image_name": "app", "image_version": "1.0"},
                                        {"image_name": "nginx"}, {"namespace": "", "image_name": "x", "image_version": ""}]}"#,
                &["cn/app:1.0", "nginx", "x"],
            ),
        ];
        for (body, expected) in ok {
            let parsed = parse_body(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(images(&parsed.target), *expected, "{body}");
            assert_eq!(
                parsed.hss,
                body.contains("operate_all") || body.contains("image_info")
            );
        }
        let bad: &[(&str, &str)] = &[
            ("not json", "body"),
            ("[1]", "body"),
            (r#"{}"#, "images"),
            (r#"{"imagez": []}"#, "imagez"),
            (r#"{"images": "x"}"#, "images"),
            (r#"{"operate_all": false}"#, "image_info_list"),
            (r#"{"operate_all": "yes"}"#, "operate_all"),
            (
                r#"{"operate_all": true, "image_info_list": [{"image_name": "a"}]}"#,
                "operate_all",
            ),
            (
                r#"{"image_info_list": [{"image_name": "a"}, {"namespace": "n"}]}"#,
                "image_info_list[1]",
            ),
            (
                r#"{"image_info_list": [{"image_name": " "}]}"#,
                "image_info_list[0].image_name",
            ),
            (
                r#"{"image_info_list": [{"image_name": "a", "image_version": 3}]}"#,
                "image_info_list[0].image_version",
            ),
            (
                r#"{"image_info_list": [{"image_name": "a", "image_version": "1:2"}]}"#,
                "image_info_list[0].image_version",
            ),
            (
                r#"{"image_info_list": [{"image_name": "a", "colour": "red"}]}"#,
                "image_info_list[0].colour",
            ),
        ];
        for (body, field) in bad {
            let error = parse_body(body.as_bytes()).expect_err(body);
            assert_eq!(&error.field, field, "{body}: {error}");
        }
    }
}
