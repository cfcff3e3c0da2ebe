//! The HTTP API (see `docs/contracts.md`): routes, handlers and JSON errors.
//!
//! Each route is registered once, through `utoipa-axum`, so the router and
//! the OpenAPI document are built from the same list and cannot disagree.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

use axum::{middleware, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crowsnest_engine::metrics::{ScanOrigin, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crowsnest_engine::scheduler::{ContainerUpdateError, ScanInterrupted};
use crowsnest_engine::triggers::{DispatchScope, TriggerRunError};
use crowsnest_model::{ContainerObject, ScanReport, ScanRequest, UpdateOutcome, UpdateReport};
use crowsnest_store::StoreError;

/// The routes behind the bearer token, each with its OpenAPI operation.
fn protected_api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_containers))
        .routes(routes!(watch_all))
        .routes(routes!(get_container))
        .routes(routes!(watch_container))
        .routes(routes!(run_trigger))
        .routes(routes!(update_container))
        .routes(routes!(scan_images))
        .routes(routes!(get_scan_job))
        .routes(routes!(super::events::stream_events))
        .routes(routes!(watchtower_check))
        .routes(routes!(watchtower_containers))
        .routes(routes!(watchtower_update))
        .routes(routes!(list_watchers))
        .routes(routes!(list_registries))
        .routes(routes!(list_triggers))
        .routes(routes!(list_plugins))
        .routes(routes!(openapi_document))
        .routes(routes!(metrics))
}

/// The routes open to everyone.
fn public_api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(livez))
        .routes(routes!(readyz))
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = super::openapi::base();
    document.merge(protected_api().into_openapi());
    document.merge(public_api().into_openapi());
    document
}

/// Every documented route as (lower-case method, path in OpenAPI syntax).
pub fn documented_routes() -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = openapi()
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = [
                ("get", item.get.is_some()),
                ("post", item.post.is_some()),
                ("put", item.put.is_some()),
                ("delete", item.delete.is_some()),
                ("patch", item.patch.is_some()),
            ];
            methods
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(method, _)| (method.to_string(), path.clone()))
        })
        .collect();
    routes.sort();
    routes
}

/// The document as JSON, built once.
pub fn document_json() -> &'static Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT.get_or_init(|| Bytes::from(openapi().to_pretty_json().unwrap_or_default()))
}

/// The router: the dashboard, and every API route but the health checks
/// behind the bearer token (or a dashboard session) when one is set.
pub fn router(state: Arc<AppState>) -> Router {
    let protected: Router<Arc<AppState>> = protected_api()
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            super::dashboard::session::require_api_auth,
        ))
        .into();
    let public: Router<Arc<AppState>> = public_api().into();
    public
        .merge(super::dashboard::router())
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Answers `504` with an error naming `[server] request_timeout_secs` when a
/// request's response is not ready within `limit`. Only producing the response
/// is bounded: a stream (`/api/events`) goes on once its headers are out.
/// (Hand-written rather than tower-http's `TimeoutLayer`, which answers an
/// empty `408`, the status of a client that was too slow.)
pub async fn bound_request(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request did not finish within {} s ([server] request_timeout_secs)",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// A JSON error answer: `{"error": "…"}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// Answer of a manual trigger run.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivered {
    /// Always true.
    pub delivered: bool,
    /// Trigger name.
    pub trigger: String,
    /// Container id.
    pub container: String,
}

/// Answer of `/health`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "API request failed");
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {error}"))
    }
}

impl From<ScanInterrupted> for ApiError {
    fn from(error: ScanInterrupted) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// Filters of `GET /api/containers`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContainerFilter {
    /// Container name (or display name), exact.
    pub name: Option<String>,
    /// Watcher name, exact.
    pub watcher: Option<String>,
    /// Only containers with (true) or without (false) an available update.
    pub update_available: Option<bool>,
}

