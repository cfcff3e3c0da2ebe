use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Some(Path::new("config.toml")), &[])
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Config::parse(text, Some(Path::new("c.toml")), &env)
}

#[test]
fn defaults_when_empty() {
    let config = Config::parse("", None, &[]).unwrap();
    assert_eq!(config.plugins.dir, PathBuf::from("./plugins.d"));
    assert_eq!(config.plugins.memory_limit_mib, 64);
    assert!(config.registries.is_empty());
    assert_eq!(config.scan, ScanConfig::default());
    assert_eq!(config.server, ServerConfig::default());
}

/// Every kind of mistake is reported the same way: file, line, column, key, why.
#[test]
fn errors_name_file_line_column_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        // (config text, expected prefix of the message, expected words)
        (
            "[plugins]\ndir = \"x\"\nbroken =\n",
            "config.toml:3:",
            "string",
        ),
        (
            "[plugins]\ndir = \"x\"\nmemory_limit = 3\n",
            "config.toml:3:1: plugins.memory_limit",
            "unknown field",
        ),
        (
            "[scan]\nconcurrency = \"many\"\n",
            "config.toml:2:15: scan.concurrency",
            "invalid type",
        ),
        (
            "[watchers.local]\nsocket = \"/s\"\nspeed = 3\n",
            "config.toml:3:1: watchers.local.speed",
            "unknown field",
        ),
        (
            "[server]\nlisten = \"nowhere\"\n",
            "config.toml:2:10: server.listen",
            "address",
        ),
        (
            "[server]\ngrpc_listen = \"1.2.3\"\n",
            "config.toml:2:15: server.grpc_listen",
            "IP:port",
        ),
        (
            "[server]\ntoken = \" \"\n",
            "config.toml:2:9: server.token",
            "empty",
        ),
        (
            "[triggers.ops]\nplugin = \"webhook\"\nthreshold = \"huge\"\n",
            "config.toml:3:13: triggers.ops.threshold",
            "not a threshold",
        ),
        (
            "[triggers.ops]\nplugin = \"webhook\"\nretries = 99\n",
            "config.toml:3:11: triggers.ops.retries",
            "0 to 20",
        ),
        (
            "[triggers.ops]\nplugin = \"webhook\"\nonce = \"yes\"\n",
            "config.toml:3:8: triggers.ops.once",
            "invalid type",
        ),
        (
            "[registries.r]\nplugin = \"\"\n",
            "config.toml:2:10: registries.r.plugin",
            "must name a plugin",
        ),
        (
            "[registries.r]\nurl = \"x\"\n",
            "config.toml:1:",
            "registries.r.plugin",
        ),
        (
            "[registries.r]\nplugin = \"oci\"\nallowed_hosts = [\"a b\"]\n",
            "config.toml:3:17: registries.r.allowed_hosts",
            "",
        ),
        (
            "[watchers.w]\nhost = \"ftp://x\"\n",
            "config.toml:2:8: watchers.w.host",
            "",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"maybe\"\n",
            "config.toml:7:7: triggers.mail.smtp.tls",
            "not starttls, tls or none",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nport = 99999\n",
            "config.toml:7:8: triggers.mail.smtp.port",
            "",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nsender = \"x\"\n",
            "config.toml:7:10: triggers.mail.smtp.sender",
            "unknown field",
        ),
        (
            "[triggers.mail]\nplugin = \"email\"\n[triggers.mail.smtp]\nhost = \"h\"\nfrom = \"a@b\"\n",
            "config.toml:3:",
            "triggers.mail.smtp.to: missing",
        ),
        (
            "[triggers.ha]\nplugin = \"mqtt\"\n[triggers.ha.mqtt]\nurl = \"http://broker\"\n",
            "config.toml:4:7: triggers.ha.mqtt.url",
            "scheme",
        ),
        (
            "[triggers.ha]\nplugin = \"mqtt\"\nmqtt = { url = \"mqtt://b\", cert = \"/c.pem\" }\n",
            "config.toml:3:",
            "triggers.ha.mqtt.cert: `cert` and `key` go together",
        ),
        (
            "[actions.nightly]\nthreshold = \"huge\"\n",
            "config.toml:2:13: actions.nightly.threshold",
            "not a threshold",
        ),
        (
            "[actions.nightly]\nauto = true\nrollback = false\n",
            "config.toml:3:1: actions.nightly.rollback",
            "unknown field",
        ),
        (
            "[actions.nightly]\ncooldown_secs = -1\n",
            "config.toml:2:17: actions.nightly.cooldown_secs",
            "",
        ),
    ];
    for (text, prefix, words) in cases {
        let err = parse(text).expect_err(text);
        let shown = err.to_string();
        assert!(shown.starts_with(prefix), "{text:?}: {shown}");
        assert!(shown.contains(words), "{text:?}: {shown}");
    }
}

