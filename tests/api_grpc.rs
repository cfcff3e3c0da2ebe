//! The gRPC API over real gRPC (HTTP/2 on loopback), against `crowsnest serve`
//! started in-process with a real Docker engine and registry: every operation,
//! `grpc.health.v1`, token metadata, unknown ids and bad arguments.

use crowsnest::server::grpc::proto;
use crowsnest_testkit::control_plane::AppAndLib;
use crowsnest_testkit::engine;
use proto::crowsnest_client::CrowsnestClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOKEN: &str = "grpc-t0ken";

/// Adds (or not) the token metadata to each call.
type AddToken = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
type AuthedClient =
    CrowsnestClient<tonic::service::interceptor::InterceptedService<Channel, AddToken>>;

fn client(channel: Channel, token: Option<&'static str>) -> AuthedClient {
    let add_token: AddToken = Box::new(move |mut request: Request<()>| {
        if let Some(token) = token {
            let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    });
    CrowsnestClient::with_interceptor(channel, add_token)
}

fn sorted_names(list: &proto::ContainerList) -> Vec<String> {
    let mut names: Vec<String> = list.containers.iter().map(|c| c.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_over_grpc() {
    let _serial = engine::exclusive().await;
    let world = AppAndLib::start();
    let (app, lib) = (&world.app, &world.lib);
    let config = world.config(&format!("scan_on_start = false\ntoken = \"{TOKEN}\""), "");
    let server = crowsnest::cli::serve::start(&config).await.unwrap();
    let address = format!(
        "http://{}",
        server.grpc_addr.expect("gRPC is on by default")
    );
    let channel = Channel::from_shared(address)
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Health needs no token.
    let mut health = HealthClient::new(channel.clone());
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);
    let ours = health
        .check(HealthCheckRequest {
            service: "crowsnest.v1.Crowsnest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ours.status, ServingStatus::Serving as i32);

    // Token metadata.
    let denied = client(channel.clone(), None)
        .list_containers(proto::ListContainersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    let denied = client(channel.clone(), Some("wrong"))
        .watch_all(proto::WatchAllRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);

    let mut api = client(channel, Some(TOKEN));
    let both = world.both();

    // Watch all: full rescan.
    let all = api
        .watch_all(proto::WatchAllRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sorted_names(&all), both);
    let app_wire = all.containers.iter().find(|c| c.id == app.id).unwrap();
    assert!(app_wire.update_available);
    assert_eq!(app_wire.update_kind.as_deref(), Some("tag"));
    assert_eq!(app_wire.remote_value.as_deref(), Some("2.0"));
    assert_eq!(app_wire.semver_diff.as_deref(), Some("major"));
    assert_eq!(app_wire.error, None);
    let object: serde_json::Value = serde_json::from_str(&app_wire.json).unwrap();
    assert_eq!(
        object["updateKind"]["remoteValue"], "2.0",
        "the full object rides along"
    );

    // List with filters.
    let lib_only = vec![lib.name.clone()];
    for (filter, expected) in [
        (proto::ListContainersRequest::default(), &both),
        (
            proto::ListContainersRequest {
                name: Some(lib.name.clone()),
                ..Default::default()
            },
            &lib_only,
        ),
        (
            proto::ListContainersRequest {
                update_available: Some(false),
                ..Default::default()
            },
            &Vec::new(),
        ),
    ] {
        let listed = api
            .list_containers(filter.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&sorted_names(&listed), expected, "{filter:?}");
    }

    // Get and watch one; unknown ids.
    let got = api
        .get_container(proto::ContainerId { id: lib.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.remote_value.as_deref(), Some("1.1"));
    assert_eq!(got.semver_diff.as_deref(), Some("minor"));
    let unknown = api
        .get_container(proto::ContainerId { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let watched = api
        .watch_container(proto::ContainerId { id: app.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watched.id, app.id);
    let unknown = api
        .watch_container(proto::ContainerId { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Scan by images, host:port pattern included; bad arguments.
    let app_only = vec![app.name.clone()];
    for (request, expected) in [
        (
            proto::ScanImagesRequest {
                images: vec![format!("{}/cn/app", world.registry.host())],
                all: false,
            },
            &app_only,
        ),
        (
            proto::ScanImagesRequest {
                images: vec![],
                all: true,
            },
            &both,
        ),
    ] {
        let scanned = api.scan_images(request.clone()).await.unwrap().into_inner();
        assert_eq!(&sorted_names(&scanned), expected, "{request:?}");
    }
    let invalid = api
        .scan_images(proto::ScanImagesRequest {
            images: vec![],
            all: false,
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);

    // Plugins.
    let plugins = api
        .list_plugins(proto::ListPluginsRequest {})
        .await
        .unwrap()
        .into_inner();
    let webhook = plugins
        .plugins
        .iter()
        .find(|p| p.name == "webhook")
        .expect("webhook is built in");
    assert_eq!(webhook.kind, "trigger");
    assert_eq!(webhook.source, "builtin");
    assert!(plugins
        .plugins
        .iter()
        .any(|p| p.kind == "registry-provider"));

    server.shutdown().await;
}