impl ContainerFilter {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.watcher.is_none() && self.update_available.is_none()
    }

    /// Whether `container` passes every filter given.
    pub fn matches(&self, container: &ContainerObject) -> bool {
        self.name
            .as_ref()
            .is_none_or(|name| &container.name == name || &container.display_name == name)
            && self
                .watcher
                .as_ref()
                .is_none_or(|watcher| &container.watcher == watcher)
            && self
                .update_available
                .is_none_or(|wanted| container.update_available == wanted)
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip` listed without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|param| param.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn json_bytes(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Stored containers, optionally filtered.
#[utoipa::path(get, path = "/api/containers", tag = "containers",
    params(ContainerFilter),
    responses(
        (status = 200, description = "Stored containers", body = [ContainerObject]),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_containers(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    filter: Result<Query<ContainerFilter>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(filter) = filter?;
    let snapshot = state.containers().await?;
    if filter.is_empty() {
        // The whole list is served from the cache; compressed once when the client takes gzip.
        let mut response = if accepts_gzip(&headers) {
            let mut response = json_bytes(snapshot.gzip_json());
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        } else {
            json_bytes(snapshot.json.clone())
        };
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return Ok(response);
    }
    let selected: Vec<&ContainerObject> = snapshot
        .containers
        .iter()
        .filter(|c| filter.matches(c))
        .collect();
    Ok(Json(selected).into_response())
}

/// One container with the update actions' history (`GET /api/containers/{id}`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetail {
    /// The container.
    #[serde(flatten)]
    pub container: ContainerObject,
    /// What update actions did to it (by name, across replacements), most recent first.
    pub updates: Vec<UpdateOutcome>,
}

/// One stored container, with its update history.
#[utoipa::path(get, path = "/api/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "Container id")),
    responses(
        (status = 200, description = "The container and its update history", body = ContainerDetail),
        (status = 404, description = "Unknown id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_container(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ContainerDetail>> {
    let container = stored_container(&state, &id).await?;
    let updates = state
        .store
        .update_attempts(
            &container.watcher,
            &container.name,
            crowsnest_engine::actions::HISTORY_LIMIT,
        )
        .await?;
    Ok(Json(ContainerDetail { container, updates }))
}

async fn stored_container(state: &AppState, id: &str) -> ApiResult<ContainerObject> {
    state
        .store
        .get_container::<ContainerObject>(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no container with id `{id}`")))
}

/// Full rescan of every watcher (joins a scan in flight); answers the containers.
#[utoipa::path(post, path = "/api/containers/watch", tag = "scans",
    responses(
        (status = 200, description = "Every container after the scan; watchers that could not be read are listed in the `x-crowsnest-watcher-errors` header (JSON) and their containers are marked stale", body = [ContainerObject]),
        (status = 503, description = "Every watcher failed, or the scan was interrupted", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn watch_all(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let report = state
        .coordinator
        .scan(ScanRequest::default(), ScanOrigin::Http)
        .await?;
    if let Some(failure) = super::every_watcher_failed(&report) {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, failure));
    }
    let mut response = Json(&report.containers).into_response();
    if !report.watcher_errors.is_empty() {
        // JSON escapes control characters; obs-text bytes are valid in a header.
        let listed = serde_json::to_string(&report.watcher_errors).unwrap_or_default();
        let value = HeaderValue::from_bytes(listed.as_bytes()).unwrap_or_else(|_| {
            HeaderValue::from_static("[{\"watcher\":\"?\",\"message\":\"unreadable\"}]")
        });
        response
            .headers_mut()
            .insert(super::WATCHER_ERRORS_HEADER, value);
    }
    Ok(response)
}

/// Re-checks one container.
#[utoipa::path(post, path = "/api/containers/{id}/watch", tag = "scans",
    params(("id" = String, Path, description = "Container id")),
    responses(
        (status = 200, description = "The container after the check", body = ContainerObject),
        (status = 404, description = "Unknown id, or the container is gone", body = ErrorBody),
        (status = 503, description = "The Docker engine could not be asked", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn watch_container(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ContainerObject>> {
    let stored = stored_container(&state, &id).await?;
    match state.coordinator.refresh(&stored.watcher, &stored.id).await {
        Ok(Some(container)) => Ok(Json(container)),
        Ok(None) => Err(ApiError::not_found(format!(
            "container `{id}` is gone or no longer watched"
        ))),
        Err(error) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error)),
    }
}

/// Body of `POST /api/scan`: `{"images": […]}` or `{"all": true}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// Image patterns: repository with or without registry host and port, optional `:tag`.
    #[serde(default)]
    pub images: Vec<String>,
    /// Scan every container.
    #[serde(default)]
    pub all: bool,
}

