//! Every notification trigger end to end, without Docker: the built-in
//! plugin, sandboxed, configured from `config.toml` text, fed container
//! results through the host's dispatcher (threshold, mode, templates,
//! retries), delivering to a real server (mosquitto, aiosmtpd) or to a
//! loopback emulator of the service's documented API that checks every
//! request and answers as the service does. For each trigger: simple and
//! batch mode, a threshold, a failing service retried with backoff then
//! reported, a rate-limit answer honoured, an unreachable service, and its
//! secret absent from every log line and error.

use std::sync::Arc;
use std::time::Duration;

use crowsnest_engine::metrics::Metrics;
use crowsnest_engine::triggers::templates::sample_container;
use crowsnest_engine::triggers::{DispatchScope, TriggerDispatcher, TriggerRunError};
use crowsnest_model::{ContainerObject, ScanResult, UpdateKindInfo};
use crowsnest_plugin_host::Catalog;
use crowsnest_store::Store;
use crowsnest_testkit::binary::{text, Crowsnest};
use crowsnest_testkit::services::mosquitto::Mosquitto;
use crowsnest_testkit::services::smtp::{SmtpServer, SmtpTls};
use crowsnest_testkit::services::{self, logs, Emulator, Fault};
use serde_json::{json, Value};

/// Every built-in plugin, compiled once for the whole test binary (and
/// cached on disk across runs).
async fn catalog() -> &'static Catalog {
    static CATALOG: tokio::sync::OnceCell<Catalog> = tokio::sync::OnceCell::const_new();
    CATALOG
        .get_or_init(|| async {
            let cache = crowsnest_testkit::test_env().join("component-cache");
            crowsnest_testkit::plugins::catalog(None, Some(&cache)).await
        })
        .await
}

/// A container with a tag update `current` → `offered` of kind `diff`.
fn container(name: &str, current: &str, offered: &str, diff: &str) -> ContainerObject {
    let mut container = sample_container();
    container.id = format!("{name}-0123456789abcdef");
    container.name = name.into();
    container.display_name = name.into();
    container.image.reference = format!("example/{name}:{current}");
    container.image.tag.value = Some(current.into());
    container.result = Some(ScanResult {
        tag: Some(offered.into()),
        link: Some(format!("https://example.test/{name}/releases/{offered}")),
        ..ScanResult::default()
    });
    container.update_kind = Some(UpdateKindInfo {
        kind: "tag".into(),
        local_value: Some(current.into()),
        remote_value: Some(offered.into()),
        semver_diff: Some(diff.into()),
    });
    container
}

/// `webapp` (major), `database` (minor), `cache` (patch).
fn three_updates() -> Vec<ContainerObject> {
    vec![
        container("webapp", "1.0", "2.0", "major"),
        container("database", "1.0", "1.1", "minor"),
        container("cache", "1.0.0", "1.0.1", "patch"),
    ]
}

/// `[triggers.NAME]` tables for the scenarios, each with the plugin's own
/// `settings` lines (and sub-tables after them):
/// - `simple`: threshold minor, one delivery per container;
/// - `batch`: one delivery per dispatch;
/// - `flaky`: by hand, 3 retries 20 ms apart;
/// - `broken`: by hand, 2 retries.
fn scenario_config(plugin: &str, settings: &str) -> String {
    let table = |name: &str, options: &str| {
        format!("[triggers.{name}]\nplugin = \"{plugin}\"\n{options}\n{settings}\n\n")
    };
    [
        table("simple", "threshold = \"minor\"\nretries = 0"),
        table("batch", "mode = \"batch\"\nretries = 0"),
        table("flaky", "auto = false\nretries = 3\nretry_backoff_ms = 20"),
        table("broken", "auto = false\nretries = 2\nretry_backoff_ms = 20"),
    ]
    .concat()
}

