//! The host's OCI distribution client against real registries on loopback.
//!
//! Needs the test world: `scripts/registries.sh start` then
//! `source target/test-env/registries.env` (CNCF distribution 2.8 plain,
//! htpasswd, token-auth and pull-through proxy instances plus the test token
//! server). Images are generated and pushed here through the registry API.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use crowsnest::oci::{
    AccessPolicy, Auth, ClientConfig, HostAllowList, Location, ManifestInfo, Platform,
    RegistryClient, RegistryError, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::registry::{http_url, sha256_digest, Credentials, Registries, RegistryApi};
use crowsnest_testkit::unique;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- test world

fn registries() -> &'static Registries {
    Registries::get()
}

fn plain() -> String {
    http_url(&registries().plain)
}

fn user(name_and_password: &(String, String)) -> Auth {
    Auth::Basic {
        username: name_and_password.0.clone(),
        password: name_and_password.1.clone(),
    }
}

fn basic() -> Auth {
    user(&registries().basic_user)
}

fn bob() -> Auth {
    user(&registries().token_user)
}

fn wrong_password() -> Auth {
    Auth::Basic {
        username: "alice".into(),
        password: "not-the-password".into(),
    }
}

fn client() -> RegistryClient {
    RegistryClient::new(ClientConfig::default()).unwrap()
}

/// `reference` at `location` resolved anonymously for `platform`, with its
/// creation time when `with_created`.
async fn anonymously(
    client: &RegistryClient,
    location: &Location,
    reference: &str,
    platform: Option<Platform>,
    with_created: bool,
) -> Result<ManifestInfo, RegistryError> {
    client
        .resolve(
            location,
            reference,
            &Auth::Anonymous,
            platform.as_ref(),
            with_created,
        )
        .await
}

// ---------------------------------------------------------------- pushing images

/// Pushes generated images through the registry API.
struct Pusher {
    api: RegistryApi,
}

/// A pushed manifest.
#[derive(Debug, Clone)]
struct Pushed {
    digest: String,
    media_type: &'static str,
    size: usize,
    created: String,
}

impl Pusher {
    fn new(registry: &str, credentials: Credentials) -> Self {
        Self {
            api: RegistryApi::new(registry).with_credentials(credentials),
        }
    }

    fn plain() -> Self {
        Self::new(&registries().plain, Credentials::None)
    }

    fn basic() -> Self {
        let (name, password) = registries().basic_user.clone();
        Self::new(&registries().basic, Credentials::Basic(name, password))
    }

    fn token() -> Self {
        let (name, password) = registries().token_user.clone();
        Self::new(&registries().token, Credentials::Token(name, password))
    }

    /// Pushes a one-layer linux/amd64 OCI image created at `created`, tagged `tag`.
    async fn tagged(&self, repository: &str, tag: &str, created: &str) -> Pushed {
        self.image(
            repository,
            Some(tag),
            ("linux", "amd64", None),
            created,
            false,
        )
        .await
    }

