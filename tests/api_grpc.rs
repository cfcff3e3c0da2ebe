//! The gRPC API over real gRPC (HTTP/2 on loopback), against `crowsnest serve`
//! started in-process with a real Docker engine and registry: every operation,
//! `grpc.health.v1`, token metadata, unknown ids and bad arguments.

use crowsnest::server::grpc::proto;
use crowsnest_testkit::config;
use crowsnest_testkit::containers::Containers;
use crowsnest_testkit::engine::{self, Engine};
use crowsnest_testkit::registry::PrivateRegistry;
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
    let engine = Engine::private();
    let registry = PrivateRegistry::start(engine);
    let app_refs = registry.push("cn/app", &["1.0", "2.0"]);
    let lib_refs = registry.push("cn/lib", &["1.0", "1.1"]);
    let containers = Containers::new(engine, "cn-cp").with_label("crowsnest-test", "1");
    let app = containers.run(&app_refs[0], &[]);
    let lib = containers.run(&lib_refs[0], &[]);
    let store = tempfile::tempdir().unwrap();
    let text = config::serve(
        &store.path().join("crowsnest.db"),
        engine,
        &format!("scan_on_start = false\ntoken = \"{TOKEN}\""),
        "",
    );
    let server = crowsnest::cli::serve::start(&config::parse(&text))
        .await
        .unwrap();
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
    let mut both = vec![app.name.clone(), lib.name.clone()];
    both.sort();

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
    let listed = api
        .list_containers(proto::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sorted_names(&listed), both);
    let by_name = api
        .list_containers(proto::ListContainersRequest {
            name: Some(lib.name.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sorted_names(&by_name), vec![lib.name.clone()]);
    let none = api
        .list_containers(proto::ListContainersRequest {
            update_available: Some(false),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.containers.is_empty());

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
    let scanned = api
        .scan_images(proto::ScanImagesRequest {
            images: vec![format!("{}/cn/app", registry.host())],
            all: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sorted_names(&scanned), vec![app.name.clone()]);
    let scanned = api
        .scan_images(proto::ScanImagesRequest {
            images: vec![],
            all: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sorted_names(&scanned), both);
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
