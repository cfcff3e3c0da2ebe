//! Client behaviour against tiny in-process HTTP servers on 127.0.0.1: 429 and
//! `Retry-After`, pagination links, redirects, HEAD fallbacks, policies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::protocol::validate_manifest_reference;
use crate::{Auth, HostAllowList, MEDIA_TYPE_OCI_INDEX};
use crate::{Location, Platform, MEDIA_TYPE_OCI_MANIFEST, SCOPES_PER_TOKEN};
use sha2::{Digest as _, Sha256};

/// A request as the canned server saw it.
#[derive(Debug, Clone)]
struct SeenRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl SeenRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn canned(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Canned {
    Canned {
        status,
        headers: headers
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        body: body.into(),
    }
}

type Handler = dyn Fn(&SeenRequest) -> Canned + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server answering from a closure.
struct CannedServer {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl CannedServer {
    async fn start(handler: impl Fn(&SeenRequest) -> Canned + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen_by_server = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen_by_server);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buffer).into_owned();
                    let mut lines = text.split("\r\n");
                    let mut request_line = lines.next().unwrap_or_default().split(' ');
                    let request = SeenRequest {
                        method: request_line.next().unwrap_or_default().to_string(),
                        target: request_line.next().unwrap_or_default().to_string(),
                        headers: lines
                            .take_while(|line| !line.is_empty())
                            .filter_map(|line| line.split_once(':'))
                            .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
                            .collect(),
                    };
                    seen.lock().unwrap().push(request.clone());
                    let answer = handler(&request);
                    let mut head = format!(
                        "HTTP/1.1 {} Canned\r\nContent-Length: {}\r\nConnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    );
                    for (key, value) in &answer.headers {
                        head.push_str(&format!("{key}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes()).await;
                    if request.method != "HEAD" {
                        let _ = stream.write_all(&answer.body).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { address, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path() == path).count()
    }
}

fn test_client() -> RegistryClient {
    RegistryClient::new(ClientConfig {
        max_retry_wait: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })
    .unwrap()
}

fn tags_json(tags: &[&str]) -> String {
    serde_json::json!({ "name": "app", "tags": tags }).to_string()
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let attempts = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&attempts);
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => {
            let mut attempts = counter.lock().unwrap();
            *attempts += 1;
            if *attempts == 1 {
                canned(
                    429,
                    &[("Retry-After", "1")],
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                )
            } else {
                canned(
                    200,
                    &[("Content-Type", "application/json")],
                    tags_json(&["1.0"]),
                )
            }
        }
    })
    .await;
    let client = test_client();
    let started = Instant::now();
    let tags = client
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(tags, ["1.0"]);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count("/v2/app/tags/list"), 2);
    let counts = client.counters().snapshot();
    let origin = server.url();
    assert!(counts
        .iter()
        .any(|c| c.origin == origin && c.status == Some(429) && c.count == 1));
    assert!(counts
        .iter()
        .any(|c| c.origin == origin && c.status == Some(200) && c.count == 2));
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let attempts = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&attempts);
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => {
            let mut attempts = counter.lock().unwrap();
            *attempts += 1;
            if *attempts == 1 {
                let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
                canned(429, &[("Retry-After", date.as_str())], "")
            } else {
                canned(200, &[], tags_json(&["a"]))
            }
        }
    })
    .await;
    let started = Instant::now();
    let tags = test_client()
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(tags, ["a"]);
    // Second-granular dates: at least one second passed.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_beyond_the_limit_fails_at_once() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(
            429,
            &[("Retry-After", "3600")],
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#,
        ),
    })
    .await;
    let error = test_client()
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::TooManyRequests(m) if m.contains("pull rate limit") && m.contains("3600")),
        "{error:?}"
    );
    assert_eq!(server.count("/v2/app/tags/list"), 1);
}

#[tokio::test]
async fn retries_are_bounded_without_retry_after() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(429, &[], ""),
    })
    .await;
    let client = RegistryClient::new(ClientConfig {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        ..ClientConfig::default()
    })
    .unwrap();
    let error = client
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::TooManyRequests(m) if m.contains("after 2 retries")),
        "{error:?}"
    );
    assert_eq!(server.count("/v2/app/tags/list"), 3);
}

