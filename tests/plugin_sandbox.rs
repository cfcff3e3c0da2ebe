//! The sandbox against hostile guests: each misbehaviour is contained with an
//! error naming the plugin and the cause, and the same plugin works on the
//! next call. Fixtures are built from `plugins/fixtures/` by `cargo xtask plugins`.

use std::sync::Arc;
use std::time::Duration;

use crowsnest::plugin::catalog::check_file;
use crowsnest::plugin::registry::{ImageRef, RegistryCallError, RegistryError};
use crowsnest::plugin::strategy::{StrategyError, StrategyOptions};
use crowsnest::plugin::{
    ComponentCache, PluginComponent, PluginError, PluginKind, RegistryPlugin, SandboxLimits,
    StrategyPlugin,
};
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::plugins::{builtin, catalog, fixture, registry_spec, spec};

async fn component(name: &str) -> PluginComponent {
    check_file(&fixture(name), &ComponentCache::new(None))
        .await
        .unwrap()
}

fn limits() -> SandboxLimits {
    SandboxLimits {
        memory_bytes: 32 << 20,
        cpu_per_call: Duration::from_millis(500),
        ..SandboxLimits::default()
    }
}

async fn hostile_strategy() -> StrategyPlugin {
    StrategyPlugin::new(
        &component("hostile-strategy.wasm").await,
        spec(Vec::new(), limits(), 2),
    )
    .await
    .unwrap()
}

fn tags() -> Vec<String> {
    vec!["1.0".into(), "1.1".into(), "2.0".into()]
}

/// After any failure the plugin must still answer a normal call correctly.
async fn still_works(strategy: &StrategyPlugin) {
    let decision = strategy
        .choose("1.0", &tags(), &StrategyOptions::default())
        .await
        .unwrap();
    assert_eq!(decision.offer.map(|o| o.tag).as_deref(), Some("2.0"));
}