/// The dispatcher of `config` on a fresh in-memory store.
async fn dispatcher(config: &str) -> TriggerDispatcher {
    let config = crowsnest_testkit::config::parse(config);
    TriggerDispatcher::from_config(
        &config,
        catalog().await,
        Store::open_in_memory().await.expect("in-memory store"),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap_or_else(|error| panic!("trigger configuration refused: {error}"))
}

/// The error of a manual run that must fail.
fn failure(result: Result<(), TriggerRunError>) -> String {
    match result {
        Err(TriggerRunError::Delivery { message, .. }) => message,
        other => panic!("expected a failed delivery, got {other:?}"),
    }
}

/// Runs every scenario against `emulator` for `plugin` configured with
/// `settings` (pointing at the emulator), and checks `secret` never shows.
async fn check_http_trigger(emulator: Emulator, plugin: &str, settings: &str, secret: &str) {
    logs::capture();
    let dispatcher = dispatcher(&scenario_config(plugin, settings)).await;
    let updates = three_updates();
    let lib = &updates[1];

    // Simple mode with threshold `minor`: the minor and the patch update, one delivery each.
    dispatcher
        .dispatch(&updates, DispatchScope::Automatic)
        .await;
    dispatcher.idle().await;
    let texts = emulator.texts();
    assert_eq!(texts.len(), 3, "2 simple deliveries + 1 batch: {texts:#?}");
    let simple: Vec<&String> = texts
        .iter()
        .filter(|t| !t.contains("3 updates available"))
        .collect();
    assert_eq!(simple.len(), 2, "{texts:#?}");
    assert!(
        simple.iter().all(|t| !t.contains("webapp")),
        "the major update is below the threshold: {texts:#?}"
    );
    for (name, from, to) in [("database", "1.0", "1.1"), ("cache", "1.0.0", "1.0.1")] {
        let text = simple
            .iter()
            .find(|t| t.contains(&format!("New tag found for container {name}")))
            .unwrap_or_else(|| panic!("no delivery about {name}: {texts:#?}"));
        assert!(text.contains(&format!("from {from} to {to}")), "{text}");
    }
    // Batch mode: one delivery with every container.
    let batch = texts
        .iter()
        .find(|t| t.contains("3 updates available"))
        .unwrap_or_else(|| panic!("no batch delivery: {texts:#?}"));
    for name in ["webapp", "database", "cache"] {
        assert!(batch.contains(name), "{batch}");
    }
    assert_eq!(
        emulator.problems(),
        Vec::<String>::new(),
        "every request as the service wants it"
    );

    // A failing service: retried with backoff, then delivered.
    emulator.clear();
    emulator.fault(&[Fault::Fail, Fault::Fail]);
    dispatcher
        .run_now("flaky", lib)
        .await
        .expect("delivered on the third attempt");
    let attempts = emulator.deliveries();
    assert_eq!(attempts.len(), 3, "two failures, then success");
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_millis(20) && gaps[1] >= Duration::from_millis(40),
        "backoff doubles: {gaps:?}"
    );

    // A service that keeps failing: every attempt made, then reported.
    emulator.clear();
    emulator.fault(&[Fault::Fail, Fault::Fail, Fault::Fail]);
    let error = failure(dispatcher.run_now("broken", lib).await);
    assert_eq!(emulator.deliveries().len(), 3, "1 attempt + 2 retries");
    assert!(!error.contains(secret), "{error}");

    // A rate-limit answer: the wait it asks for (1 s) is honoured over the 20 ms backoff.
    emulator.clear();
    emulator.fault(&[Fault::RateLimit(Duration::from_secs(1))]);
    dispatcher
        .run_now("flaky", lib)
        .await
        .expect("delivered after the wait");
    let attempts = emulator.deliveries();
    assert_eq!(attempts.len(), 2, "limited, then delivered");
    let gap = attempts[1].at - attempts[0].at;
    if emulator.service().says_how_long() {
        assert!(
            gap >= Duration::from_millis(950),
            "the service asked for 1 s, waited {gap:?}"
        );
    } else {
        assert!(
            gap >= Duration::from_millis(20) && gap < Duration::from_millis(900),
            "no wait asked: backoff, {gap:?}"
        );
    }
    assert_eq!(emulator.problems(), Vec::<String>::new());

    // The service unreachable: reported, and the error (which quotes the URL) scrubbed.
    emulator.stop().await;
    let error = failure(dispatcher.run_now("broken", lib).await);
    assert!(!error.contains(secret), "{error}");
    logs::assert_never_logged(secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntfy() {
    let secret = "tk_ntfy0s3cret0token0value";
    let emulator = Emulator::start(services::ntfy::Ntfy {
        topic: "updates".into(),
        token: secret.into(),
    })
    .await;
    let settings = format!("url = \"{}\"\ntopic = \"updates\"\ntoken = \"{secret}\"\npriority = \"high\"\ntags = [\"whale\"]", emulator.base);
    check_http_trigger(emulator, "ntfy", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotify() {
    let secret = "AgotifyS3cretAppToken";
    let emulator = Emulator::start(services::gotify::Gotify {
        token: secret.into(),
    })
    .await;
    let settings = format!(
        "url = \"{}\"\ntoken = \"{secret}\"\npriority = 7",
        emulator.base
    );
    check_http_trigger(emulator, "gotify", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_webhook() {
    let secret = "XslackS3cretHookToken0";
    let path = format!("/services/T0001/B0001/{secret}");
    let emulator = Emulator::start(services::slack::Slack::Webhook { path: path.clone() }).await;
    let settings = format!("url = \"{}{path}\"", emulator.base);
    check_http_trigger(emulator, "slack", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_web_api() {
    let secret = "xoxb-slack-s3cret-bot-token";
    let emulator = Emulator::start(services::slack::Slack::Api {
        token: secret.into(),
        channel: "C0OPS".into(),
    })
    .await;
    let settings = format!(
        "url = \"{}/api\"\ntoken = \"{secret}\"\nchannel = \"C0OPS\"",
        emulator.base
    );
    check_http_trigger(emulator, "slack", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord() {
    let secret = "discordS3cretWebhookToken_abc-def";
    let path = format!("/api/webhooks/112233/{secret}");
    let emulator = Emulator::start(services::discord::Discord { path: path.clone() }).await;
    let settings = format!(
        "url = \"{}{path}\"\nusername = \"crowsnest\"",
        emulator.base
    );
    check_http_trigger(emulator, "discord", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams() {
    let secret = "teamsS3cretSignature0123";
    let path = "/workflows/0a1b/triggers/manual/paths/invoke";
    let emulator = Emulator::start(services::teams::Teams {
        path: path.into(),
        sig: secret.into(),
    })
    .await;
    let settings = format!(
        "url = \"{}{path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={secret}\"",
        emulator.base
    );
    check_http_trigger(emulator, "teams", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram() {
    let secret = "123456789:AAtelegramS3cretBotToken";
    let emulator = Emulator::start(services::telegram::Telegram {
        token: secret.into(),
        chat_id: json!(-1001234),
    })
    .await;
    let settings = format!(
        "url = \"{}\"\ntoken = \"{secret}\"\nchat_id = \"-1001234\"\nmessage_thread_id = 5",
        emulator.base
    );
    check_http_trigger(emulator, "telegram", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushover() {
    let secret = "apushoverS3cretAppToken0";
    let emulator = Emulator::start(services::pushover::Pushover {
        token: secret.into(),
        user: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG".into(),
    })
    .await;
    let settings = format!(
        "url = \"{}\"\ntoken = \"{secret}\"\nuser = \"uQiRzpo4DXghDmr9QzzfQu27cmVRsG\"\npriority = 1",
        emulator.base
    );
    check_http_trigger(emulator, "pushover", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix() {
    let secret = "matrixS3cretPassw0rd";
    let emulator = Emulator::start(services::matrix::Matrix::new(
        "@crow:example.test",
        secret,
        "#ops:example.test",
        "!roomid:example.test",
    ))
    .await;
    let settings = format!(
        "url = \"{}\"\nuser = \"crow\"\npassword = \"{secret}\"\nroom = \"#ops:example.test\"\nhtml = true",
        emulator.base
    );
    check_http_trigger(emulator, "matrix", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googlechat() {
    let secret = "gchatS3cretWebhookToken";
    let emulator = Emulator::start(services::googlechat::GoogleChat {
        space: "AAAA1234".into(),
        key: "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI".into(),
        token: secret.into(),
    })
    .await;
    let settings = format!(
        "url = \"{}/v1/spaces/AAAA1234/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token={secret}\"",
        emulator.base
    );
    check_http_trigger(emulator, "googlechat", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mattermost() {
    let secret = "mattermostS3cretHookKey";
    let emulator = Emulator::start(services::mattermost::Mattermost { key: secret.into() }).await;
    let settings = format!(
        "url = \"{}/hooks/{secret}\"\nusername = \"crowsnest\"",
        emulator.base
    );
    check_http_trigger(emulator, "mattermost", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat() {
    let secret = "rocketS3cretAuthToken_xyz";
    let emulator = Emulator::start(services::rocketchat::RocketChat {
        user_id: "aobEdbYhXfu5hkeqG".into(),
        auth_token: secret.into(),
        channel: "#ops".into(),
    })
    .await;
    let settings = format!(
        "url = \"{}\"\nuser_id = \"aobEdbYhXfu5hkeqG\"\nauth_token = \"{secret}\"\nchannel = \"#ops\"\nalias = \"crowsnest\"",
        emulator.base
    );
    check_http_trigger(emulator, "rocketchat", &settings, secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apprise() {
    let secret = "appriseS3cretConfigKey";
    let emulator = Emulator::start(services::apprise::Apprise { key: secret.into() }).await;
    let settings = format!(
        "url = \"{}\"\nkey = \"{secret}\"\ntype = \"info\"\nformat = \"markdown\"",
        emulator.base
    );
    check_http_trigger(emulator, "apprise", &settings, secret).await;
}

/// A `Subject:` header, unfolded.
fn subject(data: &str) -> String {
    let mut lines = data
        .lines()
        .skip_while(|line| !line.starts_with("Subject:"));
    let mut subject = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("Subject:")
        .trim()
        .to_string();
    for line in lines.take_while(|line| line.starts_with([' ', '\t'])) {
        subject.push(' ');
        subject.push_str(line.trim());
    }
    subject
}

/// The mail server's `[triggers.NAME.smtp]` sub-table.
fn smtp_table(trigger: &str, server: &SmtpServer, tls: &str, password: &str) -> String {
    format!(
        "[triggers.{trigger}.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\nusername = \"{}\"\npassword = \"{password}\"\nca = \"{}\"\nfrom = \"crowsnest <crowsnest@example.test>\"\nto = [\"ops@example.test\", \"Dev <dev@example.test>\"]\n\n",
        server.port,
        server.user,
        server.ca.ca().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_through_aiosmtpd_with_starttls_and_auth() {
    logs::capture();
    let secret = "m4ilS3cretPassword";
    let server = SmtpServer::start(SmtpTls::StartTls, "crow", secret);
    let mut config = scenario_config("email", "");
    for trigger in ["simple", "batch", "flaky", "broken"] {
        config.push_str(&smtp_table(trigger, &server, "starttls", secret));
    }
    config.push_str("[triggers.intruder]\nplugin = \"email\"\nauto = false\nretries = 3\nretry_backoff_ms = 20\n\n");
    config.push_str(&smtp_table(
        "intruder",
        &server,
        "starttls",
        "not-the-password",
    ));
    let dispatcher = dispatcher(&config).await;
    let updates = three_updates();

    // Simple (threshold minor) and batch: 3 mails, over STARTTLS, authenticated.
    dispatcher
        .dispatch(&updates, DispatchScope::Automatic)
        .await;
    dispatcher.idle().await;
    let mails = server.wait_for(3, Duration::from_secs(10));
    assert_eq!(mails.len(), 3);
    let mut subjects: Vec<String> = mails.iter().map(|mail| subject(&mail.data)).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "3 updates available",
            "New tag found for container cache",
            "New tag found for container database"
        ]
    );
    for mail in &mails {
        assert!(mail.authenticated && mail.tls, "AUTH over STARTTLS");
        assert_eq!(mail.from, "crowsnest@example.test");
        assert_eq!(mail.to, ["ops@example.test", "dev@example.test"]);
        assert!(
            mail.data.contains("multipart/alternative"),
            "text and HTML parts"
        );
        assert!(mail.data.contains("text/html"));
    }
    let batch = mails
        .iter()
        .find(|m| subject(&m.data) == "3 updates available")
        .expect("the batch mail");
    for name in ["webapp", "database", "cache"] {
        assert!(batch.data.contains(name), "{}", batch.data);
    }

    // A transient refusal (451) is retried; a permanent one (550) is reported at once.
    let lib = &updates[1];
    server.reply_next(&["451 4.3.0 Try again later"]);
    dispatcher
        .run_now("flaky", lib)
        .await
        .expect("accepted on the second attempt");
    assert_eq!(server.accepted().len(), 4);
    server.reply_next(&["550 5.7.1 Relaying denied"]);
    let error = failure(dispatcher.run_now("flaky", lib).await);
    assert!(error.contains("550"), "{error}");
    assert_eq!(
        server.accepted().len(),
        4,
        "a permanent refusal is not retried (a retry would be accepted)"
    );

    // A wrong password: refused for good (535), reported without any password.
    let error = failure(dispatcher.run_now("intruder", lib).await);
    assert!(error.contains("535"), "{error}");
    assert!(
        !error.contains("not-the-password") && !error.contains(secret),
        "{error}"
    );

    // The server gone: retried, then reported.
    drop(server);
    let error = failure(dispatcher.run_now("broken", lib).await);
    assert!(error.contains("email: transport error"), "{error}");
    logs::assert_never_logged(secret);
    logs::assert_never_logged("not-the-password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_through_aiosmtpd_over_implicit_tls() {
    let secret = "tlsM4ilS3cret";
    let server = SmtpServer::start(SmtpTls::Tls, "crow", secret);
    let config = format!(
        "[triggers.mail]\nplugin = \"email\"\nhtml = false\ntitle = \"Update: {{{{ container.name }}}}\"\n\n{}",
        smtp_table("mail", &server, "tls", secret)
    );
    let dispatcher = dispatcher(&config).await;
    dispatcher
        .run_now("mail", &three_updates()[0])
        .await
        .expect("mailed over SMTPS");
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(
        subject(&mails[0].data),
        "Update: webapp",
        "the configured title template"
    );
    assert!(mails[0].tls && mails[0].authenticated);
    assert!(
        !mails[0].data.contains("text/html"),
        "html = false: text only"
    );
}

/// The broker's `[triggers.NAME.mqtt]` sub-table, over TLS.
fn mqtt_table(trigger: &str, broker: &Mosquitto, password: &str, extra: &str) -> String {
    format!(
        "[triggers.{trigger}.mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\nusername = \"{}\"\npassword = \"{password}\"\nca = \"{}\"\n{extra}\n\n",
        broker.tls_port,
        broker.user,
        broker.ca.ca().display()
    )
}

fn payload(message: &services::mosquitto::MqttMessage) -> Value {
    serde_json::from_str(&message.payload)
        .unwrap_or_else(|_| panic!("not JSON: {}", message.payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_to_mosquitto_with_tls_auth_and_home_assistant_discovery() {
    logs::capture();
    let secret = "mqttS3cretPassword";
    let broker = Mosquitto::start("crow", secret);
    let live = broker.subscribe("#");
    let config = [
        "[triggers.simple]\nplugin = \"mqtt\"\nthreshold = \"minor\"\nhass_discovery = true\nretries = 0\n\n".to_string(),
        mqtt_table("simple", &broker, secret, ""),
        "[triggers.batch]\nplugin = \"mqtt\"\nmode = \"batch\"\ntopic = \"crowsnest/batched\"\nqos = 2\nretries = 0\n\n".to_string(),
        mqtt_table("batch", &broker, secret, ""),
        "[triggers.intruder]\nplugin = \"mqtt\"\nauto = false\nretries = 2\nretry_backoff_ms = 20\n\n".to_string(),
        mqtt_table("intruder", &broker, "wrong-password", ""),
        "[triggers.narrow]\nplugin = \"mqtt\"\nauto = false\nhass_discovery = true\nretries = 2\n\n".to_string(),
        mqtt_table("narrow", &broker, secret, "topics = [\"crowsnest/#\"]"),
        format!("[triggers.down]\nplugin = \"mqtt\"\nauto = false\nretries = 1\nretry_backoff_ms = 20\n\n[triggers.down.mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n\n", crowsnest_testkit::ports::free_port()),
    ]
    .concat();
    let dispatcher = dispatcher(&config).await;
    let updates = three_updates();
    dispatcher
        .dispatch(&updates, DispatchScope::Automatic)
        .await;
    dispatcher.idle().await;

    // Simple (threshold minor, with discovery): 2 containers × (state, config, HA state);
    // batch: 3 containers + the batch message.
    let messages = live.wait_for(10, Duration::from_secs(10));
    let topic = |topic: &str| {
        messages
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("nothing on {topic}: {messages:#?}"))
    };
    assert!(
        !messages
            .iter()
            .any(|m| m.topic.contains("webapp") && !m.topic.contains("batched")),
        "major below the threshold"
    );
    let database = payload(topic("crowsnest/container/local/database"));
    assert_eq!(database["containerName"], "database");
    assert_eq!(database["remoteValue"], "1.1");
    assert_eq!(database["title"], "New tag found for container database");
    let discovery = payload(topic(
        "homeassistant/update/crowsnest_local_database/config",
    ));
    assert_eq!(discovery["unique_id"], "crowsnest_local_database");
    assert_eq!(discovery["state_topic"], "crowsnest/update/local/database");
    let state = payload(topic("crowsnest/update/local/cache"));
    assert_eq!(
        (
            state["installed_version"].as_str(),
            state["latest_version"].as_str()
        ),
        (Some("1.0.0"), Some("1.0.1"))
    );
    assert_eq!(
        state["release_url"],
        "https://example.test/cache/releases/1.0.1"
    );
    let batch = payload(topic("crowsnest/batched/batch"));
    assert_eq!(batch["count"], 3);
    assert_eq!(batch["title"], "3 updates available");
    assert!(topic("crowsnest/batched/container/local/webapp").qos >= 1);
    assert_eq!(messages.len(), 10, "{messages:#?}");

    // Retained: a subscriber arriving now still gets each container's state and discovery.
    let late = broker.subscribe("homeassistant/#");
    let retained = late.wait_for(2, Duration::from_secs(10));
    assert!(retained.iter().all(|m| m.retained), "{retained:#?}");

    // A wrong password: refused by the broker, not retried.
    let lib = &updates[1];
    let error = failure(dispatcher.run_now("intruder", lib).await);
    assert!(
        error.contains("bad username or password") || error.contains("not authorized"),
        "{error}"
    );
    // A topic outside the instance's filters: refused by the host, nothing published.
    let before = live.messages().len();
    let error = failure(dispatcher.run_now("narrow", lib).await);
    assert!(
        error.contains("outside this trigger's allowed topics"),
        "{error}"
    );
    // No broker there: retried, then reported.
    let error = failure(dispatcher.run_now("down", lib).await);
    assert!(error.contains("mqtt: transport error"), "{error}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        live.messages().len(),
        before,
        "nothing published by the refused deliveries"
    );
    logs::assert_never_logged(secret);
    logs::assert_never_logged("wrong-password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_test_command_sends_a_sample_and_reports() {
    let secret = "XcliS3cretHookToken";
    let path = format!("/services/T1/B1/{secret}");
    let emulator = Emulator::start(services::slack::Slack::Webhook { path: path.clone() }).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = crowsnest_testkit::test_env().join("component-cache");
    let closed = crowsnest_testkit::ports::free_port();
    let config_text = format!(
        "[plugins]\ndir = \"{dir}\"\ncache_dir = \"{cache}\"\n\n[triggers.chat]\nplugin = \"slack\"\nurl = \"{base}{path}\"\n\n[triggers.digest]\nplugin = \"slack\"\nmode = \"batch\"\nurl = \"{base}{path}\"\n\n[triggers.down]\nplugin = \"slack\"\nretries = 1\nretry_backoff_ms = 20\nurl = \"http://127.0.0.1:{closed}/services/T1/B1/{secret}\"\n",
        dir = dir.path().display(),
        cache = cache.display(),
        base = emulator.base,
    );
    let config = crowsnest_testkit::config::write(dir.path(), "crowsnest.toml", &config_text);
    let binary = Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"));
    let run = |args: &'static [&'static str]| {
        let (binary, dir, config) = (binary.clone(), dir.path().to_path_buf(), config.clone());
        tokio::task::spawn_blocking(move || binary.run_with_config(&dir, &config, args))
    };

    let output = run(&["triggers", "test", "chat"]).await.expect("run");
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("trigger `chat` (plugin slack, simple mode)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("title: New tag found for container crowsnest sample"),
        "{stdout}"
    );
    assert!(stdout.contains("delivered after 1 attempt"), "{stdout}");
    let texts = emulator.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("*New tag found for container crowsnest sample*"),
        "{texts:?}"
    );

    let output = run(&["triggers", "test", "digest", "--format", "json"])
        .await
        .expect("run");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        (report["mode"].as_str(), report["delivered"].as_bool()),
        (Some("batch"), Some(true))
    );
    assert_eq!(report["title"], "2 updates available");

    let output = run(&["triggers", "test", "down"]).await.expect("run");
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAILED after 2 attempts"), "{stdout}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stdout}{stderr}"
    );

    let output = run(&["triggers", "test", "nope"]).await.expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("configured: chat, digest, down"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(emulator.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_templates_and_channel_settings_are_config_errors_at_their_line() {
    let cases = [
        (
            "[triggers.chat]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nbody = \"\"\"\nline one\n{% if %}\n\"\"\"\n",
            "test-config.toml:4:8: triggers.chat.body: bad template: syntax error",
        ),
        (
            "[triggers.chat]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\ntitle = \"{{ container.nmae }}\"\n",
            "test-config.toml:4:9: triggers.chat.title: bad template: undefined value",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"not an address\"\nto = [\"a@b.test\"]\n",
            "test-config.toml:5:8: triggers.mail.smtp.from:",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"a@b.test\"\nto = [\"a@b.test\"]\ntls = \"tls\"\nca = \"/nonexistent/ca.pem\"\n",
            "test-config.toml:8:6: triggers.mail.smtp.ca: cannot read /nonexistent/ca.pem",
        ),
    ];
    for (text, expected) in cases {
        let config = crowsnest_testkit::config::parse(text);
        let store = Store::open_in_memory().await.expect("store");
        let error = TriggerDispatcher::from_config(
            &config,
            catalog().await,
            store,
            Arc::new(Metrics::new()),
        )
        .await
        .expect_err(text)
        .to_string();
        assert!(error.starts_with(expected), "{text}\n{error}");
    }
}