#[test]
fn plugin_settings_and_host_keys_are_split() {
    let config = parse(
        "[registries.local]\nplugin = \"oci\"\nurl = \"http://127.0.0.1:5000\"\ninsecure = true\nmirrors = [\"a:1\"]\nstrategy = \"regex\"\n\n[triggers.ops]\nplugin = \"webhook\"\nurl = \"http://h\"\nthreshold = \"Minor\"\nmode = \"batch\"\nretry_backoff_ms = 5\n",
    )
    .unwrap();
    let local = &config.registries["local"];
    assert_eq!(local.plugin, "oci");
    assert_eq!(local.host.strategy.as_deref(), Some("regex"));
    let settings = local.plugin_settings();
    assert!(settings.contains(&("url".into(), "http://127.0.0.1:5000".into())));
    assert!(local.host.insecure, "`insecure` is a host key");
    assert!(!settings.iter().any(|(key, _)| key == "insecure"));
    assert!(settings.contains(&("mirrors".into(), "[\"a:1\"]".into())));
    assert!(!settings.iter().any(|(key, _)| key == "strategy"));
    let ops = &config.triggers["ops"];
    assert_eq!(ops.host.threshold, Threshold::Minor);
    assert_eq!(ops.host.mode, Mode::Batch);
    assert_eq!(ops.host.retry_backoff, Duration::from_millis(5));
    assert_eq!(
        ops.plugin_settings(),
        vec![("url".into(), "http://h".into())]
    );
}

#[test]
fn actions_read_with_their_defaults() {
    let config = parse(
        "[actions.nightly]\nthreshold = \"Minor\"\nmode = \"batch\"\nauto = true\nwindow = \"* 2-4 * * SAT\"\ncooldown_secs = 3600\n\n[actions.manual]\n",
    )
    .unwrap();
    let nightly = &config.actions["nightly"];
    assert_eq!(nightly.threshold, Threshold::Minor);
    assert_eq!(nightly.mode, Mode::Batch);
    assert!(nightly.auto);
    assert_eq!(nightly.window.as_deref(), Some("* 2-4 * * SAT"));
    assert_eq!(nightly.cooldown_secs, 3600);
    assert_eq!(config.actions["manual"], ActionConfig::default());
    assert!(!config.actions["manual"].auto, "acting needs asking for");
    let window = config.error_at(&["actions", "nightly", "window"], "bad");
    assert_eq!(window.line, Some(5));
}

#[test]
fn errors_at_any_key_after_loading() {
    let config = parse("[registries.hub]\nplugin = \"dockerhub\"\npassword = \"x\"\n").unwrap();
    let at_key = config.error_at(&["registries", "hub", "password"], "refused");
    assert_eq!(
        at_key.to_string(),
        "config.toml:3:12: registries.hub.password: refused"
    );
    let missing = config.error_at(&["registries", "hub", "username"], "required");
    assert_eq!(
        missing.line,
        Some(1),
        "a missing key is reported at its table"
    );
    assert_eq!(missing.key.as_deref(), Some("registries.hub.username"));
}

#[test]
fn environment_overrides_keep_strings_as_strings() {
    let config = parse_env(
        "[registries.hub]\nplugin = \"dockerhub\"\n",
        &[
            ("CROWSNEST__REGISTRIES__HUB__PASSWORD", "1e3"),
            ("CROWSNEST__REGISTRIES__HUB__USERNAME", "0x1F"),
            ("CROWSNEST__REGISTRIES__HUB__TOKEN", "007"),
            ("CROWSNEST__PLUGINS__CPU_LIMIT_MS", "250"),
            ("CROWSNEST__SERVER__EVENTS", "false"),
            ("CROWSNEST__SERVER__TOKEN", "12345"),
        ],
    )
    .unwrap();
    let hub = &config.registries["hub"];
    assert_eq!(hub.get_str("password"), Some("1e3"));
    assert_eq!(hub.get_str("username"), Some("0x1F"));
    assert_eq!(hub.get_str("token"), Some("007"));
    assert_eq!(
        config.plugins.cpu_limit_ms, 250,
        "a number where a number is needed"
    );
    assert!(!config.server.events, "a boolean where a boolean is needed");
    assert_eq!(
        config.server.token.as_deref(),
        Some("12345"),
        "a string stays a string"
    );
}

#[test]
fn environment_errors_name_the_variable() {
    let err = parse_env("", &[("CROWSNEST__SCAN__CONCURRENCY", "lots")]).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "environment variable CROWSNEST__SCAN__CONCURRENCY: scan.concurrency: invalid type"
        ),
        "{shown}"
    );
    let err = parse_env("", &[("CROWSNEST__SCAN__NOPE", "1")]).unwrap_err();
    assert!(err.to_string().contains("CROWSNEST__SCAN__NOPE"), "{err}");
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn secret_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let text = format!(
        "[registries.priv]\nplugin = \"oci\"\npassword_file = \"{}\"\n\n[server]\ntoken_file = \"{}\"\n",
        secret.display(),
        secret.display()
    );
    let config = parse_env(&text, &[("CROWSNEST__REGISTRIES__PRIV__USERNAME", "alice")]).unwrap();
    assert_eq!(
        config.registries["priv"].get_str("password"),
        Some("s3cret")
    );
    assert_eq!(config.registries["priv"].get_str("username"), Some("alice"));
    assert_eq!(config.server.token.as_deref(), Some("s3cret"));
}