impl ScanBody {
    /// The scan request this body asks for.
    pub fn request(&self) -> Result<ScanRequest, String> {
        let images: Vec<String> = self
            .images
            .iter()
            .map(|image| image.trim().to_owned())
            .filter(|image| !image.is_empty())
            .collect();
        match (self.all, images.is_empty()) {
            (true, true) => Ok(ScanRequest::default()),
            (true, false) => Err("give either `images` or `\"all\": true`, not both".into()),
            (false, true) => {
                Err("give `images` (a non-empty array of image patterns) or `\"all\": true`".into())
            }
            (false, false) => Ok(ScanRequest {
                images,
                ..ScanRequest::default()
            }),
        }
    }
}

/// Query of `POST /api/scan`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScanQuery {
    /// Answer `202` with a job at once; read it at `GET /api/scans/{id}`.
    #[serde(rename = "async")]
    pub run_async: Option<bool>,
}

/// Batch rescan of the containers whose image matches. Takes crowsnest's
/// body (`images` / `all`) or HSS's (`image_info_list` of `{namespace,
/// image_name, image_version}` / `operate_all`).
#[utoipa::path(post, path = "/api/scan", tag = "scans",
    params(ScanQuery),
    request_body(content = Object, description = "`{\"images\": [..]}`, `{\"all\": true}`, or HSS's `{\"image_info_list\": [{\"namespace\", \"image_name\", \"image_version\"}]}` / `{\"operate_all\": true}`"),
    responses(
        (status = 200, description = "crowsnest's body: the scan report; HSS's body: the finished job", body = ScanReport),
        (status = 202, description = "`?async=true`: the job, running", body = super::jobs::ScanJob),
        (status = 400, description = "Malformed body (the message names the field)", body = ErrorBody),
        (status = 503, description = "The scan was interrupted", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn scan_images(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ScanQuery>, QueryRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let Query(query) = query?;
    let parsed =
        super::jobs::parse_body(&body).map_err(|error| ApiError::bad_request(error.to_string()))?;
    if query.run_async.unwrap_or(false) {
        let job = super::jobs::start(&state, parsed.target);
        let location = HeaderValue::from_str(&format!("/api/scans/{}", job.id))
            .unwrap_or_else(|_| HeaderValue::from_static("/api/scans"));
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(job),
        )
            .into_response());
    }
    if parsed.hss {
        return Ok(Json(super::jobs::run_now(&state, parsed.target).await).into_response());
    }
    let report = state
        .coordinator
        .scan(parsed.target.request(), ScanOrigin::Http)
        .await?;
    Ok(Json(report.as_ref()).into_response())
}

/// A batch scan job and each image's status.
#[utoipa::path(get, path = "/api/scans/{id}", tag = "scans",
    params(("id" = String, Path, description = "Job id (from `POST /api/scan?async=true`)")),
    responses(
        (status = 200, description = "The job", body = super::jobs::ScanJob),
        (status = 404, description = "Unknown or expired job", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_scan_job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<super::jobs::ScanJob>> {
    state.jobs.get(&id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no scan job `{id}` (unknown, or finished more than {} minutes ago)",
            super::jobs::JOB_RETENTION.as_secs() / 60
        ))
    })
}

/// Query of `/v1/check`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// Comma-separated image patterns; absent = every container.
    pub image: Option<String>,
}

