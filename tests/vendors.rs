//! Vendor registry plugins against loopback emulators of the vendors' token
//! APIs, in front of the real distribution registries of the test world
//! (`scripts/registries.sh`): right credentials give results, wrong ones a
//! precise error on those lookups only, and a vendor token is exchanged once
//! and reused until it expires (counted at the emulator).

use crowsnest_plugin_host::registry::{ImageRef, RegistryCallError};
use crowsnest_plugin_host::{RegistryPlugin, SandboxLimits};
use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::plugins::{catalog, registry_spec};
use crowsnest_testkit::registry::{Credentials, PrivateRegistry, Registries, RegistryApi};
use crowsnest_testkit::services::aliyun::{Aliyun, ACTION as ALIYUN_ACTION};
use crowsnest_testkit::services::azure::{Azure, REFRESH_TOKEN_USER};
use crowsnest_testkit::services::ecr::{Ecr, TARGET};
use crowsnest_testkit::services::google::{rsa_key_pair, Google, ACCESS_TOKEN};
use crowsnest_testkit::services::tencent::{Tencent, ACTION as TENCENT_ACTION};
use crowsnest_testkit::services::Emulator;
use crowsnest_testkit::unique;
use serde_json::json;

/// The ECR domain the tests' images are written under.
const ECR_DOMAIN: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn registries() -> &'static Registries {
    Registries::get()
}

/// Pushes a one-layer OCI image `repository:tag` to the Basic-auth registry.
async fn push_basic(repository: &str, tag: &str) -> String {
    let (user, password) = registries().basic_user.clone();
    push_as(&registries().basic, (&user, &password), repository, tag).await
}

/// Pushes a one-layer OCI image `repository:tag` to `registry` as `user`.
async fn push_as(registry: &str, user: (&str, &str), repository: &str, tag: &str) -> String {
    let api = RegistryApi::new(registry)
        .with_credentials(Credentials::Basic(user.0.into(), user.1.into()));
    let layer = format!("layer of {repository}").into_bytes();
    let layer_digest = api.put_blob(repository, &layer).await;
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}})
        .to_string()
        .into_bytes();
    let config_digest = api.put_blob(repository, &config).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": crowsnest_oci::MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    api.put_manifest(
        repository,
        tag,
        crowsnest_oci::MEDIA_TYPE_OCI_MANIFEST,
        &manifest,
    )
    .await
}

/// A configured instance of the built-in `plugin`, reaching `allowed` hosts.
async fn instance(plugin: &str, allowed: &[&str], settings: &[(&str, &str)]) -> RegistryPlugin {
    let catalog = catalog(None, None).await;
    let entry = catalog
        .get(plugin)
        .await
        .unwrap_or_else(|| panic!("no built-in {plugin}: run cargo xtask plugins"));
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RegistryPlugin::new(
        &entry.component,
        plugin,
        registry_spec(allowed, settings, SandboxLimits::default(), 2),
    )
    .await
    .unwrap_or_else(|err| panic!("{plugin}: {err}"))
}

fn image(domain: &str, path: &str) -> ImageRef {
    ImageRef {
        domain: domain.into(),
        path: path.into(),
        tag: Some("1.0".into()),
        digest: None,
    }
}

/// The tags of `image` through `plugin`: matches (as a vendor), locate, list-tags.
async fn tags(plugin: &RegistryPlugin, image: &ImageRef) -> Result<Vec<String>, RegistryCallError> {
    assert_eq!(
        plugin.matches(image).await.expect("matches"),
        Some(100),
        "{} serves {}",
        plugin.plugin(),
        image.domain
    );
    let location = plugin.locate(image).await?;
    plugin.list_tags(&location).await
}

fn emulator_host(emulator: &Emulator) -> &str {
    emulator.base.trim_start_matches("http://")
}

