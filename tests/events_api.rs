//! Live events, batch-scan jobs and the alias routes over real HTTP, against
//! `crowsnest serve` in-process on loopback with a real Docker engine and a
//! real registry (the control-plane world): `GET /api/events` read by a real
//! streaming client (order, `Last-Event-ID` reconnection, auth), `POST
//! /api/scan?async=true` in both body shapes with unknown images and bad
//! bodies, `GET /api/scans/{id}`, `/v1/check`, `/v1/containers`, `/livez`
//! and `/readyz`.

use std::time::Duration;

use crowsnest_testkit::control_plane::{AppAndLib, Served};
use crowsnest_testkit::engine;
use futures::StreamExt;
use serde_json::Value;

const TOKEN: &str = "ev3nts-t0ken";

type Fixture = Served<crowsnest::server::RunningServer>;

/// `serve` on the app-and-lib world with a trigger that can never deliver.
async fn fixture() -> Fixture {
    let world = AppAndLib::start();
    let server = crowsnest::cli::serve::start(&world.serve_config(&format!("token = \"{TOKEN}\"")))
        .await
        .unwrap();
    let http = server.http_addr;
    world.served(server, http, Some(TOKEN))
}

/// Opens `/api/events` with the token, resuming after `after`.
async fn events(fx: &Fixture, after: Option<u64>) -> SseReader {
    let mut request = fx
        .http
        .get(format!("{}/api/events", fx.base))
        .bearer_auth(TOKEN);
    if let Some(after) = after {
        request = request.header("Last-Event-ID", after.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    SseReader {
        body: Box::pin(response.bytes_stream()),
        buffer: String::new(),
    }
}

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// A minimal SSE parser over a streaming response body (comments skipped).
struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> Message {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        message.id = Some(value.trim().parse().unwrap());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        message.event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() && message.id.is_none() {
                    continue; // keep-alive comment
                }
                message.data = serde_json::from_str(&data).unwrap();
                return message;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.body.next())
                .await
                .expect("no SSE message within 60 s")
                .expect("the event stream ended")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Messages up to and including the first of kind `last`.
    async fn until(&mut self, last: &str) -> Vec<Message> {
        let mut messages = Vec::new();
        loop {
            let message = self.next().await;
            let done = message.event == last;
            messages.push(message);
            if done {
                return messages;
            }
        }
    }
}

fn kinds(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.event.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_order_reconnection_and_auth() {
    let _serial = engine::exclusive().await;
    let fx = fixture().await;

    // Auth and a bad Last-Event-ID, as a table: (token, Last-Event-ID, status).
    let cases: [(Option<&str>, Option<&str>, u16); 4] = [
        (None, None, 401),
        (Some("wrong"), None, 401),
        (Some(TOKEN), Some("abc"), 400),
        (Some(TOKEN), Some("-1"), 400),
    ];
    for (token, last_id, status) in cases {
        let mut request = fx.http.get(format!("{}/api/events", fx.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(last_id) = last_id {
            request = request.header("Last-Event-ID", last_id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{token:?} {last_id:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }

    // A full scan, seen live in order.
    let mut live = events(&fx, None).await;
    let (status, _) = fx.call_json("POST", "/api/containers/watch", None).await;
    assert_eq!(status, 200);
    let first = live.until("scan-finished").await;
    let ids: Vec<u64> = first.iter().map(|m| m.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids {ids:?}");
    assert_eq!(kinds(&first).first(), Some(&"scan-started"), "{first:?}");
    assert!(kinds(&first).contains(&"scan-progress"), "{first:?}");
    let found: Vec<&str> = first
        .iter()
        .filter(|m| m.event == "update-found")
        .map(|m| m.data["data"]["name"].as_str().unwrap())
        .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(found_sorted, fx.world.both(), "{first:?}");
    let finished = &first.last().unwrap().data;
    assert_eq!(finished["kind"], "scan-finished");
    assert_eq!(finished["data"]["updates"], 2, "{finished}");
    for message in &first {
        assert_eq!(message.data["id"].as_u64(), message.id, "{message:?}");
        assert_eq!(message.data["kind"].as_str(), Some(message.event.as_str()));
    }

    // Reconnecting after the first event replays the rest, identically.
    drop(live);
    let mut resumed = events(&fx, Some(ids[0])).await;
    let mut replayed = Vec::new();
    for _ in 1..first.len() {
        replayed.push(resumed.next().await);
    }
    assert_eq!(replayed, first[1..].to_vec());

    // A manual trigger run that cannot deliver, then a rescan of one
    // container: both reach the resumed stream in order.
    let app = &fx.world.app.id;
    let (status, body) = fx
        .call_json(
            "POST",
            &format!("/api/containers/{app}/triggers/hook"),
            None,
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let failed = resumed.until("trigger-failed").await;
    let failed = failed.last().unwrap();
    assert_eq!(failed.data["data"]["trigger"], "hook");
    assert_eq!(
        failed.data["data"]["containers"][0].as_str(),
        Some(app.as_str())
    );
    assert!(failed.data["data"]["error"].is_string(), "{failed:?}");
    let (status, _) = fx
        .call_json("POST", &format!("/api/containers/{app}/watch"), None)
        .await;
    assert_eq!(status, 200);
    let changed = resumed.until("container-updated").await;
    let changed = changed.last().unwrap();
    assert!(changed.id > failed.id);
    assert_eq!(changed.data["data"]["id"].as_str(), Some(app.as_str()));
    assert_eq!(changed.data["data"]["updateAvailable"], true);

    fx.server.shutdown().await;
}

/// Polls `GET /api/scans/{id}` until the job is finished.
async fn finished_job(fx: &Fixture, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = fx.call_json("GET", &format!("/api/scans/{id}"), None).await;
        assert_eq!(status, 200, "{job}");
        if job["state"] == "finished" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_scan_jobs_aliases_and_probes() {
    let _serial = engine::exclusive().await;
    let fx = fixture().await;
    let (http, base) = (&fx.http, fx.base.as_str());

    // Probes are open; ready only after a scan.
    let status = |path: &'static str| async move {
        http.get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("/livez").await, 200);
    assert_eq!(status("/readyz").await, 503);

    let app = fx.world.app_image.clone();
    let app_path = app.split_once('/').unwrap().1.to_owned(); // cn/app:1.0
    let (app_id, lib_id) = (fx.world.app.id.clone(), fx.world.lib.id.clone());
    // (body, expected per-image (image, status, containers, updates)).
    type Expected = Vec<(String, &'static str, Vec<String>, u64)>;
    let cases: Vec<(String, Expected)> = vec![
        (
            format!(r#"{{"images": ["{app}"]}}"#),
            vec![(app.clone(), "success", vec![app_id.clone()], 1)],
        ),
        (
            r#"{"image_type": "private_image", "image_info_list": [
                {"namespace": "cn", "image_name": "app", "image_version": "1.0"},
                {"namespace": "cn", "image_name": "lib"},
                {"namespace": "cn", "image_name": "nope", "image_version": "9"}]}"#
                .to_owned(),
            vec![
                (app_path.clone(), "success", vec![app_id.clone()], 1),
                ("cn/lib".into(), "success", vec![lib_id.clone()], 1),
                ("cn/nope:9".into(), "failed", vec![], 0),
            ],
        ),
        (
            r#"{"operate_all": true}"#.to_owned(),
            vec![
                (app.clone(), "success", vec![app_id.clone()], 1),
                (
                    fx.world.lib_image.clone(),
                    "success",
                    vec![lib_id.clone()],
                    1,
                ),
            ],
        ),
    ];
    for (body, expected) in &cases {
        let (code, job) = fx
            .call_json("POST", "/api/scan?async=true", Some(body))
            .await;
        assert_eq!(code, 202, "{body}: {job}");
        let id = job["id"].as_str().unwrap();
        assert_eq!(job["state"], "running");
        if !expected.is_empty() && job["operateAll"] == false {
            assert!(job["images"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["status"] == "unscan" || i["status"] == "scanning"));
        }
        let job = finished_job(&fx, id).await;
        assert!(job["finishedAt"].is_string());
        let mut images: Vec<(String, String, Vec<String>, u64)> = job["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["image"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                    i["containers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_owned())
                        .collect(),
                    i["updates"].as_u64().unwrap(),
                )
            })
            .collect();
        images.sort();
        let mut wanted: Vec<(String, String, Vec<String>, u64)> = expected
            .iter()
            .map(|(i, s, c, u)| (i.clone(), (*s).to_owned(), c.clone(), *u))
            .collect();
        wanted.sort();
        assert_eq!(images, wanted, "{body}: {job}");
        for image in job["images"].as_array().unwrap() {
            let failed = image["status"] == "failed";
            assert_eq!(image["error"].is_string(), failed, "{image}");
            if failed {
                let error = image["error"].as_str().unwrap();
                assert!(
                    error.contains("no watched container runs `cn/nope:9`"),
                    "{error}"
                );
            }
        }
    }
    // The HSS entry keeps its fields.
    let (code, job) = fx
        .call_json(
            "POST",
            "/api/scan",
            Some(r#"{"image_info_list": [{"namespace": "cn", "image_name": "app", "image_version": "1.0"}]}"#),
        )
        .await;
    assert_eq!(code, 200, "{job}");
    assert_eq!(job["state"], "finished");
    let entry = &job["images"][0];
    assert_eq!(
        (
            &entry["namespace"],
            &entry["imageName"],
            &entry["imageVersion"],
            &entry["status"]
        ),
        (
            &Value::from("cn"),
            &Value::from("app"),
            &Value::from("1.0"),
            &Value::from("success")
        )
    );

    // Bad bodies and queries: 400 naming the field.
    let bad: [(&str, &str, &str); 6] = [
        (
            "/api/scan?async=true",
            r#"{"operate_all": false}"#,
            "image_info_list",
        ),
        (
            "/api/scan?async=true",
            r#"{"image_info_list": [{"namespace": "cn"}]}"#,
            "image_info_list[0]",
        ),
        (
            "/api/scan?async=true",
            r#"{"image_info_list": [{"image_name": 5}]}"#,
            "image_info_list[0].image_name",
        ),
        ("/api/scan", r#"{"images": []}"#, "images"),
        ("/api/scan", "{", "body"),
        ("/api/scan?async=maybe", r#"{"all": true}"#, "async"),
    ];
    for (path, body, field) in bad {
        let (code, answer) = fx.call_json("POST", path, Some(body)).await;
        assert_eq!(code, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(field),
            "{body}: `{error}` does not name `{field}`"
        );
    }
    let (code, answer) = fx.call_json("GET", "/api/scans/scan-0-none", None).await;
    assert_eq!(code, 404, "{answer}");

    // Aliases: /v1/containers is /api/containers; /v1/check scans.
    let (_, containers) = fx.call_json("GET", "/api/containers", None).await;
    let (code, alias) = fx.call_json("GET", "/v1/containers", None).await;
    assert_eq!((code, &alias), (200, &containers));
    let (code, report) = fx
        .call_json(
            "GET",
            &format!("/v1/check?image={}", fx.world.lib_image),
            None,
        )
        .await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["containers"].as_array().unwrap().len(), 1);
    assert_eq!(status("/readyz").await, 200);

    fx.server.shutdown().await;
}