#[tokio::test]
async fn relative_next_links_are_followed() {
    let server = CannedServer::start(|request| match request.target.as_str() {
        "/v2/" => canned(200, &[], "{}"),
        "/v2/team/app/tags/list?n=2" => canned(
            200,
            &[("Link", r#"</v2/team/app/tags/list?n=2&last=b>; rel="next""#)],
            tags_json(&["a", "b"]),
        ),
        // A link relative to the request path, without leading slash.
        "/v2/team/app/tags/list?n=2&last=b" => canned(
            200,
            &[("Link", r#"<list?n=2&last=d>; rel="next""#)],
            tags_json(&["c", "d"]),
        ),
        "/v2/team/app/tags/list?n=2&last=d" => canned(200, &[], tags_json(&["e"])),
        other => canned(500, &[], format!("unexpected {other}")),
    })
    .await;
    let client = RegistryClient::new(ClientConfig {
        tag_page_size: Some(2),
        ..ClientConfig::default()
    })
    .unwrap();
    let tags = client
        .list_tags(&Location::new(server.url(), "team/app"), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn cross_origin_next_link_is_refused_and_never_followed() {
    let elsewhere = CannedServer::start(|_| canned(200, &[], tags_json(&["stolen"]))).await;
    let link = format!(
        "<{}/v2/app/tags/list?last=a>; rel=\"next\"",
        elsewhere.url()
    );
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], ""),
        _ => canned(200, &[("Link", link.as_str())], tags_json(&["a"])),
    })
    .await;
    let auth = Auth::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    let error = test_client()
        .list_tags(&Location::new(server.url(), "app"), &auth)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol(m) if m.contains("leaves the registry origin")),
        "{error:?}"
    );
    assert!(elsewhere.requests().is_empty());
    // The registry itself did get the credentials.
    let sent = server.requests();
    let tags_request = sent
        .iter()
        .find(|r| r.path() == "/v2/app/tags/list")
        .unwrap();
    assert!(tags_request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}

#[tokio::test]
async fn pagination_loops_are_detected() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(
            200,
            &[("Link", r#"</v2/app/tags/list>; rel="next""#)],
            tags_json(&["a"]),
        ),
    })
    .await;
    let error = test_client()
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol(m) if m.contains("loops")),
        "{error:?}"
    );
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"CONFIG_DIGEST","size":1},"layers":[]}"#;
const CONFIG: &str = r#"{"created":"2024-05-06T07:08:09Z","architecture":"amd64","os":"linux"}"#;

fn sha256(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[tokio::test]
async fn credentials_are_not_sent_across_a_redirect() {
    let blob_host = CannedServer::start(|_| canned(200, &[], CONFIG)).await;
    let blob_url = format!("{}/blob", blob_host.url());
    let manifest = MANIFEST.replace("CONFIG_DIGEST", &sha256(CONFIG));
    let manifest_digest = sha256(&manifest);
    let server = CannedServer::start(move |request| {
        if request.path() != "/v2/" && request.header("authorization").is_none() {
            return canned(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], "");
        }
        match request.path() {
            "/v2/" => canned(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], ""),
            path if path.starts_with("/v2/app/manifests/") => canned(
                200,
                &[
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                    ("Docker-Content-Digest", manifest_digest.as_str()),
                ],
                manifest.clone(),
            ),
            path if path.starts_with("/v2/app/blobs/") => {
                canned(307, &[("Location", blob_url.as_str())], "")
            }
            _ => canned(404, &[], ""),
        }
    })
    .await;
    let auth = Auth::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    let info = test_client()
        .resolve(
            &Location::new(server.url(), "app"),
            "1.0",
            &auth,
            None,
            true,
        )
        .await
        .unwrap();
    assert_eq!(info.created.as_deref(), Some("2024-05-06T07:08:09Z"));
    assert_eq!(info.media_type, MEDIA_TYPE_OCI_MANIFEST);
    let blob_requests = blob_host.requests();
    assert_eq!(blob_requests.len(), 1);
    assert_eq!(blob_requests[0].header("authorization"), None);
}