async fn ecr_emulator() -> Emulator {
    Emulator::start(Ecr {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: SECRET_ACCESS_KEY.into(),
        region: "us-east-1".into(),
        registry_user: registries().basic_user.clone(),
    })
    .await
}

#[tokio::test]
async fn ecr_signs_one_token_exchange_for_twenty_repositories() {
    let api = ecr_emulator().await;
    let (user, password) = registries().basic_user.clone();
    let repositories = push_twenty(&registries().basic, (&user, &password), "ecr").await;
    let basic = format!("http://{}", registries().basic);
    let ecr = instance(
        "ecr",
        &[&registries().basic, emulator_host(&api)],
        &[
            ("url", &basic),
            ("api_url", &api.base),
            ("access_key_id", ACCESS_KEY_ID),
            ("secret_access_key", SECRET_ACCESS_KEY),
        ],
    )
    .await;
    assert_all_found(&ecr, ECR_DOMAIN, &repositories).await;
    assert_eq!(
        api.problems(),
        Vec::<String>::new(),
        "the emulator found the SigV4 request wrong"
    );
    let exchanges = api.received();
    assert_eq!(
        exchanges.len(),
        1,
        "one GetAuthorizationToken for 20 repositories"
    );
    assert_eq!(exchanges[0].header("x-amz-target"), Some(TARGET));
    println!(
        "figure: ecr GetAuthorizationToken exchanges for 20 repositories = {}",
        exchanges.len()
    );
}

#[tokio::test]
async fn ecr_wrong_credentials_fail_naming_the_step_on_those_lookups_only() {
    let api = ecr_emulator().await;
    let repository = unique("crowsnest-test/ecr-wrong");
    push_basic(&repository, "1.0").await;
    let basic = format!("http://{}", registries().basic);
    let allowed = [registries().basic.as_str(), emulator_host(&api)];
    let cases = [
        (
            "unknown key",
            "AKIANOTKNOWN",
            SECRET_ACCESS_KEY,
            "ecr: GetAuthorizationToken: 403 UnrecognizedClientException",
        ),
        (
            "wrong secret",
            ACCESS_KEY_ID,
            "not-the-secret",
            "ecr: GetAuthorizationToken: 403 InvalidSignatureException",
        ),
    ];
    for (case, key_id, secret, expected) in cases {
        let wrong = instance(
            "ecr",
            &allowed,
            &[
                ("url", &basic),
                ("api_url", &api.base),
                ("access_key_id", key_id),
                ("secret_access_key", secret),
            ],
        )
        .await;
        let err = tags(&wrong, &image(ECR_DOMAIN, &repository))
            .await
            .expect_err(case);
        assert!(
            matches!(err, RegistryCallError::Registry(_)),
            "{case}: {err}"
        );
        assert!(err.to_string().contains(expected), "{case}: {err}");
    }
    let right = instance(
        "ecr",
        &allowed,
        &[
            ("url", &basic),
            ("api_url", &api.base),
            ("access_key_id", ACCESS_KEY_ID),
            ("secret_access_key", SECRET_ACCESS_KEY),
        ],
    )
    .await;
    assert_eq!(
        tags(&right, &image(ECR_DOMAIN, &repository))
            .await
            .expect("right key"),
        vec!["1.0".to_string()]
    );
}

/// GHCR, Quay, GitLab and Harbor hand the registry's challenge user + token
/// pairs (PAT, robot `ns+name`, deploy token, `robot$name`); the real
/// Basic-auth registry stands in for each.
#[tokio::test]
async fn token_vendors_pass_their_account_kinds_to_the_registry() {
    let repository = unique("crowsnest-test/vendor");
    push_basic(&repository, "1.0").await;
    let basic = format!("http://{}", registries().basic);
    let (user, password) = registries().basic_user.clone();
    let cases = [
        ("ghcr", "ghcr.io"),
        ("quay", "quay.io"),
        ("gitlab", registries().basic.as_str()),
        ("harbor", registries().basic.as_str()),
    ];
    for (plugin, domain) in cases {
        let right = instance(
            plugin,
            &[&registries().basic],
            &[
                ("url", &basic),
                ("username", &user),
                ("password", &password),
            ],
        )
        .await;
        assert_eq!(
            tags(&right, &image(domain, &repository))
                .await
                .unwrap_or_else(|err| panic!("{plugin}: {err}")),
            vec!["1.0".to_string()]
        );
        let wrong = instance(
            plugin,
            &[&registries().basic],
            &[("url", &basic), ("username", &user), ("password", "wrong")],
        )
        .await;
        let err = tags(&wrong, &image(domain, &repository))
            .await
            .expect_err(plugin);
        assert!(err.to_string().contains("UNAUTHORIZED"), "{plugin}: {err}");
    }
}

