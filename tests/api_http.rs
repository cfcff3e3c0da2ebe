//! The HTTP API over real HTTP, against `crowsnest serve` started in-process on
//! loopback with a real Docker engine and a real registry (the control-plane
//! world of `crowsnest_testkit`): every route, auth failures, malformed JSON,
//! unknown ids, `/v1/update` with `host:port` images, the OpenAPI document
//! against the live routes, and single-flight scans.

use std::time::Duration;

use crowsnest::server::http::documented_routes;
use crowsnest_testkit::binary::Crowsnest;
use crowsnest_testkit::control_plane::{AppAndLib, Served};
use crowsnest_testkit::engine;
use crowsnest_testkit::wait;
use serde_json::Value;

const TOKEN: &str = "t0p-s3cret-token";

type Fixture = Served<crowsnest::server::RunningServer>;

/// `crowsnest serve` on the app-and-lib world, with a trigger that can never deliver.
async fn fixture(server_extra: &str) -> Fixture {
    let world = AppAndLib::start();
    let server = crowsnest::cli::serve::start(&world.serve_config(server_extra))
        .await
        .unwrap();
    let http = server.http_addr;
    world.served(server, http, Some(TOKEN))
}

/// Registry requests the server sent to our registry so far (from `/metrics`).
async fn registry_requests(fx: &Fixture) -> u64 {
    let (_, _, text) = fx.call("GET", "/metrics", Some(TOKEN), None).await;
    let origin = format!("origin=\"{}\"", fx.world.registry.origin());
    text.lines()
        .filter(|line| {
            line.starts_with("crowsnest_registry_requests_total{") && line.contains(&origin)
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn names(containers: &Value) -> Vec<String> {
    let mut names: Vec<String> = containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn error_of(text: &str) -> String {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` in {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_auth_errors_and_filters() {
    let _serial = engine::exclusive().await;
    let fx = fixture(&format!("token = \"{TOKEN}\"")).await;
    let both = fx.world.both();

    // Health needs no token; everything else does.
    let (status, _, text) = fx.call("GET", "/health", None, None).await;
    assert_eq!((status, text.as_str()), (200, "{\"status\":\"ok\"}"));
    for (method, path) in [
        ("GET", "/api/containers"),
        ("POST", "/api/containers/watch"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
        ("POST", "/v1/update"),
    ] {
        let (status, headers, text) = fx.call(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path} without token");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert!(error_of(&text).contains("missing bearer token"));
        let (status, headers, text) = fx.call(method, path, Some("wrong"), None).await;
        assert_eq!(status, 401, "{method} {path} with a wrong token");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        assert_eq!(error_of(&text), "invalid bearer token");
    }

    // Synchronous full rescan, WUD's shape: an array of container objects.
    let scanned = fx.json("POST", "/api/containers/watch", None, 200).await;
    assert_eq!(names(&scanned), both);
    let app = scanned
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == fx.world.app.id.as_str())
        .unwrap();
    assert_eq!(app["error"], Value::Null, "{app}");
    assert_eq!(app["updateAvailable"], true, "{app}");
    assert_eq!(app["updateKind"]["remoteValue"], "2.0");
    assert_eq!(app["updateKind"]["semverDiff"], "major");

    // Listing and filters.
    let app_only = vec![fx.world.app.name.clone()];
    let lib_only = vec![fx.world.lib.name.clone()];
    let none = Vec::<String>::new();
    let by_name = format!("/api/containers?name={}", fx.world.app.name);
    for (path, expected) in [
        ("/api/containers", &both),
        (by_name.as_str(), &app_only),
        ("/api/containers?watcher=local", &both),
        ("/api/containers?watcher=elsewhere", &none),
        ("/api/containers?updateAvailable=true", &both),
        ("/api/containers?updateAvailable=false", &none),
    ] {
        let listed = fx.json("GET", path, None, 200).await;
        assert_eq!(&names(&listed), expected, "GET {path}");
    }
    let (status, _, text) = fx
        .call(
            "GET",
            "/api/containers?updateAvailable=maybe",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(!error_of(&text).is_empty());

    // One container; unknown ids.
    let one = fx
        .json(
            "GET",
            &format!("/api/containers/{}", fx.world.lib.id),
            None,
            200,
        )
        .await;
    assert_eq!(one["name"], fx.world.lib.name.as_str());
    assert_eq!(one["updateKind"]["remoteValue"], "1.1");
    let missing = fx
        .json("GET", "/api/containers/0000deadbeef", None, 404)
        .await;
    assert!(missing["error"].as_str().unwrap().contains("0000deadbeef"));
    let watched = fx
        .json(
            "POST",
            &format!("/api/containers/{}/watch", fx.world.app.id),
            None,
            200,
        )
        .await;
    assert_eq!(watched["id"], fx.world.app.id.as_str());
    fx.json("POST", "/api/containers/0000deadbeef/watch", None, 404)
        .await;

    // Batch rescan by image: with and without registry host:port, and all.
    let host = fx.world.registry.host();
    let app_with_host = format!(r#"{{"images": ["{host}/cn/app"]}}"#);
    for (body, expected) in [
        (r#"{"images": ["cn/lib"]}"#, &lib_only),
        (app_with_host.as_str(), &app_only),
        (r#"{"all": true}"#, &both),
    ] {
        let report = fx.json("POST", "/api/scan", Some(body), 200).await;
        assert_eq!(&names(&report["containers"]), expected, "body {body}");
        assert!(
            report["stats"].is_object() && report["watcherErrors"].is_array(),
            "body {body}: {report}"
        );
    }
    for bad in [
        "{not json",
        r#"{"images": []}"#,
        r#"{"imagez": ["x"]}"#,
        r#"{"images": "cn/app"}"#,
        "",
    ] {
        let (status, _, text) = fx.call("POST", "/api/scan", Some(TOKEN), Some(bad)).await;
        assert_eq!(status, 400, "body {bad:?}: {text}");
        assert!(!error_of(&text).is_empty());
    }

    // Watchtower-compatible update, `host:port` images included; another
    // port is another registry.
    for (images, expected) in [
        (format!("{host}/cn/app"), &app_only),
        (format!("cn/lib,{host}/cn/app:1.0"), &both),
        ("127.0.0.1:1/cn/app".to_owned(), &none),
    ] {
        let path = format!("/v1/update?image={images}");
        let report = fx.json("POST", &path, None, 200).await;
        assert_eq!(&names(&report["containers"]), expected, "POST {path}");
    }

    // Configuration views, secrets masked.
    let watchers = fx.json("GET", "/api/watchers", None, 200).await;
    assert!(watchers["local"]["socket"].is_string());
    assert!(fx
        .json("GET", "/api/registries", None, 200)
        .await
        .is_array());
    let triggers = fx.json("GET", "/api/triggers", None, 200).await;
    assert_eq!(triggers[0]["name"], "hook");
    assert_eq!(triggers[0]["auto"], false);
    assert_eq!(triggers[0]["settings"]["url"], "********");
    assert!(!triggers.to_string().contains("/never"));
    let plugins = fx.json("GET", "/api/plugins", None, 200).await;
    let plugin_names: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        plugin_names.contains(&"webhook") && plugin_names.contains(&"oci"),
        "{plugin_names:?}"
    );

    // Manual trigger run: unknown trigger, and a delivery that cannot succeed.
    fx.json(
        "POST",
        &format!("/api/containers/{}/triggers/nope", fx.world.app.id),
        None,
        404,
    )
    .await;
    let failed = fx
        .json(
            "POST",
            &format!("/api/containers/{}/triggers/hook", fx.world.app.id),
            None,
            502,
        )
        .await;
    assert!(failed["error"].as_str().unwrap().contains("hook"));

    // Metrics. The `/v1/update` deliveries run in the background, so wait
    // (bounded) until they have all been counted before asserting.
    let needles = [
        "crowsnest_scans_total{origin=\"http\"}",
        "crowsnest_containers{watcher=\"local\",status=\"update\"} 2",
        // Three `/v1/update` calls (which run the `auto = false` triggers) and one manual run.
        "crowsnest_trigger_deliveries_total{trigger=\"hook\",outcome=\"failure\"} 4",
        "crowsnest_scan_duration_seconds_bucket",
    ];
    let (status, headers, metrics) = wait::settled(
        Duration::from_secs(5),
        || fx.call("GET", "/metrics", Some(TOKEN), None),
        |answer| needles.iter().all(|needle| answer.2.contains(needle)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for needle in needles {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    assert!(registry_requests(&fx).await > 0);

    // Unknown route and wrong method.
    let (status, _, text) = fx.call("GET", "/api/nothing", Some(TOKEN), None).await;
    assert_eq!(status, 404);
    error_of(&text);
    let (status, _, text) = fx.call("GET", "/api/scan", Some(TOKEN), None).await;
    assert_eq!(status, 405);
    error_of(&text);

    // The `crowsnest rescan` client against the live server.
    let crowsnest = Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"));
    let rescan = |args: &[&str]| {
        crowsnest
            .command(fx.world.store.path())
            .args(["rescan", "--server", &fx.base])
            .args(args)
            .output()
            .unwrap()
    };
    let output = rescan(&["--token", TOKEN, "--image", "cn/lib", "--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        names(&answer["containers"]),
        vec![fx.world.lib.name.clone()]
    );
    let output = rescan(&["--token", TOKEN]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.starts_with("NAME")
            && table.contains(&fx.world.app.name)
            && table.contains("update available"),
        "{table}"
    );
    let output = rescan(&[]);
    assert_eq!(output.status.code(), Some(1), "no token: refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));

    // The OpenAPI document lists exactly the routes, and each answers on the live server.
    let document = fx.json("GET", "/api/openapi.json", None, 200).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    let routes = documented_routes();
    let job = fx
        .json(
            "POST",
            "/api/scan?async=true",
            Some(r#"{"all": true}"#),
            202,
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        paths
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum::<usize>(),
        routes.len()
    );
    for (method, path) in &routes {
        let (method, path) = (method.as_str(), path.as_str());
        assert!(
            paths[path].get(method).is_some(),
            "{method} {path} missing from the document"
        );
        let id = if path == "/api/scans/{id}" {
            &job_id
        } else {
            &fx.world.lib.id
        };
        let live = path.replace("{id}", id).replace("{name}", "hook");
        let body = (path == "/api/scan").then_some(r#"{"all": true}"#);
        let (status, text) = if path == "/api/events" {
            // An endless stream: only its status is read.
            let response = fx
                .http
                .get(format!("{}{live}", fx.base))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), String::new())
        } else {
            let (status, _, text) = fx
                .call(&method.to_uppercase(), &live, Some(TOKEN), body)
                .await;
            (status, text)
        };
        assert!(
            status != 404 && status != 405,
            "{method} {live} answered {status}: {text}"
        );
        let documented: Vec<&String> = paths[path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert!(
            documented.contains(&&status.to_string()),
            "{method} {path} answered undocumented {status}"
        );
    }
    fx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_token_routes_are_open_but_v1_update_refuses() {
    let _serial = engine::exclusive().await;
    let fx = fixture("").await;
    let (status, _, text) = fx.call("GET", "/api/containers", None, None).await;
    assert_eq!((status, text.as_str()), (200, "[]"));
    let (status, _, text) = fx.call("POST", "/v1/update?image=cn/app", None, None).await;
    assert_eq!(status, 403);
    assert!(error_of(&text).contains("token"));
    let (status, _, _) = fx.call("POST", "/v1/update", Some("anything"), None).await;
    assert_eq!(status, 403);
    fx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_full_rescans_share_one_scan() {
    let _serial = engine::exclusive().await;
    let fx = fixture(&format!("token = \"{TOKEN}\"")).await;
    // One scan alone, for the registry requests one scan costs (tag cache is off).
    fx.json("POST", "/api/containers/watch", None, 200).await;
    let before_single = registry_requests(&fx).await;
    fx.json("POST", "/api/containers/watch", None, 200).await;
    let one_scan = registry_requests(&fx).await - before_single;
    assert!(one_scan > 0);

    let scans_before = fx.server.state.coordinator.started_scans();
    let before = registry_requests(&fx).await;
    let answers = futures::future::join_all(
        (0..10).map(|_| fx.call("POST", "/api/containers/watch", Some(TOKEN), None)),
    )
    .await;
    let after = registry_requests(&fx).await;
    assert_eq!(
        fx.server.state.coordinator.started_scans() - scans_before,
        1,
        "10 requests, one scan"
    );
    assert_eq!(
        after - before,
        one_scan,
        "one scan's worth of registry requests"
    );
    let first: Value = serde_json::from_str(&answers[0].2).unwrap();
    assert_eq!(first.as_array().unwrap().len(), 2);
    for (status, _, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            first,
            "every caller gets the full answer"
        );
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    fx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_list_is_built_once_per_store_change() {
    let _serial = engine::exclusive().await;
    let fx = fixture("").await;
    fx.json("POST", "/api/containers/watch", None, 200).await;
    let state = &fx.server.state;
    let cached = state.containers().await.unwrap();
    let (status, _, first) = fx.call("GET", "/api/containers", None, None).await;
    let (_, _, second) = fx.call("GET", "/api/containers", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(first, second, "no change, same body");
    assert_eq!(first.as_bytes(), &cached.json[..]);
    assert_eq!(
        state.containers().await.unwrap().json.as_ptr(),
        cached.json.as_ptr(),
        "served from the one cached buffer, not rebuilt per request"
    );
    let listed: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // A store change (the container forgotten, as a `destroy` event does) is visible at once.
    let gone = listed[0]["id"].as_str().unwrap().to_owned();
    state.coordinator.forget(&gone).await.unwrap();
    let (_, _, third) = fx.call("GET", "/api/containers", None, None).await;
    let listed: Value = serde_json::from_str(&third).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&gone.as_str()));
    assert_ne!(
        state.containers().await.unwrap().json.as_ptr(),
        cached.json.as_ptr()
    );
    fx.server.shutdown().await;
}