#[test]
fn missing_secret_file_names_key_and_line() {
    let err = parse("[registries.p]\nplugin = \"oci\"\npassword_file = \"/nonexistent/pw\"\n")
        .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("registries.p.password_file"));
    assert_eq!(err.line, Some(3));
}

#[test]
fn smtp_and_mqtt_tables_are_host_keys_with_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "m41l-s3cret\n").unwrap();
    let text = format!(
        "[triggers.mail]\nplugin = \"email\"\ntitle = \"{{{{ container.name }}}}\"\n\n[triggers.mail.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"TLS\"\nusername = \"crow\"\npassword_file = \"{}\"\nfrom = \"crowsnest <c@example.test>\"\nto = [\"ops@example.test\"]\n\n[triggers.ha]\nplugin = \"mqtt\"\ntopic = \"updates\"\n[triggers.ha.mqtt]\nurl = \"mqtts://127.0.0.1:8883\"\nusername = \"crow\"\n",
        secret.display()
    );
    let config = parse_env(
        &text,
        &[("CROWSNEST__TRIGGERS__HA__MQTT__PASSWORD", "env-s3cret")],
    )
    .unwrap();
    let mail = &config.triggers["mail"];
    assert!(
        mail.plugin_settings().is_empty(),
        "the smtp table is the host's"
    );
    assert_eq!(mail.host.title.as_deref(), Some("{{ container.name }}"));
    let smtp = mail.host.smtp.as_ref().unwrap();
    assert_eq!(smtp.tls, SmtpTls::Tls);
    assert_eq!(smtp.port, Some(2525));
    assert_eq!(
        smtp.password.as_ref().map(SecretText::expose),
        Some("m41l-s3cret")
    );
    let ha = &config.triggers["ha"];
    assert_eq!(
        ha.plugin_settings(),
        vec![("topic".into(), "updates".into())]
    );
    let mqtt = ha.host.mqtt.as_ref().unwrap();
    assert_eq!(
        mqtt.password.as_ref().map(SecretText::expose),
        Some("env-s3cret")
    );
    assert_eq!(mqtt.topics, vec!["crowsnest/#", "homeassistant/#"]);
    let shown = serde_json::to_string(&ha.host).unwrap() + &format!("{:?}", mail.host);
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn kubernetes_watchers_are_their_own_kind() {
    let config = parse(
        "[watchers.local]\nkind = \"docker\"\nsocket = \"/run/docker.sock\"\n\n[watchers.cluster]\nkind = \"kubernetes\"\nkubeconfig = \"/etc/kube.yaml\"\ncontext = \"prod\"\nnamespaces = [\"shop\", \"ops\"]\nlabel_selector = \"app=web\"\n",
    )
    .unwrap();
    assert_eq!(config.watchers.keys().collect::<Vec<_>>(), ["local"]);
    let cluster = &config.kubernetes_watchers["cluster"];
    assert_eq!(cluster.kubeconfig, Some(PathBuf::from("/etc/kube.yaml")));
    assert_eq!(cluster.context.as_deref(), Some("prod"));
    assert_eq!(cluster.namespaces, ["shop", "ops"]);
    assert_eq!(cluster.label_selector.as_deref(), Some("app=web"));
    assert!(cluster.watch_by_default);
    // In-cluster: neither kubeconfig nor context.
    let in_cluster = parse("[watchers.k]\nkind = \"kubernetes\"\n").unwrap();
    assert_eq!(
        in_cluster.kubernetes_watchers["k"],
        KubernetesWatcherConfig {
            watch_by_default: true,
            ..Default::default()
        }
    );
}

#[test]
fn kubernetes_watcher_errors_name_file_line_column_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[watchers.k]\nkind = \"kubernetes\"\nsocket = \"/x\"\n",
            "config.toml:3:1: watchers.k.socket: unknown field `socket`",
        ),
        (
            "[watchers.k]\nkind = \"kubernetes\"\nnamespaces = [\"Bad_Name\"]\n",
            "config.toml:3:14: watchers.k.namespaces: `Bad_Name` is not a namespace name",
        ),
        (
            "[watchers.k]\nkind = \"kubernetes\"\nlabel_selector = \"\"\n",
            "config.toml:3:18: watchers.k.label_selector: is empty",
        ),
        (
            "[watchers.k]\nkind = \"kubernetes\"\nnamespaces = \"shop\"\n",
            "config.toml:3:14: watchers.k.namespaces: invalid type",
        ),
        (
            "[watchers.k]\nkind = \"swarm-ish\"\n",
            "config.toml:2:8: watchers.k.kind: `swarm-ish` is not a watcher kind (docker, kubernetes)",
        ),
        (
            "[watchers.k]\nkind = 3\n",
            "config.toml:2:8: watchers.k.kind: must be a string",
        ),
    ];
    for (text, expected) in cases {
        let error = parse(text).unwrap_err().to_string();
        assert!(
            error.starts_with(expected),
            "{text:?}\n  got:      {error}\n  expected: {expected}…"
        );
    }
}