/// A Harbor proxy-cache project is looked up on its upstream: the real
/// proxy-mode registry plays Harbor, its project `cache` maps to the plain
/// registry it mirrors.
#[tokio::test]
async fn harbor_proxy_projects_are_looked_up_on_their_upstream() {
    let registries = registries();
    let repository = unique("crowsnest-test/harbor-proxy");
    let api = RegistryApi::new(&registries.plain);
    let layer = api.put_blob(&repository, b"layer").await;
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer]}}).to_string();
    let config_digest = api.put_blob(&repository, config.as_bytes()).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": crowsnest_oci::MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 5}]}).to_string();
    api.put_manifest(
        &repository,
        "2.0",
        crowsnest_oci::MEDIA_TYPE_OCI_MANIFEST,
        manifest.as_bytes(),
    )
    .await;
    let harbor_url = format!("http://{}", registries.proxy);
    let projects = format!(r#"{{"cache": "{}"}}"#, registries.plain);
    let harbor = instance(
        "harbor",
        &[&registries.proxy, &registries.plain],
        &[("url", &harbor_url), ("proxy_projects", &projects)],
    )
    .await;
    let written = image(&registries.proxy, &format!("cache/{repository}"));
    let location = harbor.locate(&written).await.expect("locate");
    assert_eq!(
        location.registry_url,
        format!("http://{}", registries.plain)
    );
    assert_eq!(location.repository, repository);
    assert_eq!(
        location.display,
        format!("{}/{repository}", registries.plain)
    );
    assert_eq!(
        harbor.list_tags(&location).await.expect("tags"),
        vec!["2.0".to_string()]
    );
}

/// A service-account JSON key as Google issues it, for `token_uri`.
fn json_key(private_pem: &str, token_uri: &str) -> String {
    json!({"type": "service_account", "project_id": "crowsnest-test", "private_key_id": "0123456789abcdef",
           "private_key": private_pem, "client_email": "scanner@crowsnest-test.iam.gserviceaccount.com",
           "client_id": "1", "token_uri": token_uri})
    .to_string()
}

