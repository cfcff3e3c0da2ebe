//! The gRPC API (`proto/crowsnest.proto`, package `crowsnest.v1`) plus the
//! standard `grpc.health.v1` service. Same operations and token as HTTP; the
//! token travels as `authorization: Bearer TOKEN` metadata (health needs none).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::auth::{AuthError, Token};
use super::AppState;
use crowsnest_engine::metrics::ScanOrigin;
use crowsnest_model::{ContainerObject, ScanReport, ScanRequest};

/// Code generated from `proto/crowsnest.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("crowsnest.v1");
}

use proto::crowsnest_server::{Crowsnest, CrowsnestServer};

/// The gRPC service over the shared state.
#[derive(Clone)]
pub struct Service {
    state: Arc<AppState>,
}

impl Service {
    /// A service over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// Runs (or joins) a scan for a gRPC caller; an interrupted scan is `unavailable`.
    async fn scan(&self, request: ScanRequest) -> Result<Arc<ScanReport>, Status> {
        self.state
            .coordinator
            .scan(request, ScanOrigin::Grpc)
            .await
            .map_err(|error| Status::unavailable(error.to_string()))
    }
}

/// The wire form of a container (the full JSON object rides along in `json`).
pub fn to_proto(container: &ContainerObject) -> proto::Container {
    let kind = container.update_kind.as_ref();
    proto::Container {
        id: container.id.clone(),
        name: container.name.clone(),
        display_name: container.display_name.clone(),
        status: container.status.clone(),
        watcher: container.watcher.clone(),
        image: container.image.reference.clone(),
        tag: container.image.tag.value.clone(),
        update_available: container.update_available,
        update_kind: kind.map(|kind| kind.kind.clone()),
        local_value: kind.and_then(|kind| kind.local_value.clone()),
        remote_value: kind.and_then(|kind| kind.remote_value.clone()),
        semver_diff: kind.and_then(|kind| kind.semver_diff.clone()),
        error: container.error.as_ref().map(|error| error.message.clone()),
        result_tag: container
            .result
            .as_ref()
            .and_then(|result| result.tag.clone()),
        result_digest: container
            .result
            .as_ref()
            .and_then(|result| result.digest.clone()),
        json: serde_json::to_string(container).unwrap_or_default(),
        check_status: container.check.status.as_str().to_owned(),
        check_reason: container.check.reason.clone(),
        stale: container.check.stale,
    }
}

fn list(containers: &[ContainerObject]) -> proto::ContainerList {
    proto::ContainerList {
        containers: containers.iter().map(to_proto).collect(),
    }
}

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

#[tonic::async_trait]
impl Crowsnest for Service {
    type AgentStreamStream = super::agents::AckStream;

    async fn agent_stream(
        &self,
        request: Request<tonic::Streaming<proto::AgentMessage>>,
    ) -> Result<Response<Self::AgentStreamStream>, Status> {
        Ok(Response::new(super::agents::serve_stream(
            Arc::clone(&self.state),
            request.into_inner(),
        )))
    }

    async fn list_containers(
        &self,
        request: Request<proto::ListContainersRequest>,
    ) -> Result<Response<proto::ContainerList>, Status> {
        let filter = request.into_inner();
        let filter = super::http::ContainerFilter {
            name: filter.name,
            watcher: filter.watcher,
            update_available: filter.update_available,
        };
        let snapshot = self.state.containers().await.map_err(internal)?;
        let selected: Vec<ContainerObject> = snapshot
            .containers
            .iter()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect();
        Ok(Response::new(list(&selected)))
    }

    async fn get_container(
        &self,
        request: Request<proto::ContainerId>,
    ) -> Result<Response<proto::Container>, Status> {
        let id = request.into_inner().id;
        let container: Option<ContainerObject> = self
            .state
            .store
            .get_container(&id)
            .await
            .map_err(internal)?;
        container
            .map(|container| Response::new(to_proto(&container)))
            .ok_or_else(|| Status::not_found(format!("no container with id `{id}`")))
    }

    async fn watch_all(
        &self,
        _request: Request<proto::WatchAllRequest>,
    ) -> Result<Response<proto::ContainerList>, Status> {
        let report = self.scan(ScanRequest::default()).await?;
        if let Some(failure) = super::every_watcher_failed(&report) {
            return Err(Status::unavailable(failure));
        }
        Ok(Response::new(list(&report.containers)))
    }

    async fn watch_container(
        &self,
        request: Request<proto::ContainerId>,
    ) -> Result<Response<proto::Container>, Status> {
        let id = request.into_inner().id;
        let stored: ContainerObject = self
            .state
            .store
            .get_container(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no container with id `{id}`")))?;
        match self
            .state
            .coordinator
            .refresh(&stored.watcher, &stored.id)
            .await
        {
            Ok(Some(container)) => Ok(Response::new(to_proto(&container))),
            Ok(None) => Err(Status::not_found(format!(
                "container `{id}` is gone or no longer watched"
            ))),
            Err(error) => Err(Status::unavailable(error)),
        }
    }

    async fn scan_images(
        &self,
        request: Request<proto::ScanImagesRequest>,
    ) -> Result<Response<proto::ContainerList>, Status> {
        let body = request.into_inner();
        let scan = super::http::ScanBody {
            images: body.images,
            all: body.all,
        }
        .request()
        .map_err(Status::invalid_argument)?;
        let report = self.scan(scan).await?;
        Ok(Response::new(list(&report.containers)))
    }

    async fn list_plugins(
        &self,
        _request: Request<proto::ListPluginsRequest>,
    ) -> Result<Response<proto::PluginList>, Status> {
        Ok(Response::new(proto::PluginList {
            plugins: self
                .state
                .info
                .plugins
                .iter()
                .map(|plugin| proto::Plugin {
                    name: plugin.name.clone(),
                    kind: plugin.kind.clone(),
                    version: plugin.version.clone(),
                    description: plugin.description.clone(),
                    source: plugin.source.clone(),
                })
                .collect(),
        }))
    }
}

/// Checks the `authorization` metadata against the token.
#[derive(Clone)]
pub struct TokenInterceptor {
    token: Token,
}

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        match self.token.check(authorization) {
            Ok(()) => Ok(request),
            Err(error @ (AuthError::Missing | AuthError::Invalid)) => {
                Err(Status::unauthenticated(error.to_string()))
            }
        }
    }
}

/// Serves gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    request_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CrowsnestServer<Service>>()
        .await;
    let interceptor = TokenInterceptor {
        token: state.token.clone(),
    };
    let service = InterceptedService::new(CrowsnestServer::new(Service::new(state)), interceptor);
    tonic::transport::Server::builder()
        // `[server] request_timeout_secs`: a call past it answers DEADLINE_EXCEEDED.
        .timeout(request_timeout)
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