#[tokio::test]
async fn a_redirect_off_the_allow_list_is_refused_before_it_is_followed() {
    let elsewhere = CannedServer::start(|_| canned(200, &[], tags_json(&["stolen"]))).await;
    let target = format!("{}/v2/app/tags/list", elsewhere.url());
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(307, &[("Location", target.as_str())], ""),
    })
    .await;
    let allowed = server.url().trim_start_matches("http://").to_string();
    let policy = Arc::new(HostAllowList::new([allowed.as_str()]).unwrap());
    let client = test_client().with_policy(policy);
    let error = client
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    match &error {
        RegistryError::NotAllowed(message) => {
            assert!(message.contains(&elsewhere.url()), "{message}");
            assert!(message.contains("redirect"), "{message}");
        }
        other => panic!("expected not-allowed, got {other:?}"),
    }
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn head_without_digest_falls_back_to_get_and_hashes_the_body() {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [
            {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": sha256("att"), "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": sha256("arm"), "size": 1,
             "platform": {"architecture": "arm64", "os": "linux"}},
        ]
    })
    .to_string();
    let body = index.clone();
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(200, &[("Content-Type", "application/json")], body.clone()),
    })
    .await;
    let info = test_client()
        .resolve(
            &Location::new(server.url(), "app"),
            "latest",
            &Auth::Anonymous,
            Some(&Platform::new("linux", "arm64")),
            false,
        )
        .await
        .unwrap();
    assert_eq!(info.digest, sha256(&index));
    assert_eq!(info.media_type, MEDIA_TYPE_OCI_INDEX);
    assert_eq!(info.platform_digest, Some(sha256("arm")));
    let methods: Vec<_> = server
        .requests()
        .iter()
        .filter(|r| r.path() != "/v2/")
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}

#[tokio::test]
async fn missing_platform_is_manifest_unknown() {
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [{"digest": sha256("x"), "platform": {"architecture": "amd64", "os": "linux"}}]
    })
    .to_string();
    let digest = sha256(&index);
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(
            200,
            &[
                ("Content-Type", MEDIA_TYPE_OCI_INDEX),
                ("Docker-Content-Digest", digest.as_str()),
            ],
            index.clone(),
        ),
    })
    .await;
    let error = test_client()
        .resolve(
            &Location::new(server.url(), "app"),
            "1",
            &Auth::Anonymous,
            Some(&Platform::new("linux", "riscv64")),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::ManifestUnknown(m) if m.contains("linux/riscv64")),
        "{error:?}"
    );
}

#[tokio::test]
async fn digest_mismatch_is_a_protocol_error() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(
            200,
            &[("Content-Type", MEDIA_TYPE_OCI_MANIFEST)],
            r#"{"schemaVersion":2}"#,
        ),
    })
    .await;
    let wanted = sha256("something else");
    let error = test_client()
        .resolve(
            &Location::new(server.url(), "app"),
            &wanted,
            &Auth::Anonymous,
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol(m) if m.contains("does not hash")),
        "{error:?}"
    );
}