/// GCR / Artifact Registry: an RS256-signed JWT-bearer assertion is traded
/// once for an access token that 20 repositories are read with; a key Google
/// does not know fails as unauthorized with the step named, on that
/// instance only.
#[tokio::test]
async fn gcr_trades_one_signed_jwt_for_twenty_repositories() {
    let (private_pem, public_pem) = rsa_key_pair();
    let google = Emulator::start(Google {
        client_email: "scanner@crowsnest-test.iam.gserviceaccount.com".into(),
        key_id: "0123456789abcdef".into(),
        public_key_pem: public_pem,
    })
    .await;
    let registry =
        PrivateRegistry::start_with_user(Engine::shared(), "oauth2accesstoken", ACCESS_TOKEN);
    let repositories =
        push_twenty(&registry.host(), ("oauth2accesstoken", ACCESS_TOKEN), "gcr").await;
    let token_uri = format!("{}/token", google.base);
    let host = registry.host();
    let allowed = [host.as_str(), emulator_host(&google)];
    let gcr = instance(
        "gcr",
        &allowed,
        &[
            ("url", &registry.origin()),
            ("json_key", &json_key(&private_pem, &token_uri)),
        ],
    )
    .await;
    assert_all_found(&gcr, "europe-west1-docker.pkg.dev", &repositories).await;
    assert_eq!(
        google.problems(),
        Vec::<String>::new(),
        "the emulator found the JWT wrong"
    );
    assert_eq!(
        google.received().len(),
        1,
        "one JWT-bearer exchange for 20 repositories"
    );
    println!(
        "figure: gcr token exchanges for 20 repositories = {}",
        google.received().len()
    );

    let (other_private, _) = rsa_key_pair();
    let wrong = instance(
        "gcr",
        &allowed,
        &[
            ("url", &registry.origin()),
            ("json_key", &json_key(&other_private, &token_uri)),
        ],
    )
    .await;
    let err = tags(&wrong, &image("eu.gcr.io", &repositories[0]))
        .await
        .expect_err("a key Google does not know");
    assert!(
        err.to_string()
            .contains("gcr: token exchange: 400 invalid_grant"),
        "{err}"
    );
    // OAuth's `invalid_grant` is a refusal of the credentials, reported as
    // such on this instance only.
    assert!(matches!(err, RegistryCallError::Registry(_)), "{err}");
    assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
    assert_eq!(
        tags(&gcr, &image("eu.gcr.io", &repositories[0]))
            .await
            .expect("the right key still works"),
        vec!["1.0".to_string()]
    );
}