    /// Pushes a one-layer image for `platform` created at `created`; tags it when `tag` is given.
    async fn image(
        &self,
        repository: &str,
        tag: Option<&str>,
        platform: (&str, &str, Option<&str>),
        created: &str,
        docker_types: bool,
    ) -> Pushed {
        let (os, architecture, variant) = platform;
        let layer = format!("layer {repository} {os}/{architecture} {created}").into_bytes();
        let layer_digest = self.api.put_blob(repository, &layer).await;
        let mut config = json!({
            "architecture": architecture,
            "os": os,
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {},
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let config = config.to_string().into_bytes();
        let config_digest = self.api.put_blob(repository, &config).await;
        let (media_type, config_type, layer_type) = if docker_types {
            (
                MEDIA_TYPE_DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                MEDIA_TYPE_OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let digest = sha256_digest(&manifest);
        let reference = tag.unwrap_or(&digest).to_string();
        self.api
            .put_manifest(repository, &reference, media_type, &manifest)
            .await;
        Pushed {
            digest,
            media_type,
            size: manifest.len(),
            created: created.to_string(),
        }
    }

    /// A BuildKit-style attestation manifest for `subject` (platform unknown/unknown in the index).
    async fn attestation(&self, repository: &str, subject: &str) -> Pushed {
        let statement =
            format!(r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":"{subject}"}}"#)
                .into_bytes();
        let statement_digest = self.api.put_blob(repository, &statement).await;
        let config = br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = self.api.put_blob(repository, config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len()}],
        })
        .to_string()
        .into_bytes();
        let digest = sha256_digest(&manifest);
        self.api
            .put_manifest(repository, &digest, MEDIA_TYPE_OCI_MANIFEST, &manifest)
            .await;
        Pushed {
            digest,
            media_type: MEDIA_TYPE_OCI_MANIFEST,
            size: manifest.len(),
            created: String::new(),
        }
    }

    /// Pushes an index (OCI) or manifest list (Docker) of `entries` under `tag`.
    async fn index(
        &self,
        repository: &str,
        tag: &str,
        docker_types: bool,
        entries: Vec<Value>,
    ) -> String {
        let media_type = if docker_types {
            MEDIA_TYPE_DOCKER_MANIFEST_LIST
        } else {
            MEDIA_TYPE_OCI_INDEX
        };
        let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
            .to_string()
            .into_bytes();
        self.api
            .put_manifest(repository, tag, media_type, &index)
            .await
    }

    /// Tags an existing manifest (re-PUT of the same bytes under another tag).
    async fn retag(&self, repository: &str, pushed: &Pushed, tags: &[String]) {
        let (body, media_type) = self.api.manifest(repository, &pushed.digest).await;
        assert_eq!(media_type, pushed.media_type);
        for tag in tags {
            self.api
                .put_manifest(repository, tag, pushed.media_type, &body)
                .await;
        }
    }
}

fn entry(pushed: &Pushed, os: &str, architecture: &str, variant: Option<&str>) -> Value {
    let mut platform = json!({"os": os, "architecture": architecture});
    if let Some(variant) = variant {
        platform["variant"] = json!(variant);
    }
    json!({"mediaType": pushed.media_type, "digest": pushed.digest, "size": pushed.size, "platform": platform})
}

fn attestation_entry(pushed: &Pushed, subject: &str) -> Value {
    json!({
        "mediaType": pushed.media_type, "digest": pushed.digest, "size": pushed.size,
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": subject,
        },
    })
}

/// Token server request count for `scope`.
async fn token_requests_for(scope: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{}/stats", registries().token_server))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["by_scope"][scope].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------- paginating front

/// Distribution 2.8 ignores `n` on tag lists. This front serves the real
/// registry's tags the way distribution 3 does (sorted, `n`, `last`,
/// `Link: <…>; rel="next"` relative to the registry) and passes every other
/// request through unchanged.
async fn paginating_front(upstream: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let http = http.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                    }
                }
                let head = String::from_utf8_lossy(&buffer).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let method = request_line.next().unwrap_or_default().to_string();
                let target = request_line.next().unwrap_or_default().to_string();
                let headers: Vec<(String, String)> = lines
                    .take_while(|line| !line.is_empty())
                    .filter_map(|line| line.split_once(':'))
                    .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
                    .filter(|(key, _)| key == "accept" || key == "authorization")
                    .collect();
                let url = reqwest::Url::parse(&format!("{upstream}{target}")).unwrap();
                let (status, mut reply_headers, body) = if url.path().ends_with("/tags/list")
                    && method == "GET"
                {
                    let mut full = url.clone();
                    full.set_query(None);
                    let listed: Value = http.get(full).send().await.unwrap().json().await.unwrap();
                    let mut tags: Vec<String> =
                        serde_json::from_value(listed["tags"].clone()).unwrap_or_default();
                    tags.sort();
                    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                    let get =
                        |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                    let page_size: usize =
                        get("n").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
                    let after = get("last");
                    let remaining: Vec<String> = tags
                        .into_iter()
                        .filter(|tag| after.as_ref().is_none_or(|last| tag > last))
                        .collect();
                    let page: Vec<String> = remaining.iter().take(page_size).cloned().collect();
                    let mut headers =
                        vec![("Content-Type".to_string(), "application/json".to_string())];
                    if remaining.len() > page.len() {
                        let link = format!(
                            "<{}?n={page_size}&last={}>; rel=\"next\"",
                            url.path(),
                            page.last().unwrap()
                        );
                        headers.push(("Link".to_string(), link));
                    }
                    (
                        200,
                        headers,
                        json!({"name": listed["name"], "tags": page})
                            .to_string()
                            .into_bytes(),
                    )
                } else {
                    let mut request = http.request(method.parse().unwrap(), url);
                    for (key, value) in &headers {
                        request = request.header(key, value);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let relay: Vec<(String, String)> = response
                        .headers()
                        .iter()
                        .filter(|(key, _)| {
                            [
                                "content-type",
                                "docker-content-digest",
                                "www-authenticate",
                                "location",
                            ]
                            .contains(&key.as_str())
                        })
                        .map(|(key, value)| {
                            (
                                key.to_string(),
                                value.to_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    let length = response.content_length();
                    let body = response.bytes().await.unwrap().to_vec();
                    let mut relay = relay;
                    if method == "HEAD" {
                        relay.push(("Content-Length".into(), length.unwrap_or(0).to_string()));
                    }
                    (status, relay, body)
                };
                if method != "HEAD" {
                    reply_headers.push(("Content-Length".into(), body.len().to_string()));
                }
                let mut reply = format!("HTTP/1.1 {status} Front\r\nConnection: close\r\n");
                for (key, value) in reply_headers {
                    reply.push_str(&format!("{key}: {value}\r\n"));
                }
                reply.push_str("\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
                if method != "HEAD" {
                    let _ = stream.write_all(&body).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn tag_listing_follows_pagination() {
    let repository = unique("crowsnest-test/paged");
    let pusher = Pusher::plain();
    let image = pusher
        .tagged(&repository, "v0", "2024-01-01T00:00:00Z")
        .await;
    let tags: Vec<String> = (1..=6).map(|i| format!("v{i}")).collect();
    pusher.retag(&repository, &image, &tags).await;
    let expected: BTreeSet<String> = (0..=6).map(|i| format!("v{i}")).collect();

    // Straight from distribution 2.8 (which returns every tag at once).
    let all = client()
        .list_tags(&Location::new(plain(), &repository), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), expected);

    // Through the paginating front with n=2: four pages, Link-relative URLs.
    let front = paginating_front(plain()).await;
    let paging = RegistryClient::new(ClientConfig {
        tag_page_size: Some(2),
        ..ClientConfig::default()
    })
    .unwrap();
    let front_url = format!("http://{front}");
    let paged = paging
        .list_tags(&Location::new(&front_url, &repository), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(paged, expected.iter().cloned().collect::<Vec<_>>());
    let tag_pages = paging
        .counters()
        .snapshot()
        .into_iter()
        .filter(|count| count.origin == front_url && count.status == Some(200))
        .map(|count| count.count)
        .sum::<u64>();
    // /v2/ ping + 4 pages.
    assert_eq!(tag_pages, 5);
}

/// What resolving a reference gives: digest, media type, the digest of the
/// platform's image (indexes only) and the creation time (when asked).
type Resolved<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// A reference, a platform, whether to read the creation time, and what it
/// resolves to or the words of its "manifest unknown" error.
type Resolution<'a> = (
    &'a str,
    Option<Platform>,
    bool,
    Result<Resolved<'a>, &'a str>,
);

#[tokio::test]
async fn manifest_digests_platforms_attestations_and_created() {
    let repository = unique("crowsnest-test/multi");
    let pusher = Pusher::plain();
    let location = Location::new(plain(), &repository);
    let client = client();

    let single = pusher
        .tagged(&repository, "single", "2023-03-04T05:06:07Z")
        .await;
    let [amd64, arm64, armv7] = [
        (("linux", "amd64", None), "2024-01-01T00:00:00Z"),
        (("linux", "arm64", None), "2024-02-02T00:00:00Z"),
        (("linux", "arm", Some("v7")), "2024-03-03T00:00:00Z"),
    ]
    .map(|(platform, created)| pusher.image(&repository, None, platform, created, false));
    let (amd64, arm64, armv7) = (amd64.await, arm64.await, armv7.await);
    let attestation = pusher.attestation(&repository, &amd64.digest).await;
    // The attestation comes first: it must never be selected, not even as "first image".
    let index_digest = pusher
        .index(
            &repository,
            "multi",
            false,
            vec![
                attestation_entry(&attestation, &amd64.digest),
                entry(&amd64, "linux", "amd64", None),
                entry(&arm64, "linux", "arm64", None),
                entry(&armv7, "linux", "arm", Some("v7")),
            ],
        )
        .await;
    // Docker manifest list of Docker manifests.
    let docker_amd64 = pusher
        .image(
            &repository,
            None,
            ("linux", "amd64", None),
            "2025-05-05T00:00:00Z",
            true,
        )
        .await;
    let docker_arm64 = pusher
        .image(
            &repository,
            None,
            ("linux", "arm64", Some("v8")),
            "2025-06-06T00:00:00Z",
            true,
        )
        .await;
    let list_digest = pusher
        .index(
            &repository,
            "docker-list",
            true,
            vec![
                entry(&docker_amd64, "linux", "amd64", None),
                entry(&docker_arm64, "linux", "arm64", Some("v8")),
            ],
        )
        .await;

    let arm64_platform = || Some(Platform::new("linux", "arm64"));
    let multi = |platform, created| {
        (
            index_digest.as_str(),
            MEDIA_TYPE_OCI_INDEX,
            platform,
            created,
        )
    };
    let cases: [Resolution; 8] = [
        (
            "single",
            Some(Platform::new("linux", "amd64")),
            true,
            Ok((
                &single.digest,
                MEDIA_TYPE_OCI_MANIFEST,
                None,
                Some(single.created.as_str()),
            )),
        ),
        (
            &single.digest,
            None,
            false,
            Ok((&single.digest, MEDIA_TYPE_OCI_MANIFEST, None, None)),
        ),
        (
            "multi",
            arm64_platform(),
            true,
            Ok(multi(
                Some(arm64.digest.as_str()),
                Some(arm64.created.as_str()),
            )),
        ),
        (
            "multi",
            Some(Platform::new("linux", "arm").with_variant("v7")),
            false,
            Ok(multi(Some(armv7.digest.as_str()), None)),
        ),
        (
            "multi",
            None,
            true,
            Ok(multi(None, Some(amd64.created.as_str()))),
        ),
        (
            "multi",
            Some(Platform::new("linux", "s390x")),
            false,
            Err("linux/s390x"),
        ),
        (
            "multi",
            Some(Platform::new("unknown", "unknown")),
            false,
            Err(""),
        ),
        (
            "docker-list",
            arm64_platform(),
            true,
            Ok((
                &list_digest,
                MEDIA_TYPE_DOCKER_MANIFEST_LIST,
                Some(docker_arm64.digest.as_str()),
                Some("2025-06-06T00:00:00Z"),
            )),
        ),
    ];
    check_each(
        &cases,
        |(reference, platform, with_created, _)| {
            format!("{reference} for {platform:?}, created: {with_created}")
        },
        |(reference, platform, with_created, expected)| {
            let (client, location) = (&client, &location);
            async move {
                let resolved =
                    anonymously(client, location, reference, platform.clone(), *with_created).await;
                match (resolved, expected) {
                    (Ok(info), Ok((digest, media_type, platform_digest, created))) => {
                        assert_eq!(&info.digest, digest);
                        assert_eq!(&info.media_type, media_type);
                        assert_eq!(info.platform_digest.as_deref(), *platform_digest);
                        assert_eq!(info.created.as_deref(), *created);
                    }
                    (Err(error), Err(words)) => assert!(
                        matches!(&error, RegistryError::ManifestUnknown(m) if m.contains(words)),
                        "{error:?}"
                    ),
                    (resolved, expected) => panic!("expected {expected:?}, got {resolved:?}"),
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn basic_auth_registry() {
    let repository = unique("crowsnest-test/basic");
    let registry = http_url(&registries().basic);
    let pushed = Pusher::basic()
        .tagged(&repository, "1.0", "2024-01-01T00:00:00Z")
        .await;
    let location = Location::new(&registry, &repository);
    let client = client();
    assert_eq!(
        client.list_tags(&location, &basic()).await.unwrap(),
        ["1.0"]
    );
    let info = client
        .resolve(&location, "1.0", &basic(), None, true)
        .await
        .unwrap();
    assert_eq!(info.digest, pushed.digest);
    assert_eq!(info.created.as_deref(), Some("2024-01-01T00:00:00Z"));

    let wrong = client
        .list_tags(&location, &wrong_password())
        .await
        .unwrap_err();
    assert!(matches!(wrong, RegistryError::Unauthorized(_)), "{wrong:?}");
    let anonymous = client
        .resolve(&location, "1.0", &Auth::Anonymous, None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(anonymous, RegistryError::Unauthorized(_)),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn token_auth_anonymous_and_with_credentials() {
    let registry = http_url(&registries().token);
    let public = unique("public/app");
    let private = unique("private/app");
    let pusher = Pusher::token();
    let public_image = pusher.tagged(&public, "1.0", "2024-04-04T00:00:00Z").await;
    let private_image = pusher.tagged(&private, "2.0", "2024-05-05T00:00:00Z").await;
    let client = client();

    let public_location = Location::new(&registry, &public);
    assert_eq!(
        client
            .list_tags(&public_location, &Auth::Anonymous)
            .await
            .unwrap(),
        ["1.0"]
    );
    let info = client
        .resolve(&public_location, "1.0", &Auth::Anonymous, None, true)
        .await
        .unwrap();
    assert_eq!(info.digest, public_image.digest);
    assert_eq!(info.created.as_deref(), Some("2024-04-04T00:00:00Z"));

    let private_location = Location::new(&registry, &private);
    let anonymous = client
        .list_tags(&private_location, &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(anonymous, RegistryError::Unauthorized(_)),
        "{anonymous:?}"
    );
    assert_eq!(
        client.list_tags(&private_location, &bob()).await.unwrap(),
        ["2.0"]
    );
    let info = client
        .resolve(&private_location, "2.0", &bob(), None, false)
        .await
        .unwrap();
    assert_eq!(info.digest, private_image.digest);
    let wrong = client
        .list_tags(&private_location, &wrong_password())
        .await
        .unwrap_err();
    assert!(matches!(wrong, RegistryError::Unauthorized(_)), "{wrong:?}");

    // A ready Bearer token is sent as is.
    let token = registries()
        .token(
            &format!("repository:{private}:pull"),
            &("bob".to_owned(), "builder".to_owned()),
        )
        .await;
    let given = Auth::Bearer(token);
    assert_eq!(
        client.list_tags(&private_location, &given).await.unwrap(),
        ["2.0"]
    );
}

#[tokio::test]
async fn tokens_are_cached_per_scope_and_identity() {
    let registry = http_url(&registries().token);
    let repository = unique("public/cached");
    Pusher::token()
        .tagged(&repository, "1", "2024-01-01T00:00:00Z")
        .await;
    let scope = format!("repository:{repository}:pull");
    assert_eq!(token_requests_for(&scope).await, 0);
    let client = client();
    let location = Location::new(&registry, &repository);
    for _ in 0..3 {
        client.list_tags(&location, &Auth::Anonymous).await.unwrap();
        client
            .resolve(&location, "1", &Auth::Anonymous, None, true)
            .await
            .unwrap();
    }
    assert_eq!(
        token_requests_for(&scope).await,
        1,
        "anonymous token fetched once"
    );
    for _ in 0..3 {
        client.list_tags(&location, &bob()).await.unwrap();
    }
    assert_eq!(
        token_requests_for(&scope).await,
        2,
        "bob's token fetched once more"
    );
    // A clone shares the cache.
    client
        .clone()
        .list_tags(&location, &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(token_requests_for(&scope).await, 2);
    let token_server = registries().token_server.clone();
    assert_eq!(client.counters().total_for_origin(&token_server), 2);
    assert_eq!(client.realm_origins(&registry), [token_server]);
}

#[tokio::test]
async fn missing_repository_and_tag() {
    let repository = unique("crowsnest-test/missing");
    let client = client();
    let error = client
        .list_tags(&Location::new(plain(), &repository), &Auth::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NameUnknown(_)), "{error:?}");

    Pusher::plain()
        .tagged(&repository, "present", "2024-01-01T00:00:00Z")
        .await;
    let error = client
        .resolve(
            &Location::new(plain(), &repository),
            "absent",
            &Auth::Anonymous,
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::ManifestUnknown(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn pull_through_proxy_serves_the_upstream() {
    let repository = unique("crowsnest-test/mirrored");
    let pusher = Pusher::plain();
    let amd64 = pusher
        .tagged(&repository, "1.0", "2024-07-07T00:00:00Z")
        .await;
    let arm64 = pusher
        .image(
            &repository,
            None,
            ("linux", "arm64", None),
            "2024-08-08T00:00:00Z",
            false,
        )
        .await;
    let index = pusher
        .index(
            &repository,
            "2.0",
            false,
            vec![
                entry(&amd64, "linux", "amd64", None),
                entry(&arm64, "linux", "arm64", None),
            ],
        )
        .await;
    let client = client();
    let mirror = Location::new(http_url(&registries().proxy), &repository);
    let mut tags = client.list_tags(&mirror, &Auth::Anonymous).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["1.0", "2.0"]);
    let info = client
        .resolve(&mirror, "1.0", &Auth::Anonymous, None, true)
        .await
        .unwrap();
    assert_eq!(info.digest, amd64.digest);
    assert_eq!(info.created.as_deref(), Some("2024-07-07T00:00:00Z"));
    let info = anonymously(
        &client,
        &mirror,
        "2.0",
        Some(Platform::new("linux", "arm64")),
        true,
    )
    .await
    .unwrap();
    assert_eq!(info.digest, index);
    assert_eq!(info.platform_digest.as_deref(), Some(arm64.digest.as_str()));
    assert_eq!(info.created.as_deref(), Some("2024-08-08T00:00:00Z"));
}

#[tokio::test]
async fn policy_refuses_other_registries_and_learns_realms() {
    let plain_url = reqwest::Url::parse(&plain()).unwrap();
    let token_url = reqwest::Url::parse(&http_url(&registries().token)).unwrap();
    let allowed = [
        format!(
            "{}:{}",
            plain_url.host_str().unwrap(),
            plain_url.port().unwrap()
        ),
        format!(
            "{}:{}",
            token_url.host_str().unwrap(),
            token_url.port().unwrap()
        ),
    ];
    let policy = Arc::new(HostAllowList::new(allowed).unwrap());
    let shared = client();
    let restricted = shared.with_policy(policy.clone());

    let repository = unique("public/policy");
    Pusher::token()
        .tagged(&repository, "1", "2024-01-01T00:00:00Z")
        .await;
    let before = shared.counters().total();
    let refused = restricted
        .list_tags(
            &Location::new(http_url(&registries().basic), &repository),
            &basic(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RegistryError::NotAllowed(_)),
        "{refused:?}"
    );
    assert_eq!(shared.counters().total(), before, "nothing was sent");

    let token_server = reqwest::Url::parse(&registries().token_server.clone()).unwrap();
    assert!(!policy.allows(&token_server));
    assert_eq!(
        restricted
            .list_tags(
                &Location::new(http_url(&registries().token), &repository),
                &Auth::Anonymous
            )
            .await
            .unwrap(),
        ["1"]
    );
    assert_eq!(policy.learned_realms(), [registries().token_server.clone()]);
    // The realm serves the host's token requests only: it never widens the
    // plugin's own (raw HTTP) allow-list.
    assert!(!policy.allows(&token_server));
}