fn image_list(images: Option<&str>) -> Vec<String> {
    images
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|image| !image.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Watchtower-style check: rescan the matching containers (or all) and
/// answer the scan report; nothing is updated (triggers run as after any scan).
#[utoipa::path(method(get, post), path = "/v1/check", tag = "scans",
    params(CheckQuery),
    responses(
        (status = 200, description = "The scan report", body = ScanReport),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 503, description = "The scan was interrupted", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn watchtower_check(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CheckQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    let request = ScanRequest {
        images: image_list(query.image.as_deref()),
        ..ScanRequest::default()
    };
    let report = state.coordinator.scan(request, ScanOrigin::Http).await?;
    Ok(Json(report.as_ref()).into_response())
}

/// Alias of `GET /api/containers` (same filters).
#[utoipa::path(get, path = "/v1/containers", tag = "containers",
    params(ContainerFilter),
    responses(
        (status = 200, description = "Stored containers", body = [ContainerObject]),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn watchtower_containers(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    filter: Result<Query<ContainerFilter>, QueryRejection>,
) -> ApiResult<Response> {
    list_containers(state, headers, filter).await
}

/// Query of `/v1/update`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateQuery {
    /// Comma-separated image patterns (`foo/bar,127.0.0.1:5000/team/app`); absent = every container.
    pub image: Option<String>,
    /// With an update action: report what would be done, touch nothing.
    pub dry_run: Option<bool>,
}

/// The answer of `/v1/update`: the update report when an update action is
/// configured, else the scan report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WatchtowerAnswer {
    /// What the update actions did (an action is configured).
    Update(UpdateReport),
    /// The scan (no action is configured; triggers run in the background).
    Scan(ScanReport),
}

/// Watchtower-compatible: rescan the matching containers (or all), then
/// update them when an update action is configured (answering after the
/// work), else run the triggers.
#[utoipa::path(method(get, post), path = "/v1/update", tag = "updates",
    params(UpdateQuery),
    responses(
        (status = 200, description = "With an update action: what was updated, rolled back, failed, skipped. Without: the scan report (triggers run in the background)", body = WatchtowerAnswer),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "No token is configured, so this route is off", body = ErrorBody),
        (status = 503, description = "The scan was interrupted", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn watchtower_update(
    State(state): State<Arc<AppState>>,
    query: Result<Query<UpdateQuery>, QueryRejection>,
) -> ApiResult<Response> {
    if !state.token.is_set() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "/v1/update needs `[server] token` (or token_file) to be configured",
        ));
    }
    let Query(query) = query?;
    let request = ScanRequest {
        images: image_list(query.image.as_deref()),
        ..ScanRequest::default()
    };
    let (report, updates) = state
        .coordinator
        .update(request, ScanOrigin::Http, query.dry_run.unwrap_or(false))
        .await?;
    if let Some(updates) = updates {
        return Ok(Json(WatchtowerAnswer::Update(updates)).into_response());
    }
    // Automatic triggers already fired for this scan; fire the API-only ones.
    state
        .coordinator
        .triggers()
        .dispatch(&report.containers, DispatchScope::ApiOnly)
        .await;
    Ok(Json(report.as_ref()).into_response())
}

/// Query of `POST /api/containers/{id}/update`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContainerUpdateQuery {
    /// Report what would be done, touch nothing.
    pub dry_run: Option<bool>,
}

/// Re-checks one container, then updates it now by the first update action
/// that admits it (its labels apply; the threshold and window do not).
#[utoipa::path(post, path = "/api/containers/{id}/update", tag = "updates",
    params(("id" = String, Path, description = "Container id"), ContainerUpdateQuery),
    responses(
        (status = 200, description = "What was done: updated, handed-over, dry-run, rolled-back, failed or skipped (with the reason)", body = UpdateOutcome),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 404, description = "Unknown container, or it is gone", body = ErrorBody),
        (status = 409, description = "No update action is configured", body = ErrorBody),
        (status = 503, description = "The Docker engine could not be asked", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_container(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<Query<ContainerUpdateQuery>, QueryRejection>,
) -> ApiResult<Json<UpdateOutcome>> {
    let Query(query) = query?;
    let stored = stored_container(&state, &id).await?;
    if state.coordinator.actions().is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no update action is configured (add an [actions.NAME] section)",
        ));
    }
    match state
        .coordinator
        .update_container(&stored.watcher, &stored.id, query.dry_run.unwrap_or(false))
        .await
    {
        Ok(Some(outcome)) => Ok(Json(outcome)),
        Ok(None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no update action is configured (add an [actions.NAME] section)",
        )),
        Err(error @ ContainerUpdateError::Gone(_)) => Err(ApiError::not_found(error.to_string())),
        Err(error @ ContainerUpdateError::Unavailable(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error.to_string(),
        )),
    }
}