/// Huawei SWR's long-term login: the registry takes user `{region}@{AK}` and
/// the login key `hex(HMAC-SHA256(SK, AK))`, computed here the way SWR's
/// documentation does (`openssl dgst -sha256 -hmac SK`) and set as the real
/// registry's htpasswd; a wrong SK is refused by the registry.
#[tokio::test]
async fn swr_long_term_login_key_is_accepted_by_the_registry() {
    let (access_key, secret_key) = ("HST3UMDQ8XOAU6EXAMPLE", "swr-secret-key-example");
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret_key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(access_key.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl dgst");
    let login_key = String::from_utf8_lossy(&out.stdout)
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let user = format!("cn-north-4@{access_key}");
    let registry = PrivateRegistry::start_with_user(Engine::shared(), &user, &login_key);
    let repository = unique("crowsnest-test/swr");
    push_as(&registry.host(), (&user, &login_key), &repository, "1.0").await;
    let host = registry.host();
    let written = image("swr.cn-north-4.myhuaweicloud.com", &repository);
    let swr = instance(
        "swr",
        &[&host],
        &[
            ("url", &registry.origin()),
            ("access_key", access_key),
            ("secret_key", secret_key),
        ],
    )
    .await;
    assert_eq!(
        tags(&swr, &written).await.expect("login key"),
        vec!["1.0".to_string()]
    );
    let wrong = instance(
        "swr",
        &[&host],
        &[
            ("url", &registry.origin()),
            ("access_key", access_key),
            ("secret_key", "wrong"),
        ],
    )
    .await;
    let err = tags(&wrong, &written).await.expect_err("a wrong SK");
    assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
}

/// `crowsnest plugins test NAME --image REF` runs each step of the instance
/// and prints it; a refused key fails at `credentials` naming the vendor's
/// step, with exit code 1.
#[tokio::test]
async fn plugins_test_prints_each_step() {
    let api = ecr_emulator().await;
    let repository = unique("crowsnest-test/ecr-cli");
    push_basic(&repository, "1.0").await;
    let dir = tempfile::tempdir().expect("dir");
    let run = |secret: &str| {
        let config = dir.path().join(format!("config-{}.toml", secret.len()));
        std::fs::write(
            &config,
            format!(
                "[store]\npath = \"{}\"\n\n[registries.aws]\nplugin = \"ecr\"\nurl = \"http://{}\"\napi_url = \"{}\"\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{secret}\"\n",
                dir.path().join("store.db").display(),
                registries().basic,
                api.base
            ),
        )
        .expect("config");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_crowsnest"));
        command
            .current_dir(dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .arg("--config")
            .arg(&config)
            .args([
                "plugins",
                "test",
                "aws",
                "--image",
                &format!("{ECR_DOMAIN}/{repository}:1.0"),
            ]);
        command
    };
    let output = |mut command: std::process::Command| async move {
        tokio::task::spawn_blocking(move || command.output().expect("run crowsnest"))
            .await
            .expect("join")
    };
    let out = output(run(SECRET_ACCESS_KEY)).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in ["matches", "locate", "credentials", "list-tags", "resolve"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(step))
            .unwrap_or_else(|| panic!("no {step}: {stdout}"));
        assert!(line.contains(" ok "), "{line}");
    }
    assert!(
        stdout.contains("basic, user `alice`, password ********"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&registries().basic_user.1),
        "the password is masked: {stdout}"
    );
    assert!(stdout.contains("1 tags (last: 1.0)"), "{stdout}");

    let out = output(run("wrong-secret")).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("credentials"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("FAILED")
            && line.contains("ecr: GetAuthorizationToken: 403 InvalidSignatureException"),
        "{line}"
    );
    assert!(
        !stdout.contains("list-tags"),
        "stops at the failed step: {stdout}"
    );
}

/// Pushes `1.0` of 20 fresh repositories named after `label` to `registry`
/// as `user`; their names.
async fn push_twenty(registry: &str, user: (&str, &str), label: &str) -> Vec<String> {
    let prefix = unique(&format!("crowsnest-test/{label}"));
    let repositories: Vec<String> = (0..20).map(|n| format!("{prefix}-{n}")).collect();
    for repository in &repositories {
        push_as(registry, user, repository, "1.0").await;
    }
    repositories
}

/// `settings` with borrowed values, as [`instance`] takes them.
fn borrowed<'a>(settings: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    settings
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

/// Every repository's tags through `plugin`, written under `domain`, are `1.0`.
async fn assert_all_found(plugin: &RegistryPlugin, domain: &str, repositories: &[String]) {
    for repository in repositories {
        let found = tags(plugin, &image(domain, repository)).await;
        assert_eq!(found.expect(repository), vec!["1.0".to_string()]);
    }
}

const ACR_DOMAIN: &str = "crowsnest.azurecr.io";
const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "5c2f6f9e-1b7a-4c1e-9b8e-0d6f0a1b2c3d";
const CLIENT_SECRET: &str = "acr~client-secret-example";

/// ACR with a service principal: one AAD client-credentials token and one
/// `/oauth2/exchange` serve 20 repositories (the refresh token, presented
/// as user `00000000-…` to the real htpasswd registry standing in for ACR);
/// a wrong secret or tenant fails naming the AAD step, that instance only.
#[tokio::test]
async fn acr_service_principal_exchanges_once_for_twenty_repositories() {
    let azure = Azure::new(TENANT_ID, CLIENT_ID, CLIENT_SECRET, ACR_DOMAIN);
    let refresh_token = azure.refresh_token().to_string();
    let azure = Emulator::start(azure).await;
    let registry =
        PrivateRegistry::start_with_user(Engine::shared(), REFRESH_TOKEN_USER, &refresh_token);
    let repositories = push_twenty(
        &registry.host(),
        (REFRESH_TOKEN_USER, &refresh_token),
        "acr",
    )
    .await;
    let host = registry.host();
    let allowed = [host.as_str(), emulator_host(&azure)];
    let principal = |tenant: &'static str, secret: &'static str| {
        vec![
            ("url", registry.origin()),
            ("login_url", azure.base.clone()),
            ("auth_url", azure.base.clone()),
            ("tenant_id", tenant.to_string()),
            ("client_id", CLIENT_ID.to_string()),
            ("client_secret", secret.to_string()),
        ]
    };
    let acr = instance(
        "acr",
        &allowed,
        &borrowed(&principal(TENANT_ID, CLIENT_SECRET)),
    )
    .await;
    assert_all_found(&acr, ACR_DOMAIN, &repositories).await;
    assert_eq!(azure.problems(), Vec::<String>::new());
    let received = azure.received();
    let aad = received.iter().filter(|r| Azure::is_aad(r)).count();
    assert_eq!(
        (aad, received.len() - aad),
        (1, 1),
        "one AAD token and one exchange for 20 repositories"
    );
    println!(
        "figure: acr AAD tokens + exchanges for 20 repositories = {}",
        received.len()
    );

    let cases = [
        (
            TENANT_ID,
            "wrong-secret",
            "acr: AAD token: 401 invalid_client AADSTS7000215",
            true,
        ),
        (
            "00000000-0000-0000-0000-00000000dead",
            CLIENT_SECRET,
            "acr: AAD token: 400 invalid_request AADSTS90002",
            false,
        ),
    ];
    for (tenant, secret, expected, unauthorized) in cases {
        let wrong = instance("acr", &allowed, &borrowed(&principal(tenant, secret))).await;
        let err = tags(&wrong, &image(ACR_DOMAIN, &repositories[0]))
            .await
            .expect_err(expected);
        assert!(matches!(err, RegistryCallError::Registry(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert_eq!(
            err.to_string().contains("UNAUTHORIZED"),
            unauthorized,
            "{err}"
        );
    }
    assert_all_found(&acr, ACR_DOMAIN, &repositories[..1]).await;
}

const TCR_DOMAIN: &str = "crowsnest.tencentcloudcr.com";
const TCR_SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const TCR_SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
const TCR_INSTANCE: &str = "tcr-crowsnest";

/// Tencent TCR Enterprise with an API key: one TC3-signed
/// `CreateInstanceToken` serves 20 repositories of the real Basic-auth
/// registry; an unknown SecretId or a wrong SecretKey fails naming the step
/// and Tencent's code, as unauthorized, on that instance only.
#[tokio::test]
async fn tencent_signs_one_instance_token_for_twenty_repositories() {
    let api = Emulator::start(Tencent {
        secret_id: TCR_SECRET_ID.into(),
        secret_key: TCR_SECRET_KEY.into(),
        registry_id: TCR_INSTANCE.into(),
        registry_user: registries().basic_user.clone(),
    })
    .await;
    let (user, password) = registries().basic_user.clone();
    let repositories = push_twenty(&registries().basic, (&user, &password), "tcr").await;
    let basic = format!("http://{}", registries().basic);
    let allowed = [registries().basic.as_str(), emulator_host(&api)];
    let with_key = |id: &'static str, key: &'static str| {
        [
            ("url", basic.clone()),
            ("api_url", api.base.clone()),
            ("secret_id", id.to_string()),
            ("secret_key", key.to_string()),
            ("registry_id", TCR_INSTANCE.to_string()),
            ("region", "ap-guangzhou".to_string()),
        ]
    };
    let tencent = instance(
        "tencent",
        &allowed,
        &borrowed(&with_key(TCR_SECRET_ID, TCR_SECRET_KEY)),
    )
    .await;
    assert_all_found(&tencent, TCR_DOMAIN, &repositories).await;
    assert_eq!(api.problems(), Vec::<String>::new(), "the TC3 signature");
    let received = api.received();
    assert_eq!(
        received.len(),
        1,
        "one CreateInstanceToken for 20 repositories"
    );
    assert_eq!(received[0].header("x-tc-action"), Some(TENCENT_ACTION));
    println!(
        "figure: tencent CreateInstanceToken calls for 20 repositories = {}",
        received.len()
    );

    let cases = [
        (
            "AKIDnotknown",
            TCR_SECRET_KEY,
            "tencent: CreateInstanceToken: AuthFailure.SecretIdNotFound",
        ),
        (
            TCR_SECRET_ID,
            "wrong-key",
            "tencent: CreateInstanceToken: AuthFailure.SignatureFailure",
        ),
    ];
    for (id, key, expected) in cases {
        let wrong = instance("tencent", &allowed, &borrowed(&with_key(id, key))).await;
        let err = tags(&wrong, &image(TCR_DOMAIN, &repositories[0]))
            .await
            .expect_err(expected);
        assert!(matches!(err, RegistryCallError::Registry(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
    }
    assert_all_found(&tencent, TCR_DOMAIN, &repositories[..1]).await;
}

const ALIYUN_DOMAIN: &str = "crowsnest-registry.cn-hangzhou.cr.aliyuncs.com";
const ALIYUN_KEY_ID: &str = "LTAI5tCrowsnestExample";
const ALIYUN_KEY_SECRET: &str = "crowsnest-access-key-secret";
const ALIYUN_INSTANCE: &str = "cri-crowsnest";

/// Alibaba ACR Enterprise with an AccessKey: one RPC-signed
/// `GetAuthorizationToken` serves 20 repositories of the real Basic-auth
/// registry; an unknown AccessKey or a wrong secret fails naming the step
/// and Alibaba's code, as unauthorized, on that instance only.
#[tokio::test]
async fn aliyun_signs_one_authorization_token_for_twenty_repositories() {
    let api = Emulator::start(Aliyun::new(
        ALIYUN_KEY_ID,
        ALIYUN_KEY_SECRET,
        ALIYUN_INSTANCE,
        registries().basic_user.clone(),
    ))
    .await;
    let (user, password) = registries().basic_user.clone();
    let repositories = push_twenty(&registries().basic, (&user, &password), "aliyun").await;
    let basic = format!("http://{}", registries().basic);
    let allowed = [registries().basic.as_str(), emulator_host(&api)];
    let with_key = |id: &'static str, secret: &'static str| {
        [
            ("url", basic.clone()),
            ("api_url", api.base.clone()),
            ("access_key_id", id.to_string()),
            ("access_key_secret", secret.to_string()),
            ("instance_id", ALIYUN_INSTANCE.to_string()),
        ]
    };
    let aliyun = instance(
        "aliyun",
        &allowed,
        &borrowed(&with_key(ALIYUN_KEY_ID, ALIYUN_KEY_SECRET)),
    )
    .await;
    assert_all_found(&aliyun, ALIYUN_DOMAIN, &repositories).await;
    assert_eq!(api.problems(), Vec::<String>::new(), "the RPC signature");
    let received = api.received();
    assert_eq!(
        received.len(),
        1,
        "one GetAuthorizationToken for 20 repositories"
    );
    assert_eq!(
        received[0].query.get("Action").map(String::as_str),
        Some(ALIYUN_ACTION)
    );
    assert_eq!(
        received[0].query.get("RegionId").map(String::as_str),
        Some("cn-hangzhou"),
        "the region comes from the registry domain"
    );
    println!(
        "figure: aliyun GetAuthorizationToken calls for 20 repositories = {}",
        received.len()
    );

    let cases = [
        (
            "LTAInotknown",
            ALIYUN_KEY_SECRET,
            "aliyun: GetAuthorizationToken: 404 InvalidAccessKeyId.NotFound",
        ),
        (
            ALIYUN_KEY_ID,
            "wrong-secret",
            "aliyun: GetAuthorizationToken: 400 SignatureDoesNotMatch",
        ),
    ];
    for (id, secret, expected) in cases {
        let wrong = instance("aliyun", &allowed, &borrowed(&with_key(id, secret))).await;
        let err = tags(&wrong, &image(ALIYUN_DOMAIN, &repositories[0]))
            .await
            .expect_err(expected);
        assert!(matches!(err, RegistryCallError::Registry(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
    }
    assert_all_found(&aliyun, ALIYUN_DOMAIN, &repositories[..1]).await;
}