#[tokio::test]
async fn bearer_tokens_are_cached_and_scoped() {
    let token_server = CannedServer::start(|request| match request.path() {
        "/token" => canned(200, &[], r#"{"access_token":"tok-1","expires_in":300}"#),
        _ => canned(404, &[], ""),
    })
    .await;
    let realm_url = token_server.url();
    let registry = CannedServer::start(move |request| {
        let authorized = request.header("authorization") == Some("Bearer tok-1");
        if request.path() == "/v2/" || !authorized {
            let challenge = format!(r#"Bearer realm="{realm_url}/token",service="svc""#);
            return canned(401, &[("WWW-Authenticate", challenge.as_str())], "");
        }
        canned(200, &[], tags_json(&["x"]))
    })
    .await;
    let policy = Arc::new(HostAllowList::new([registry.address.to_string()]).unwrap());
    let client = test_client().with_policy(policy.clone());
    let location = Location::new(registry.url(), "org/app");
    for _ in 0..3 {
        assert_eq!(
            client.list_tags(&location, &Auth::Anonymous).await.unwrap(),
            ["x"]
        );
    }
    let token_requests: Vec<_> = token_server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(token_requests.len(), 1);
    assert_eq!(
        token_requests[0].target,
        "/token?service=svc&scope=repository%3Aorg%2Fapp%3Apull"
    );
    assert_eq!(registry.count("/v2/"), 1);
    assert_eq!(client.realm_origins(&registry.url()), [token_server.url()]);
    assert_eq!(policy.learned_realms(), [token_server.url()]);
    // The token came from the realm, yet the realm is not on the allow-list.
    let realm = url::Url::parse(&format!("{}/token", token_server.url())).unwrap();
    assert!(!policy.allows(&realm));
}

#[tokio::test]
async fn policy_refuses_other_hosts_before_any_request() {
    let server = CannedServer::start(|_| canned(200, &[], tags_json(&[]))).await;
    let policy = Arc::new(HostAllowList::new(["127.0.0.1:1"]).unwrap());
    let client = test_client().with_policy(policy);
    let error = client
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotAllowed(_)), "{error:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn error_codes_from_real_responses() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        "/v2/gone/tags/list" => canned(404, &[], r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#),
        "/v2/denied/tags/list" => canned(403, &[], ""),
        "/v2/broken/tags/list" => canned(200, &[], "not json"),
        _ => canned(404, &[], r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
    })
    .await;
    let client = test_client();
    let list = |repository: &'static str| {
        let client = client.clone();
        let url = server.url();
        async move {
            client
                .list_tags(&Location::new(url, repository), &Auth::Anonymous)
                .await
        }
    };
    assert!(matches!(
        list("gone").await,
        Err(RegistryError::NameUnknown(_))
    ));
    assert!(matches!(
        list("denied").await,
        Err(RegistryError::Denied(_))
    ));
    assert!(matches!(
        list("broken").await,
        Err(RegistryError::Protocol(_))
    ));
    let missing = client
        .resolve(
            &Location::new(server.url(), "app"),
            "nope",
            &Auth::Anonymous,
            None,
            false,
        )
        .await;
    assert!(
        matches!(missing, Err(RegistryError::ManifestUnknown(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = tags_json(&["x"; 100]);
    let server = CannedServer::start(move |request| match request.path() {
        "/v2/" => canned(200, &[], "{}"),
        _ => canned(200, &[], big.clone()),
    })
    .await;
    let client = RegistryClient::new(ClientConfig {
        max_tag_list_bytes: 64,
        ..ClientConfig::default()
    })
    .unwrap();
    let error = client
        .list_tags(&Location::new(server.url(), "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol(m) if m.contains("64-byte limit")),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn concurrency_per_registry_is_bounded() {
    let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
    let tracker = Arc::clone(&in_flight);
    // The handler is synchronous: measure overlap with a blocking sleep on the server task.
    let server = CannedServer::start(move |request| {
        if request.path() == "/v2/" {
            return canned(200, &[], "{}");
        }
        {
            let mut state = tracker.lock().unwrap();
            state.0 += 1;
            state.1 = state.1.max(state.0);
        }
        std::thread::sleep(Duration::from_millis(100));
        tracker.lock().unwrap().0 -= 1;
        canned(200, &[], tags_json(&["t"]))
    })
    .await;
    let client = RegistryClient::new(ClientConfig {
        max_concurrent_requests_per_registry: 2,
        ..ClientConfig::default()
    })
    .unwrap();
    let location = Location::new(server.url(), "app");
    let calls = (0..6).map(|_| {
        let client = client.clone();
        let location = location.clone();
        async move { client.list_tags(&location, &Auth::Anonymous).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap(), ["t"]);
    }
    let max_in_flight = in_flight.lock().unwrap().1;
    assert_eq!(max_in_flight, 2, "requests in flight at most");
}

#[test]
fn registry_urls() {
    assert_eq!(
        parse_registry_url("registry.example.com").unwrap().as_str(),
        "https://registry.example.com/"
    );
    assert_eq!(
        parse_registry_url("http://127.0.0.1:5001")
            .unwrap()
            .as_str(),
        "http://127.0.0.1:5001/"
    );
    assert_eq!(
        parse_registry_url("https://r.io/v2/").unwrap().as_str(),
        "https://r.io/"
    );
    assert_eq!(
        parse_registry_url("http://[::1]:5000").unwrap().as_str(),
        "http://[::1]:5000/"
    );
    for bad in [
        "ftp://r.io",
        "https://u:p@r.io",
        "https://r.io/prefix",
        "https://r.io/?q=1",
        "http://",
    ] {
        assert!(
            matches!(parse_registry_url(bad), Err(RegistryError::Unsupported(_))),
            "{bad}"
        );
    }
}

#[test]
fn manifest_references_are_validated() {
    assert!(validate_manifest_reference("1.25-alpine").is_ok());
    assert!(validate_manifest_reference(&sha256("x")).is_ok());
    assert!(validate_manifest_reference("../../etc").is_err());
    assert!(validate_manifest_reference("sha256:short").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_first_requests_share_one_ping() {
    let server = CannedServer::start(|request| match request.path() {
        "/v2/" => {
            // A slow ping: every racing worker arrives while it is in flight.
            std::thread::sleep(Duration::from_millis(50));
            canned(200, &[], "{}")
        }
        _ => canned(200, &[], tags_json(&["t"])),
    })
    .await;
    let client = test_client();
    let calls = (0..8).map(|index| {
        let client = client.clone();
        let location = Location::new(server.url(), format!("app{index}"));
        async move { client.list_tags(&location, &Auth::Anonymous).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap(), ["t"]);
    }
    assert_eq!(server.count("/v2/"), 1, "one shared /v2/ challenge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_window_grows_on_a_fast_registry_and_halves_on_429() {
    let throttling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let throttle = Arc::clone(&throttling);
    let server = CannedServer::start(move |request| {
        if request.path() != "/v2/" && throttle.load(std::sync::atomic::Ordering::SeqCst) {
            return canned(429, &[("Retry-After", "0")], "");
        }
        canned(200, &[], tags_json(&["t"]))
    })
    .await;
    let client = RegistryClient::new(ClientConfig {
        max_concurrent_requests_per_registry: 16,
        initial_concurrent_requests_per_registry: 4,
        max_retries: 0,
        ..ClientConfig::default()
    })
    .unwrap();
    let url = server.url();
    assert_eq!(client.window_limit(&url), Some(4));
    // Twelve quick answers reach the ceiling; a loaded machine's latency
    // spikes hold growth back for a while, so allow more rounds than that.
    for index in 0..400 {
        let location = Location::new(&url, format!("app{index}"));
        client.list_tags(&location, &Auth::Anonymous).await.unwrap();
        if client.window_limit(&url) == Some(16) {
            break;
        }
    }
    assert_eq!(
        client.window_limit(&url),
        Some(16),
        "slow start to the ceiling"
    );
    throttling.store(true, std::sync::atomic::Ordering::SeqCst);
    let error = client
        .list_tags(&Location::new(&url, "app"), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::TooManyRequests(_)),
        "{error:?}"
    );
    assert_eq!(
        client.window_limit(&url),
        Some(8),
        "one 429 halves the window"
    );
    // Docker Hub and GHCR start small whatever the configured start.
    assert_eq!(
        client
            .config()
            .window_limits("https://registry-1.docker.io")
            .start,
        2
    );
    assert_eq!(client.config().window_limits("https://ghcr.io").ceiling, 8);
}

/// A token realm on the registry's own origin (Harbor, Quay) and as many
/// concurrent 401s as request slots: the 401s must release their slots
/// before the tokens are fetched, or every slot waits for itself.
#[tokio::test]
async fn same_origin_realm_with_concurrent_401s_does_not_deadlock() {
    let own_url: Arc<std::sync::OnceLock<String>> = Arc::default();
    let own = Arc::clone(&own_url);
    const CONCURRENT: usize = 4;
    let registry = CannedServer::start(move |request| {
        let realm = own.get().cloned().unwrap_or_default();
        if request.path() == "/service/token" {
            // The token is good for what its scope asked.
            let token = if request.target.contains("push") { "push" } else { "pull" };
            return canned(200, &[], format!(r#"{{"token":"{token}","expires_in":300}}"#));
        }
        if request.path() == "/v2/" {
            let challenge = format!(r#"Bearer realm="{realm}/service/token",service="svc""#);
            return canned(401, &[("WWW-Authenticate", challenge.as_str())], "");
        }
        // Each repository wants a wider scope than the /v2/ challenge gave:
        // every first request meets a 401 naming it.
        if request.header("authorization") != Some("Bearer push") {
            let repository = request.path().trim_start_matches("/v2/").trim_end_matches("/tags/list");
            let challenge = format!(
                r#"Bearer realm="{realm}/service/token",service="svc",scope="repository:{repository}:pull,push""#
            );
            return canned(401, &[("WWW-Authenticate", challenge.as_str())], "");
        }
        canned(200, &[], tags_json(&["x"]))
    })
    .await;
    own_url.set(registry.url()).unwrap();
    let client = RegistryClient::new(ClientConfig {
        max_concurrent_requests_per_registry: 2,
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })
    .unwrap();
    let lookups = (0..CONCURRENT).map(|i| {
        let client = client.clone();
        let location = Location::new(registry.url(), format!("org/app{i}"));
        async move { client.list_tags(&location, &Auth::Anonymous).await }
    });
    let answers = tokio::time::timeout(Duration::from_secs(15), futures::future::join_all(lookups))
        .await
        .expect("no deadlock: every lookup finished");
    for answer in answers {
        assert_eq!(answer.unwrap(), ["x"]);
    }
}

/// The `scope` parameters of a token request, in order.
fn scopes_of(request: &SeenRequest) -> Vec<String> {
    let query = request.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "scope")
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// A registry challenging every request without `Bearer <accepted(repository)>`
/// to ask `token_server`; `insufficient_scope` when a token was sent.
async fn bearer_registry(
    token_server: &CannedServer,
    accepted: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
) -> CannedServer {
    let realm_url = token_server.url();
    CannedServer::start(move |request| {
        let repository = request
            .path()
            .strip_prefix("/v2/")
            .and_then(|rest| rest.strip_suffix("/tags/list"))
            .unwrap_or_default()
            .to_string();
        let token = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        match token {
            Some(token) if !repository.is_empty() && accepted(&repository, token) => {
                canned(200, &[], tags_json(&["x"]))
            }
            _ => {
                let mut challenge = format!(r#"Bearer realm="{realm_url}/token",service="svc""#);
                if token.is_some() {
                    challenge.push_str(&format!(
                        r#",scope="repository:{repository}:pull",error="insufficient_scope""#
                    ));
                }
                canned(401, &[("WWW-Authenticate", challenge.as_str())], "")
            }
        }
    })
    .await
}

fn token_requests(token_server: &CannedServer) -> Vec<Vec<String>> {
    token_server
        .requests()
        .iter()
        .filter(|r| r.path() == "/token")
        .map(scopes_of)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planned_repositories_share_one_multi_scope_token() {
    let token_server = CannedServer::start(|request| {
        let token = if scopes_of(request).len() > 1 {
            "batch"
        } else {
            "single"
        };
        canned(
            200,
            &[],
            format!(r#"{{"token":"{token}","expires_in":300}}"#),
        )
    })
    .await;
    let registry = bearer_registry(&token_server, |_, token| token == "batch").await;
    let client = test_client();
    let repositories: Vec<String> = (0..(SCOPES_PER_TOKEN + 5))
        .map(|index| format!("org/app{index:02}"))
        .collect();
    let locations: Vec<Location> = repositories
        .iter()
        .map(|repository| Location::new(registry.url(), repository))
        .collect();
    client.plan_token_scopes(
        locations
            .iter()
            .map(|l| (l.registry_url.as_str(), l.repository.as_str())),
        true,
    );
    let listings = locations
        .iter()
        .map(|location| client.list_tags(location, &Auth::Anonymous));
    for listed in futures::future::join_all(listings).await {
        assert_eq!(listed.unwrap(), ["x"]);
    }
    // Again: the tokens are reused until they expire.
    for location in &locations {
        client.list_tags(location, &Auth::Anonymous).await.unwrap();
    }
    let mut asked = token_requests(&token_server);
    asked.sort_by_key(Vec::len);
    let expected_last: Vec<String> = repositories[SCOPES_PER_TOKEN..]
        .iter()
        .map(|repository| format!("repository:{repository}:pull"))
        .collect();
    assert_eq!(
        asked.len(),
        2,
        "one token per batch of {SCOPES_PER_TOKEN}: {asked:?}"
    );
    assert_eq!(asked[0], expected_last);
    assert_eq!(asked[1].len(), SCOPES_PER_TOKEN);
    assert_eq!(registry.count("/v2/"), 1);
    assert!(registry
        .requests()
        .iter()
        .filter(|r| r.path() != "/v2/")
        .all(|r| r.header("authorization").is_some()));
}

#[tokio::test]
async fn a_batch_token_missing_a_scope_falls_back_to_the_repository_s_own() {
    let token_server = CannedServer::start(|request| {
        let scopes = scopes_of(request);
        let token = if scopes.len() > 1 {
            "batch".to_string()
        } else {
            scopes.concat()
        };
        canned(
            200,
            &[],
            format!(r#"{{"token":"{token}","expires_in":300}}"#),
        )
    })
    .await;
    // The batch token covers `org/a` and `org/b` only (as a token server
    // leaves out the scopes an account may not have).
    let registry = bearer_registry(&token_server, |repository, token| {
        token == format!("repository:{repository}:pull")
            || (token == "batch" && repository != "org/c")
    })
    .await;
    let client = test_client();
    let locations: Vec<Location> = ["org/a", "org/b", "org/c"]
        .iter()
        .map(|repository| Location::new(registry.url(), *repository))
        .collect();
    client.plan_token_scopes(
        locations
            .iter()
            .map(|l| (l.registry_url.as_str(), l.repository.as_str())),
        true,
    );
    for _ in 0..2 {
        for location in &locations {
            assert_eq!(
                client.list_tags(location, &Auth::Anonymous).await.unwrap(),
                ["x"]
            );
        }
    }
    assert_eq!(
        token_requests(&token_server),
        [
            vec![
                "repository:org/a:pull".to_string(),
                "repository:org/b:pull".into(),
                "repository:org/c:pull".into()
            ],
            vec!["repository:org/c:pull".to_string()],
        ]
    );
    // One insufficient_scope answer; the second round went straight to `org/c`'s own token.
    let refused = registry
        .requests()
        .iter()
        .filter(|r| r.path() == "/v2/org/c/tags/list")
        .count();
    assert_eq!(refused, 3, "batch try, own-token retry, second round");
}

#[tokio::test]
async fn a_realm_refusing_several_scopes_is_asked_per_repository() {
    let token_server = CannedServer::start(|request| {
        let scopes = scopes_of(request);
        if scopes.len() > 1 {
            return canned(
                400,
                &[("Content-Type", "application/json")],
                r#"{"errors":[{"code":"UNSUPPORTED","message":"one scope at a time"}]}"#,
            );
        }
        canned(200, &[], format!(r#"{{"token":"{}"}}"#, scopes.concat()))
    })
    .await;
    let registry = bearer_registry(&token_server, |repository, token| {
        token == format!("repository:{repository}:pull")
    })
    .await;
    let client = test_client();
    let locations: Vec<Location> = ["org/a", "org/b"]
        .iter()
        .map(|repository| Location::new(registry.url(), *repository))
        .collect();
    client.plan_token_scopes(
        locations
            .iter()
            .map(|l| (l.registry_url.as_str(), l.repository.as_str())),
        true,
    );
    for location in &locations {
        assert_eq!(
            client.list_tags(location, &Auth::Anonymous).await.unwrap(),
            ["x"]
        );
    }
    let asked = token_requests(&token_server);
    assert_eq!(
        asked.len(),
        3,
        "one refused batch, then one each: {asked:?}"
    );
    assert_eq!(asked[0].len(), 2);
}

/// `[registries.NAME] concurrency`: that origin's window never grows past
/// its own ceiling (lower or higher than the general one), public or not.
#[test]
fn an_origin_ceiling_replaces_the_general_one() {
    let config = crate::ClientConfig {
        max_concurrent_requests_per_registry: 32,
        initial_concurrent_requests_per_registry: 4,
        origin_ceilings: [
            ("http://127.0.0.1:5000".to_owned(), 1),
            ("https://registry-1.docker.io".to_owned(), 12),
        ]
        .into(),
        ..crate::ClientConfig::default()
    };
    assert_eq!(
        config.window_limits("http://127.0.0.1:5000"),
        crate::WindowLimits::new(1, 1, true)
    );
    assert_eq!(
        config.window_limits("https://registry-1.docker.io"),
        crate::WindowLimits::new(4, 12, true)
    );
    assert_eq!(config.window_limits("http://127.0.0.1:5001").ceiling, 32);
}

/// A registry on loopback naming a plain-http realm on a host that is not
/// loopback (`0.0.0.0:1`: on Linux a connection there stays on this
/// machine and is refused, so nothing leaves it).
async fn registry_with_plain_http_realm() -> CannedServer {
    CannedServer::start(|_| {
        canned(
            401,
            &[(
                "WWW-Authenticate",
                r#"Bearer realm="http://0.0.0.0:1/token",service="svc""#,
            )],
            "",
        )
    })
    .await
}

fn basic_alice() -> Auth {
    Auth::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    }
}

#[tokio::test]
async fn credentials_never_go_to_a_plain_http_realm_learned_anonymously() {
    let registry = registry_with_plain_http_realm().await;
    let client = test_client();
    let location = Location::new(registry.url(), "org/app");
    // An anonymous caller learns the scheme first; its token fetch (no
    // credentials) is allowed and fails on the closed port.
    let anonymous = client
        .list_tags(&location, &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(anonymous, RegistryError::Transport(_)),
        "{anonymous:?}"
    );
    // A caller with credentials then finds the scheme cached: it must still
    // refuse, naming the registry and the key, before sending anything.
    let refused = client
        .list_tags(&location, &basic_alice())
        .await
        .unwrap_err();
    let RegistryError::NotAllowed(message) = &refused else {
        panic!("expected not-allowed, got {refused:?}");
    };
    assert!(message.contains(&registry.url()), "{message}");
    assert!(message.contains("http://0.0.0.0:1"), "{message}");
    assert!(message.contains("insecure = true"), "{message}");
    // A given Bearer token is a credential too.
    let pings = registry.count("/v2/");
    let given = client
        .list_tags(
            &Location::new("http://0.0.0.0:1", "org/app"),
            &Auth::Bearer("tok".into()),
        )
        .await;
    assert!(
        matches!(given, Err(RegistryError::NotAllowed(_))),
        "{given:?}"
    );
    assert_eq!(registry.count("/v2/"), pings);
}

#[tokio::test]
async fn insecure_registries_may_send_credentials_over_plain_http() {
    let registry = registry_with_plain_http_realm().await;
    let policy = Arc::new(
        HostAllowList::new([registry.address.to_string()])
            .unwrap()
            .with_plain_http_credentials(true),
    );
    let client = test_client().with_policy(policy);
    let location = Location::new(registry.url(), "org/app");
    // Allowed: the token request is sent (and fails on the closed port).
    let error = client
        .list_tags(&location, &basic_alice())
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn loopback_registries_get_credentials_over_plain_http() {
    let registry = CannedServer::start(|request| {
        if request.header("authorization").is_some() {
            canned(200, &[], tags_json(&["1.0"]))
        } else {
            canned(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], "")
        }
    })
    .await;
    let client = test_client();
    let location = Location::new(registry.url(), "org/app");
    assert_eq!(
        client.list_tags(&location, &basic_alice()).await.unwrap(),
        ["1.0"]
    );
}