/// Runs one trigger for one container now.
#[utoipa::path(post, path = "/api/containers/{id}/triggers/{name}", tag = "triggers",
    params(("id" = String, Path, description = "Container id"), ("name" = String, Path, description = "Trigger name")),
    responses(
        (status = 200, description = "Delivered", body = Delivered),
        (status = 404, description = "Unknown container or trigger", body = ErrorBody),
        (status = 409, description = "The container has no update to deliver", body = ErrorBody),
        (status = 502, description = "Every delivery attempt failed", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn run_trigger(
    State(state): State<Arc<AppState>>,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let container = stored_container(&state, &id).await?;
    match state
        .coordinator
        .triggers()
        .run_now(&name, &container)
        .await
    {
        Ok(()) => Ok(Json(
            serde_json::json!({ "delivered": true, "trigger": name, "container": id }),
        )),
        Err(error @ TriggerRunError::UnknownTrigger(_)) => {
            Err(ApiError::not_found(error.to_string()))
        }
        Err(error @ TriggerRunError::NoUpdate(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, error.to_string()))
        }
        Err(error @ TriggerRunError::Delivery { .. }) => {
            Err(ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()))
        }
    }
}

/// Configured watchers (Docker hosts).
#[utoipa::path(get, path = "/api/watchers", tag = "configuration",
    responses((status = 200, description = "Watchers by name", body = Object),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_watchers(State(state): State<Arc<AppState>>) -> Response {
    Json(&state.info.watchers).into_response()
}

/// Configured registries, secrets masked.
#[utoipa::path(get, path = "/api/registries", tag = "configuration",
    responses((status = 200, description = "Registries", body = Object),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_registries(State(state): State<Arc<AppState>>) -> Response {
    Json(&state.info.registries).into_response()
}

/// Configured triggers, secrets masked.
#[utoipa::path(get, path = "/api/triggers", tag = "configuration",
    responses((status = 200, description = "Triggers", body = [Object]),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_triggers(State(state): State<Arc<AppState>>) -> Response {
    Json(state.coordinator.triggers().summaries()).into_response()
}

/// Loaded plugins.
#[utoipa::path(get, path = "/api/plugins", tag = "configuration",
    responses((status = 200, description = "Plugins", body = [super::PluginSummary]),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_plugins(State(state): State<Arc<AppState>>) -> Response {
    Json(&state.info.plugins).into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn openapi_document() -> Response {
    json_bytes(document_json().clone())
}

/// Liveness; never needs the token.
#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Liveness (Kubernetes style); never needs the token.
#[utoipa::path(get, path = "/livez", tag = "meta",
    responses((status = 200, description = "The process serves requests", body = Health)))]
pub async fn livez() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Why `/readyz` says not ready.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `not-ready`.
    pub status: String,
    /// What is missing (empty when ready).
    pub reasons: Vec<String>,
}

/// Readiness (Kubernetes style): the store answers and at least one scan
/// finished; never needs the token.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "Not ready, with the reasons", body = Readiness)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let mut reasons = Vec::new();
    if let Err(error) = state.store.schema_version().await {
        reasons.push(format!("the store does not answer: {error}"));
    }
    if state.coordinator.finished_scans() == 0 {
        reasons.push("no scan has finished yet".to_owned());
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if reasons.is_empty() {
            "ok"
        } else {
            "not-ready"
        }
        .to_owned(),
        reasons,
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
              (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let snapshot = state.containers().await?;
    let text = state.coordinator.metrics().render(&snapshot.containers);
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            headers
        };
        assert!(accepts_gzip(&headers("gzip")));
        assert!(accepts_gzip(&headers("br, gzip;q=0.5")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn scan_body_needs_images_or_all() {
        let parse = |text: &str| {
            serde_json::from_str::<ScanBody>(text)
                .map_err(|e| e.to_string())
                .and_then(|b| b.request())
        };
        assert_eq!(parse(r#"{"all": true}"#).unwrap(), ScanRequest::default());
        assert_eq!(
            parse(r#"{"images": ["nginx", " "]}"#).unwrap().images,
            vec!["nginx".to_owned()]
        );
        assert!(parse(r#"{}"#).is_err());
        assert!(parse(r#"{"images": []}"#).is_err());
        assert!(parse(r#"{"all": true, "images": ["x"]}"#).is_err());
        assert!(parse(r#"{"imagez": ["x"]}"#).is_err());
        assert!(parse(r#"{"images": "x"}"#).is_err());
    }
}