fn trap_cause(err: StrategyError) -> String {
    match err {
        StrategyError::Plugin(PluginError::Trap { plugin, cause }) => {
            assert_eq!(plugin, "hostile-strategy");
            cause
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// A hostile input, what it must hit, and the check on the trap's cause.
type TrapCase = (&'static str, &'static str, fn(&str) -> bool);

#[tokio::test]
async fn loop_bomb_panic_and_bad_utf8_are_contained_traps() {
    let cases: [TrapCase; 4] = [
        ("loop", "the CPU limit", |cause| {
            cause.contains("CPU time limit (500 ms")
        }),
        ("bomb", "the memory limit", |cause| {
            cause.contains("memory limit") && cause.contains("32 MiB")
        }),
        ("panic", "a contained panic", |cause| {
            cause.contains("panicked")
        }),
        ("badutf8", "a broken component ABI", |cause| {
            cause.contains("component ABI") && cause.to_lowercase().contains("utf-8")
        }),
    ];
    check_each(
        &cases,
        |(input, expected, _)| format!("`{input}` hits {expected}"),
        |(input, _, check)| async move {
            let strategy = hostile_strategy().await;
            let err = strategy
                .choose(input, &tags(), &StrategyOptions::default())
                .await
                .unwrap_err();
            let message = err.to_string();
            assert!(message.contains("hostile-strategy"), "{message}");
            let cause = trap_cause(err);
            assert!(check(&cause), "{cause}");
            still_works(&strategy).await;
        },
    )
    .await;
}

#[tokio::test]
async fn oversized_offer_is_rejected_as_malformed() {
    let strategy = hostile_strategy().await;
    let err = strategy
        .choose("huge", &tags(), &StrategyOptions::default())
        .await
        .unwrap_err();
    match &err {
        StrategyError::Plugin(PluginError::Malformed { plugin, reason }) => {
            assert_eq!(plugin, "hostile-strategy");
            assert!(
                reason.contains("not among the candidates") && reason.contains("4194304 bytes"),
                "{reason}"
            );
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    still_works(&strategy).await;
}

#[tokio::test]
async fn one_failing_call_does_not_disturb_concurrent_ones() {
    let strategy = Arc::new(hostile_strategy().await);
    let mut calls = Vec::new();
    for i in 0..8 {
        let strategy = strategy.clone();
        calls.push(tokio::spawn(async move {
            let current = if i == 3 { "panic" } else { "1.0" };
            strategy
                .choose(current, &tags(), &StrategyOptions::default())
                .await
        }));
    }
    let mut failures = 0;
    for (i, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(decision) => assert_eq!(decision.offer.unwrap().tag, "2.0"),
            Err(_) => {
                assert_eq!(i, 3);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 1);
}

async fn hostile_registry() -> RegistryPlugin {
    let component = component("hostile-registry.wasm").await;
    RegistryPlugin::new(
        &component,
        "evil",
        registry_spec(&["127.0.0.1:5999"], Vec::new(), limits(), 2),
    )
    .await
    .unwrap()
}

fn image(path: &str) -> ImageRef {
    ImageRef {
        domain: "hostile.local".into(),
        path: path.into(),
        tag: Some("1.0".into()),
        digest: None,
    }
}

#[tokio::test]
async fn registry_plugin_cannot_reach_a_host_off_its_allow_list() {
    let registry = hostile_registry().await;
    let location = registry.locate(&image("team/app")).await.unwrap();
    match registry.list_tags(&location).await.unwrap_err() {
        RegistryCallError::Registry(RegistryError::NotAllowed(detail)) => {
            assert!(
                detail.contains("127.0.0.1") && detail.contains("allow-list"),
                "{detail}"
            );
        }
        other => panic!("expected not-allowed, got {other:?}"),
    }
    // The host's OCI client refuses the same host for this instance too.
    let err = registry
        .resolve(&location, "1.0", None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryCallError::Registry(RegistryError::NotAllowed(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn registry_plugin_loop_and_panic_are_contained() {
    let registry = hostile_registry().await;
    for (path, expected) in [("loop", "CPU time limit"), ("panic", "panicked")] {
        let err = registry.locate(&image(path)).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("hostile-registry (registry evil)"),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
        // Same instance, next call: fine.
        let location = registry.locate(&image("team/app")).await.unwrap();
        assert_eq!(location.repository, "team/app");
    }
    assert_eq!(registry.matches(&image("x")).await.unwrap(), Some(1000));
}

#[tokio::test]
async fn bad_settings_are_rejected_naming_the_key() {
    let catalog = catalog(None, None).await;
    let oci = catalog
        .find("oci", PluginKind::RegistryProvider)
        .await
        .unwrap();
    let spec = |settings| registry_spec(&["127.0.0.1:5000"], settings, limits(), 1);
    let err = RegistryPlugin::new(&oci.component, "private", spec(Vec::new()))
        .await
        .err()
        .unwrap();
    match err {
        PluginError::Config { plugin, key, .. } => {
            assert_eq!(plugin, "oci (registry private)");
            assert_eq!(key.as_deref(), Some("url"));
        }
        other => panic!("expected config error, got {other:?}"),
    }
    let err = RegistryPlugin::new(
        &oci.component,
        "private",
        spec(vec![
            ("url".into(), "http://127.0.0.1:5000".into()),
            ("colour".into(), "blue".into()),
        ]),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(&err, PluginError::Config { key: Some(k), .. } if k == "colour"),
        "{err:?}"
    );
}

#[tokio::test]
async fn strategy_world_has_no_imports_and_kind_checks_hold() {
    let catalog = catalog(None, None).await;
    assert!(catalog.problems().is_empty(), "{:?}", catalog.problems());
    let semver = catalog
        .find("semver", PluginKind::VersionStrategy)
        .await
        .unwrap();
    // Asking for a strategy by a registry plugin's name is an error, not a mix-up.
    assert!(catalog
        .find("oci", PluginKind::VersionStrategy)
        .await
        .is_err());
    let strategy = StrategyPlugin::new(&semver.component, spec(Vec::new(), limits(), 1))
        .await
        .unwrap();
    let decision = strategy
        .choose(
            "1.20-alpine",
            &["1.21-alpine".into(), "1.31-bookworm".into()],
            &StrategyOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(decision.offer.unwrap().tag, "1.21-alpine");
}

#[tokio::test]
async fn dropins_load_skip_bad_files_and_replace_builtins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("hostile-strategy.wasm"),
        dir.path().join("a-hostile.wasm"),
    )
    .unwrap();
    std::fs::copy(fixture("core-module.wasm"), dir.path().join("b-core.wasm")).unwrap();
    std::fs::write(dir.path().join("c-garbage.wasm"), b"garbage").unwrap();
    std::fs::copy(
        fixture("hostile-registry.wasm"),
        dir.path().join("d-registry.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("d-registry.toml"),
        "allowed_hosts = [\"127.0.0.1:5999\", \"*.corp.example\"]\n",
    )
    .unwrap();
    std::fs::copy(
        fixture("hostile-registry.wasm"),
        dir.path().join("e-bad-grants.wasm"),
    )
    .unwrap();
    std::fs::write(dir.path().join("e-bad-grants.toml"), "allowed = 3\n").unwrap();
    // A drop-in named like a built-in (its describe() says `semver`) replaces it.
    std::fs::copy(builtin("semver"), dir.path().join("f-my-semver.wasm")).unwrap();
    let catalog = catalog(Some(dir.path()), Some(&dir.path().join("cache"))).await;
    let hostile = catalog
        .find("hostile-strategy", PluginKind::VersionStrategy)
        .await
        .unwrap();
    assert!(hostile
        .component
        .source
        .to_string()
        .ends_with("a-hostile.wasm"));
    let registry = catalog
        .find("hostile-registry", PluginKind::RegistryProvider)
        .await
        .unwrap();
    assert_eq!(
        registry.grants.allowed_hosts,
        ["127.0.0.1:5999", "*.corp.example"]
    );
    let problems: Vec<(String, String)> = catalog
        .problems()
        .iter()
        .map(|p| {
            (
                p.path.file_name().unwrap().to_string_lossy().into_owned(),
                p.reason.clone(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].0 == "b-core.wasm" && problems[0].1.contains("core WebAssembly module"),
        "{problems:?}"
    );
    assert!(
        problems[1].0 == "c-garbage.wasm" && problems[1].1.contains("not a WebAssembly file"),
        "{problems:?}"
    );
    assert!(
        problems[2].0 == "e-bad-grants.wasm" && problems[2].1.contains("unknown field `allowed`"),
        "{problems:?}"
    );
    let semver = catalog
        .find("semver", PluginKind::VersionStrategy)
        .await
        .unwrap();
    assert!(
        semver
            .component
            .source
            .to_string()
            .ends_with("f-my-semver.wasm"),
        "{}",
        semver.component.source
    );
    // Every built-in is still there.
    for name in ["oci", "dockerhub", "semver", "regex", "digest", "webhook"] {
        assert!(catalog.get(name).await.is_some(), "{name} missing");
    }
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ComponentCache::new(Some(dir.path().join("cache")));
    check_file(&fixture("hostile-strategy.wasm"), &cache)
        .await
        .unwrap();
    // Beside the artifact: the cache's HMAC key.
    let artifacts: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .map_or(true, |entry| entry.file_name() != "artifacts.key")
        })
        .collect();
    assert_eq!(artifacts.len(), 1);
    let name = artifacts[0]
        .as_ref()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.contains("wasmtime48.0.8") && name.ends_with(".cwasm"),
        "{name}"
    );
    // A corrupted artifact is discarded and recompiled, not trusted.
    std::fs::write(artifacts[0].as_ref().unwrap().path(), b"corrupt").unwrap();
    let again = check_file(&fixture("hostile-strategy.wasm"), &cache)
        .await
        .unwrap();
    assert_eq!(again.info.name, "hostile-strategy");
}

/// A registry whose Bearer realm is on another loopback host: the host's
/// token fetch must work there, yet the realm must not join the instance's
/// allow-list — the plugin's raw HTTP to it is refused.
#[tokio::test]
async fn token_realm_serves_token_requests_but_never_widens_raw_http() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use crowsnest::plugin::bindings::registry::crowsnest::plugin::http_client;
    use crowsnest::plugin::{
        Capabilities, HttpCapability, InstanceSpec, NoObserver, OciCapability,
    };
    use crowsnest_oci::{ClientConfig, HostAllowList, RegistryClient};
    use sha2::Digest as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // The token server listens on 127.0.0.2: another host than the registry's.
    let token_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let realm = format!("http://{}/token", token_listener.local_addr().unwrap());
    let token_requests = Arc::new(AtomicUsize::new(0));
    let counted = token_requests.clone();
    let token_app = axum::Router::new().route(
        "/token",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"token": "realm-token"})) }
        }),
    );
    tokio::spawn(async move { axum::serve(token_listener, token_app).await });

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", "0".repeat(64)),
            "size": 2
        },
        "layers": []
    })
    .to_string();
    let digest = format!(
        "sha256:{}",
        sha2::Sha256::digest(&manifest)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    let challenge = format!(r#"Bearer realm="{realm}",service="reg""#);
    let served_digest = digest.clone();
    let registry_app =
        axum::Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri| {
            let (challenge, manifest, digest) =
                (challenge.clone(), manifest.clone(), served_digest.clone());
            async move {
                let authorized = headers
                    .get("authorization")
                    .is_some_and(|value| value == "Bearer realm-token");
                if !authorized {
                    return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)])
                        .into_response();
                }
                if uri.path() != "/v2/team/app/manifests/1.0" {
                    return StatusCode::NOT_FOUND.into_response();
                }
                (
                    StatusCode::OK,
                    [
                        (
                            "content-type",
                            "application/vnd.oci.image.manifest.v1+json".to_string(),
                        ),
                        ("docker-content-digest", digest),
                    ],
                    manifest,
                )
                    .into_response()
            }
        });
    let registry_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_address = registry_listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(registry_listener, registry_app).await });

    let allow = Arc::new(HostAllowList::new([registry_address.as_str()]).unwrap());
    let http = HttpCapability::new(allow.clone(), reqwest::Client::new());
    let client = RegistryClient::new(ClientConfig::default()).unwrap();
    let spec = InstanceSpec {
        settings: vec![("url".into(), format!("http://{registry_address}"))],
        limits: limits(),
        capabilities: Capabilities {
            http: Some(http.clone()),
            oci: Some(OciCapability::new(&client, allow.clone())),
            ..Capabilities::default()
        },
        max_instances: 1,
        observer: Arc::new(NoObserver),
    };
    let registry = RegistryPlugin::new(&component("hostile-registry.wasm").await, "realm", spec)
        .await
        .unwrap();
    let location = registry.locate(&image("team/app")).await.unwrap();
    let resolved = registry
        .resolve(&location, "1.0", None, false)
        .await
        .unwrap();
    assert_eq!(
        resolved.digest, digest,
        "the token fetch at the realm worked"
    );
    assert_eq!(token_requests.load(Ordering::SeqCst), 1);

    // The same instance's raw HTTP to the realm (any method) is refused.
    for method in ["GET", "POST", "DELETE"] {
        let refused = http
            .send(
                "hostile-registry (registry realm)",
                &limits(),
                http_client::Request {
                    method: method.into(),
                    url: realm.clone(),
                    headers: Vec::new(),
                    body: None,
                    timeout_ms: None,
                },
            )
            .await
            .unwrap_err();
        match refused {
            http_client::HttpError::NotAllowed(detail) => {
                assert!(
                    detail.contains("127.0.0.2") && detail.contains("allow-list"),
                    "{detail}"
                )
            }
            other => panic!("{method} to the realm: expected not-allowed, got {other:?}"),
        }
    }
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "nothing reached the realm but the token fetch"
    );
}
