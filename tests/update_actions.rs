//! Update actions against the real Docker engine and real registries: a
//! container with a rich configuration replaced on a new image (every field
//! of `docker inspect` compared before and after), failing images rolled
//! back, what must change nothing (dry run, cooldown, labels), two concurrent
//! requests, a Compose project, crowsnest's own container (the self-update
//! hand-over), Watchtower's `/v1/update` through the HTTP API, and Swarm
//! services on an engine of the test's own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crowsnest_config::{ActionConfig, Config};
use crowsnest_docker::{DockerWatcher, WatcherConfig};
use crowsnest_engine::actions::{ConfiguredAction, RunOrigin, UpdateActions};
use crowsnest_engine::metrics::Metrics;
use crowsnest_engine::scan::Scanner;
use crowsnest_model::{ContainerObject, UpdateOutcome};
use crowsnest_testkit::cases::check_each;
use crowsnest_testkit::engine::{Engine, OwnEngine};
use crowsnest_testkit::images::test_image;
use crowsnest_testkit::scans::{assert_tag_update, images};
use crowsnest_testkit::world::{TestWorld, WORLD_LABEL};
use crowsnest_testkit::{config, ports};

/// Host keys of the test action: short waits, so that failures show fast.
const ACTION: &str =
    "[actions.nightly]\ntimeout_secs = 30\nsettle_secs = 2\nstop_timeout_secs = 1\n";

/// A config watching the shared engine, with `registries` and the test
/// action plus `action_extra` lines.
fn action_config(world: &TestWorld, registries: &str, action_extra: &str) -> PathBuf {
    world.config(&format!(
        "{}{registries}\n{ACTION}{action_extra}\n",
        config::watcher(&world.engine, "")
    ))
}

/// Logs of the code under test, as `RUST_LOG` asks (shown for failing tests).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A scanner and the update actions of the config at `path`.
async fn actions(
    world: &TestWorld,
    path: &std::path::Path,
) -> (Scanner, UpdateActions, Arc<Metrics>) {
    logs();
    let scanner = world.scanner(path).await;
    let metrics = Arc::new(Metrics::new());
    let config = config::load(path);
    let actions = UpdateActions::from_config(&config, scanner.clone(), Arc::clone(&metrics))
        .unwrap_or_else(|error| panic!("actions: {error}"));
    (scanner, actions, metrics)
}

/// The container `id` as a scan of `image` sees it.
async fn scanned(scanner: &Scanner, image: &str, id: &str) -> ContainerObject {
    let report = scanner.scan(&images(&[image])).await;
    report
        .containers
        .iter()
        .find(|container| container.id == id)
        .cloned()
        .unwrap_or_else(|| panic!("container {id} not in the scan of {image}: {report:#?}"))
}

/// `docker inspect` of `id`.
fn inspect(engine: &Engine, id: &str) -> Value {
    let text = engine.docker(&["inspect", "--type", "container", id]);
    let list: Value = serde_json::from_str(&text).expect("inspect is JSON");
    list[0].clone()
}

/// Ids of the containers of this world whose name starts with `name`.
fn world_containers(world: &TestWorld, name: &str) -> Vec<(String, String)> {
    world
        .docker(&[
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            &format!("label={WORLD_LABEL}={}", world.id),
            "--format",
            "{{.ID}} {{.Names}}",
        ])
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, names)| names.starts_with(name))
        .map(|(id, names)| (id.to_owned(), names.to_owned()))
        .collect()
}

/// Every leaf of `value` as `path = value`, ids written `<ID>`.
fn flatten(value: &Value, path: &str, ids: &[&str], out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let key = ids
                    .iter()
                    .fold(key.clone(), |key, id| key.replace(id, "<ID>"));
                flatten(inner, &format!("{path}.{key}"), ids, out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                flatten(inner, &format!("{path}[{index}]"), ids, out);
            }
        }
        leaf => {
            let text = ids
                .iter()
                .fold(leaf.to_string(), |text, id| text.replace(id, "<ID>"));
            out.insert(path.to_owned(), text);
        }
    }
}

/// `docker inspect` in an order-free form: mounts keyed by destination,
/// network aliases sorted (the engine lists them in no fixed order) after
/// the container's own ids are normalised (the old and the new id sort
/// differently against a fixed alias).
fn order_free(mut inspected: Value, ids: &[&str]) -> Value {
    if let Some(mounts) = inspected["Mounts"].as_array().cloned() {
        let keyed: serde_json::Map<String, Value> = mounts
            .into_iter()
            .map(|mount| {
                (
                    mount["Destination"].as_str().unwrap_or_default().to_owned(),
                    mount,
                )
            })
            .collect();
        inspected["Mounts"] = Value::Object(keyed);
    }
    if let Some(networks) = inspected["NetworkSettings"]["Networks"].as_object_mut() {
        for endpoint in networks.values_mut() {
            if let Some(aliases) = endpoint["Aliases"].as_array_mut() {
                aliases.sort_by_key(|alias| {
                    ids.iter()
                        .fold(alias.to_string(), |text, id| text.replace(id, "<ID>"))
                });
            }
        }
    }
    inspected
}

/// The id, its 12-character form, for normalising.
fn id_forms(id: &str) -> [String; 2] {
    [id.to_owned(), id.get(..12).unwrap_or(id).to_owned()]
}

/// Fields that follow from a new container on a new image: ids, times,
/// process state, the image, the image's own version label, addresses the
/// engine assigns, and the files the engine keeps per container.
fn derived(path: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        ".Id",
        ".Created",
        ".Image",
        ".Config.Image",
        ".State.",
        ".ResolvConfPath",
        ".HostnamePath",
        ".HostsPath",
        ".LogPath",
        ".GraphDriver.",
        ".NetworkSettings.SandboxID",
        ".NetworkSettings.SandboxKey",
    ];
    PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        || path == ".Config.Labels.org.opencontainers.image.version"
        || (path.starts_with(".NetworkSettings.")
            && ["EndpointID", "MacAddress", "NetworkID"]
                .iter()
                .any(|field| path.ends_with(field)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rich_container_is_replaced_with_the_same_configuration() {
    let world = TestWorld::new("update-rich");
    let registries = world.registries.clone();
    let (user, password) = registries.basic_user.clone();
    world.login(&registries.basic, &user, &password);
    let image = format!("{}/{}", registries.basic, world.repository("app"));
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    // Only the pull with the plugin's credentials can bring 1.1 back.
    world.docker(&["rmi", &format!("{image}:1.1")]);
    let (front, prefix) = world.network();
    let (back, _) = world.network();
    let named = world.volume();
    let conf = world.dir().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("app.conf"), "mode = prod\n").unwrap();
    let port = ports::free_port().to_string();
    let ip = format!("{prefix}10");
    let web = world.run_with(
        &[
            "--network",
            &front,
            "--network-alias",
            "web",
            "--ip",
            &ip,
            "--hostname",
            "web-host",
            "--env",
            "MODE=prod",
            "--env",
            "GREETING=hello world",
            "--volume",
            &format!("{}:/conf:ro", conf.display()),
            "--volume",
            &format!("{named}:/named"),
            "--volume",
            "/anon",
            "--restart",
            "unless-stopped",
            "--health-cmd",
            "test -f /etc/crowsnest-test-version",
            "--health-interval",
            "1s",
            "--health-retries",
            "3",
            "--memory",
            "64m",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "64",
            "--cap-drop",
            "NET_RAW",
            "--cap-add",
            "SYS_NICE",
            "--workdir",
            "/srv",
            "--stop-timeout",
            "2",
            "--log-opt",
            "max-size=1m",
            "--tmpfs",
            "/run:size=1m",
            "--publish",
            &format!("127.0.0.1:{port}:80"),
            "--device",
            "/dev/zero:/dev/zero2",
        ],
        &format!("{image}:1.0"),
        &[("team", "web"), ("crowsnest.update", "true")],
    );
    world.docker(&["network", "connect", "--alias", "api", &back, &web.id]);
    let sidecar = world.run_with(
        &["--network", &format!("container:{}", web.id)],
        &test_image("1.0"),
        &[("role", "sidecar")],
    );
    world.docker(&[
        "exec",
        "-u",
        "0",
        &web.id,
        "sh",
        "-c",
        "echo named > /named/f && echo anon > /anon/f",
    ]);
    let before = inspect(&world.engine, &web.id);
    let anonymous = before["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mount| mount["Destination"] == "/anon")
        .and_then(|mount| mount["Name"].as_str())
        .expect("the anonymous volume")
        .to_owned();
    world.adopt_volume(&anonymous);
    let sidecar_before = inspect(&world.engine, &sidecar.id);

    let path = action_config(
        &world,
        &format!(
            "[registries.private]\nplugin = \"oci\"\nurl = \"http://{}\"\nusername = \"{user}\"\npassword = \"{password}\"\n",
            registries.basic
        ),
        "opt_in = true\n",
    );
    let (scanner, actions, metrics) = actions(&world, &path).await;
    let object = scanned(&scanner, &image, &web.id).await;
    assert_tag_update(&object, "1.0", "1.1", "minor");
    let outcome = actions.update_one(&object, false).await.expect("an action");
    assert_eq!(outcome.status, "updated", "{outcome:#?}");
    println!(
        "rich container with a sidecar updated in {} ms:\n  {}",
        outcome.duration_ms,
        outcome.steps.join("\n  ")
    );
    assert_eq!(outcome.dependents, vec![sidecar.name.clone()]);
    let new_id = outcome.new_container_id.clone().expect("the replacement");
    assert_ne!(new_id, web.id);
    assert_eq!(outcome.to_image, format!("{image}:1.1"));

    // Field by field: only the image and what follows from it changed.
    let after = inspect(&world.engine, &new_id);
    let (old_forms, new_forms) = (id_forms(&web.id), id_forms(&new_id));
    let ids: Vec<&str> = old_forms
        .iter()
        .chain(&new_forms)
        .map(String::as_str)
        .collect();
    let (mut old_fields, mut new_fields) = (BTreeMap::new(), BTreeMap::new());
    flatten(&order_free(before.clone(), &ids), "", &ids, &mut old_fields);
    flatten(&order_free(after.clone(), &ids), "", &ids, &mut new_fields);
    let paths: BTreeSet<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    let binds_before = before["HostConfig"]["Binds"].as_array().unwrap().clone();
    let binds_after = after["HostConfig"]["Binds"].as_array().unwrap().clone();
    let kept_anonymous = Value::String(format!("{anonymous}:/anon"));
    let mut unexpected = Vec::new();
    let mut table = vec![format!(
        "{:<62} {:<10} {}",
        "field", "verdict", "before -> after"
    )];
    for path in paths {
        let (old, new) = (old_fields.get(path), new_fields.get(path));
        if old == new {
            continue;
        }
        let verdict = if derived(path) {
            "derived"
        } else if (path.starts_with(".HostConfig.Binds[") || *path == ".Mounts./anon.Mode")
            && binds_after.contains(&kept_anonymous)
            && binds_after
                .iter()
                .filter(|bind| **bind != kept_anonymous)
                .eq(binds_before.iter())
        {
            // The anonymous volume, now bound by its name (mode `z`, the engine's
            // default for a bind): the same volume at the same path.
            "volume kept"
        } else {
            unexpected.push(path.clone());
            "UNEXPECTED"
        };
        table.push(format!(
            "{path:<62} {verdict:<10} {} -> {}",
            old.map_or("(none)", String::as_str),
            new.map_or("(none)", String::as_str)
        ));
    }
    println!(
        "docker inspect, before and after the update ({} fields compared):\n{}",
        old_fields.len(),
        table.join("\n")
    );
    assert!(
        unexpected.is_empty(),
        "fields that changed: {unexpected:?}\n{}",
        table.join("\n")
    );
    for (path, expected) in [
        (".Name", format!("\"/{}\"", web.name)),
        (".Config.Image", format!("\"{image}:1.1\"")),
        (
            ".Config.Labels.org.opencontainers.image.version",
            "\"1.1\"".into(),
        ),
        (".Config.Labels.team", "\"web\"".into()),
        (".Config.Hostname", "\"web-host\"".into()),
        (
            ".HostConfig.RestartPolicy.Name",
            "\"unless-stopped\"".into(),
        ),
        (".HostConfig.Memory", "67108864".into()),
        (
            &format!(".NetworkSettings.Networks.{front}.IPAMConfig.IPv4Address"),
            format!("\"{ip}\""),
        ),
        (
            &format!(".NetworkSettings.Networks.{front}.IPAddress"),
            format!("\"{ip}\""),
        ),
        (".State.Health.Status", "\"healthy\"".into()),
    ] {
        assert_eq!(new_fields.get(path), Some(&expected), "{path}");
    }
    for (network, alias) in [(&front, "web"), (&back, "api")] {
        let aliases = &after["NetworkSettings"]["Networks"][network.as_str()]["Aliases"];
        assert!(
            aliases.as_array().unwrap().contains(&Value::from(alias)),
            "{network}: {aliases}"
        );
    }
    // The data stayed in the volumes; the old containers are gone.
    let data = world.docker(&[
        "exec",
        &new_id,
        "/bin/busybox",
        "cat",
        "/named/f",
        "/anon/f",
        "/conf/app.conf",
    ]);
    assert_eq!(data, "named\nanon\nmode = prod");
    assert!(!world
        .engine
        .docker_ok(&["inspect", "--type", "container", &web.id]));
    let names: Vec<String> = world_containers(&world, "")
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("-crowsnest-old-")),
        "{names:?}"
    );
    // The sidecar was recreated against the replacement, with its own configuration.
    let sidecar_now = world_containers(&world, &sidecar.name);
    assert_eq!(sidecar_now.len(), 1, "{sidecar_now:?}");
    let sidecar_after = inspect(&world.engine, &sidecar_now[0].0);
    assert_eq!(
        sidecar_after["HostConfig"]["NetworkMode"],
        format!("container:{new_id}")
    );
    assert_eq!(sidecar_after["State"]["Running"], true);
    assert_eq!(
        sidecar_after["Config"]["Labels"],
        sidecar_before["Config"]["Labels"]
    );
    assert_eq!(
        sidecar_after["Config"]["Image"],
        sidecar_before["Config"]["Image"]
    );
    // History and metrics.
    let history: Vec<UpdateOutcome> = scanner
        .store()
        .update_attempts("local", &web.name, 5)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, "updated");
    assert_eq!(
        history[0].new_container_id.as_deref(),
        Some(new_id.as_str())
    );
    let text = metrics.render(&[]);
    assert!(
        text.contains(
            "crowsnest_container_updates_total{action=\"nightly\",outcome=\"updated\"} 1"
        ),
        "{text}"
    );
    // The store knows the replacement, checked: no update left.
    let stored: Option<ContainerObject> = scanner.store().get_container(&new_id).await.unwrap();
    let stored = stored.expect("the replacement is stored");
    assert!(!stored.update_available, "{stored:#?}");
    let gone: Option<ContainerObject> = scanner.store().get_container(&web.id).await.unwrap();
    assert!(gone.is_none());
}

/// A new image that cannot prove itself.
struct Broken {
    what: &'static str,
    dockerfile: &'static str,
    run_options: &'static [&'static str],
    words: &'static [&'static str],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_image_is_rolled_back() {
    let cases = [
        Broken {
            what: "exits at once",
            dockerfile: "CMD [\"sh\", \"-c\", \"echo failing on purpose; exit 3\"]",
            run_options: &[],
            words: &["exited with code 3", "failing on purpose"],
        },
        Broken {
            what: "exits at once, restarted by its policy",
            dockerfile: "CMD [\"sh\", \"-c\", \"echo failing on purpose; exit 4\"]",
            run_options: &["--restart", "always"],
            words: &["code 4", "failing on purpose"],
        },
        Broken {
            what: "unhealthy",
            dockerfile: "HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD [\"sh\", \"-c\", \"echo not ready; exit 1\"]",
            run_options: &["--restart", "unless-stopped"],
            words: &["unhealthy", "not ready"],
        },
    ];
    check_each(
        &cases,
        |case| case.what.to_owned(),
        |case| async move {
            let world = TestWorld::new("update-rollback");
            let image = world.plain_image("app");
            let broken = format!("{}-broken:1.1", world.repository("app"));
            world.build(
                &broken,
                &format!("FROM {}\n{}\n", test_image("1.1"), case.dockerfile),
            );
            world.push_tags(&image, &[("1.0", &test_image("1.0")), ("1.1", &broken)]);
            let old = world.run_with(case.run_options, &format!("{image}:1.0"), &[]);
            let before = inspect(&world.engine, &old.id);
            let path = action_config(&world, "", "");
            let (scanner, actions, metrics) = actions(&world, &path).await;
            let object = scanned(&scanner, &image, &old.id).await;
            let outcome = actions.update_one(&object, false).await.expect("an action");
            assert_eq!(outcome.status, "rolled-back", "{outcome:#?}");
            let message = outcome.message.clone().unwrap_or_default();
            println!(
                "{}: rolled back in {} ms: {message}",
                case.what, outcome.duration_ms
            );
            for word in case.words {
                assert!(message.contains(word), "`{word}` not in: {message}");
            }
            assert!(
                outcome
                    .steps
                    .iter()
                    .any(|step| step.starts_with("rollback: renamed")),
                "{:?}",
                outcome.steps
            );
            // The old container runs again, under its own name and id; nothing else is left.
            let now = inspect(&world.engine, &old.id);
            assert_eq!(now["Name"], before["Name"]);
            assert_eq!(now["State"]["Running"], true, "{:#}", now["State"]);
            assert_eq!(now["Config"], before["Config"]);
            assert_eq!(now["HostConfig"], before["HostConfig"]);
            let left = world_containers(&world, "");
            assert_eq!(left, vec![(old.id.clone(), old.name.clone())]);
            let history: Vec<UpdateOutcome> = scanner
                .store()
                .update_attempts("local", &old.name, 5)
                .await
                .unwrap();
            assert_eq!(history[0].status, "rolled-back");
            assert!(metrics.render(&[]).contains(
                "crowsnest_container_updates_total{action=\"nightly\",outcome=\"rolled-back\"} 1"
            ));
        },
    )
    .await;
}

/// A request that must leave the container exactly as it was.
struct Untouched {
    what: &'static str,
    action_extra: &'static str,
    labels: &'static [(&'static str, &'static str)],
    dry_run: bool,
    status: &'static str,
    words: &'static [&'static str],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_cooldowns_and_labels_change_nothing() {
    let cases = [
        Untouched {
            what: "dry run asked for",
            action_extra: "",
            labels: &[],
            dry_run: true,
            status: "dry-run",
            words: &[
                "pull ",
                "stop ",
                "rename ",
                "create ",
                "remove the old container",
            ],
        },
        Untouched {
            what: "dry-run action",
            action_extra: "dry_run = true\n",
            labels: &[],
            dry_run: false,
            status: "dry-run",
            words: &["pull "],
        },
        Untouched {
            what: "image younger than the cooldown",
            action_extra: "cooldown_secs = 864000\n",
            labels: &[],
            dry_run: false,
            status: "skipped",
            words: &["cooldown asks for 864000s"],
        },
        Untouched {
            what: "opted out",
            action_extra: "",
            labels: &[("crowsnest.update", "false")],
            dry_run: false,
            status: "skipped",
            words: &["opted out"],
        },
        Untouched {
            what: "Watchtower's label says no",
            action_extra: "",
            labels: &[("com.centurylinklabs.watchtower.enable", "false")],
            dry_run: false,
            status: "skipped",
            words: &["opted out"],
        },
        Untouched {
            what: "opt-in action, no label",
            action_extra: "opt_in = true\n",
            labels: &[],
            dry_run: false,
            status: "skipped",
            words: &["opt-in"],
        },
    ];
    check_each(
        &cases,
        |case| case.what.to_owned(),
        |case| async move {
            let world = TestWorld::new("update-untouched");
            let image = world.plain_image("app");
            world.push_tags(
                &image,
                &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
            );
            world.docker(&["rmi", &format!("{image}:1.1")]);
            let old = world.run(&format!("{image}:1.0"), case.labels);
            let before = inspect(&world.engine, &old);
            let path = action_config(&world, "", case.action_extra);
            let (scanner, actions, _) = actions(&world, &path).await;
            let object = scanned(&scanner, &image, &old).await;
            let outcome = actions
                .update_one(&object, case.dry_run)
                .await
                .expect("an action");
            assert_eq!(outcome.status, case.status, "{outcome:#?}");
            let said = format!(
                "{:?} {}",
                outcome.steps,
                outcome.message.clone().unwrap_or_default()
            );
            for word in case.words {
                assert!(said.contains(word), "`{word}` not in: {said}");
            }
            assert_eq!(
                inspect(&world.engine, &old),
                before,
                "the container changed"
            );
            assert!(
                !world
                    .engine
                    .docker_ok(&["image", "inspect", &format!("{image}:1.1")]),
                "nothing was pulled"
            );
            assert_eq!(world_containers(&world, "").len(), 1);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_requests_update_once() {
    let world = TestWorld::new("update-twice");
    let image = world.plain_image("app");
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    let old = world.run_with(&[], &format!("{image}:1.0"), &[]);
    let path = action_config(&world, "", "");
    let (scanner, actions, metrics) = actions(&world, &path).await;
    let object = scanned(&scanner, &image, &old.id).await;
    let (first, second) = tokio::join!(
        actions.update_one(&object, false),
        actions.update_one(&object, false)
    );
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by(|a, b| a.status.cmp(&b.status));
    assert_eq!(
        [outcomes[0].status.as_str(), outcomes[1].status.as_str()],
        ["skipped", "updated"],
        "{outcomes:#?}"
    );
    assert!(outcomes[0]
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("already under way"));
    let left = world_containers(&world, "");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(Some(&left[0].0), outcomes[1].new_container_id.as_ref());
    assert_eq!(
        world.docker(&["inspect", "--format", "{{.Config.Image}}", &left[0].0]),
        format!("{image}:1.1")
    );
    // A third request, later, finds nothing left to do.
    let again = actions.update_one(&object, false).await.unwrap();
    assert_eq!(again.status, "skipped");
    assert!(metrics.render(&[]).contains("outcome=\"updated\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_container_stays_owned_by_its_project() {
    let world = TestWorld::new("update-compose");
    let image = world.plain_image("app");
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    let project = format!("cn{}x{}", std::process::id(), world.id.len());
    let file = world.dir().join("docker-compose.yml");
    std::fs::write(
        &file,
        format!(
            "version: \"2.4\"\nservices:\n  app:\n    image: \"{image}:1.0\"  # deployed by the test\n    network_mode: none\n    labels:\n      {WORLD_LABEL}: \"{}\"\n",
            world.id
        ),
    )
    .unwrap();
    let original = std::fs::read_to_string(&file).unwrap();
    let compose = |args: &[&str]| -> String {
        let output = std::process::Command::new("docker-compose")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", world.engine.socket().display()),
            )
            .arg("--project-name")
            .arg(&project)
            .arg("--file")
            .arg(&file)
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("docker-compose (apt-get install docker-compose): {error}")
            });
        assert!(
            output.status.success(),
            "docker-compose {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    compose(&["up", "--detach"]);
    let id = compose(&["ps", "--quiet"]);
    let labels_before = inspect(&world.engine, &id)["Config"]["Labels"].clone();
    let path = action_config(&world, "", "compose_rewrite = true\n");
    let (scanner, actions, _) = actions(&world, &path).await;
    let object = scanned(&scanner, &image, &id).await;
    let outcome = actions.update_one(&object, false).await.expect("an action");
    assert_eq!(outcome.status, "updated", "{outcome:#?}");
    let new_id = outcome.new_container_id.clone().unwrap();
    assert!(
        outcome
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("now names"),
        "{outcome:#?}"
    );
    // Every compose label kept: the project still owns the container.
    let labels_after = inspect(&world.engine, &new_id)["Config"]["Labels"].clone();
    let compose_labels = |labels: &Value| -> BTreeMap<String, Value> {
        labels
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.starts_with("com.docker.compose."))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    assert!(
        compose_labels(&labels_before).len() >= 5,
        "{labels_before:#}"
    );
    assert_eq!(
        compose_labels(&labels_after),
        compose_labels(&labels_before)
    );
    assert_eq!(compose(&["ps", "--quiet"]), new_id);
    // The file names the new image (comment kept), the backup the old one.
    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        rewritten,
        original.replace(&format!("{image}:1.0"), &format!("{image}:1.1"))
    );
    let backup =
        std::fs::read_to_string(world.dir().join("docker-compose.yml.crowsnest-backup")).unwrap();
    assert_eq!(backup, original);
    // The next `compose up` keeps the update.
    compose(&["up", "--detach"]);
    let after_up = compose(&["ps", "--quiet"]);
    assert_eq!(
        world.docker(&[
            "inspect",
            "--format",
            "{{.Config.Image}} {{.State.Running}}",
            &after_up
        ]),
        format!("{image}:1.1 true")
    );
    compose(&["down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowsnest_hands_its_own_container_over() {
    let world = TestWorld::new("update-self");
    let image = world.plain_image("crowsnest");
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    let own = world.run_with(&[], &format!("{image}:1.0"), &[]);
    let path = action_config(&world, "", "");
    let scanner = world.scanner(&path).await;
    let action = ConfiguredAction::new(
        "nightly",
        ActionConfig {
            settle_secs: 1,
            ..ActionConfig::default()
        },
    )
    .unwrap();
    let actions = UpdateActions::new(
        vec![action],
        scanner.clone(),
        Arc::new(Metrics::new()),
        Some(own.id.clone()),
    );
    let object = scanned(&scanner, &image, &own.id).await;
    let outcome = actions.update_one(&object, false).await.unwrap();
    assert_eq!(outcome.status, "handed-over", "{outcome:#?}");
    let new_id = outcome.new_container_id.clone().unwrap();
    // Both run: the old one (this crowsnest) aside, the new one under the name.
    let old_now = inspect(&world.engine, &own.id);
    assert_eq!(old_now["State"]["Running"], true);
    assert!(old_now["Name"]
        .as_str()
        .unwrap()
        .contains("-crowsnest-old-"));
    let new_now = inspect(&world.engine, &new_id);
    assert_eq!(new_now["Name"], format!("/{}", own.name));
    assert_eq!(
        new_now["Config"]["Labels"]["crowsnest.update.replaces"],
        own.id.as_str()
    );
    // The new crowsnest, at start-up, stops and removes the old container.
    let watcher = DockerWatcher::connect(
        "local",
        WatcherConfig {
            socket: Some(world.engine.socket().to_path_buf()),
            ..WatcherConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        watcher.finish_handover(&new_id).await.unwrap(),
        Some(own.id.clone())
    );
    assert!(!world
        .engine
        .docker_ok(&["inspect", "--type", "container", &own.id]));
    assert_eq!(
        watcher.finish_handover(&new_id).await.unwrap(),
        None,
        "once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchtower_v1_update_answers_get_and_updates() {
    const TOKEN: &str = "watchtower-token";
    let world = TestWorld::new("update-api");
    let image = world.plain_image("app");
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    let old = world.run_with(&[], &format!("{image}:1.0"), &[]);
    let path = world.config(&format!(
        "{}\n[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"\"\nscan_on_start = false\nevents = false\ntoken = \"{TOKEN}\"\n\n{ACTION}\n",
        config::watcher(&world.engine, "schedule = \"0 0 1 1 *\"\njitter = 0")
    ));
    let config: Config = config::load(&path);
    let server = crowsnest::cli::serve::start(&config).await.unwrap();
    let base = format!("http://{}", server.http_addr);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, route: String| {
        let request = http
            .request(method, format!("{base}{route}"))
            .bearer_auth(TOKEN);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    // Watchtower's documented call is a GET; a dry run first changes nothing.
    let (status, answer) = call(
        reqwest::Method::GET,
        format!("/v1/update?image={image}&dry_run=true"),
    )
    .await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["dryRun"][0]["name"], old.name.as_str(), "{answer:#}");
    assert!(world
        .engine
        .docker_ok(&["inspect", "--type", "container", &old.id]));
    let (status, answer) = call(reqwest::Method::GET, format!("/v1/update?image={image}")).await;
    assert_eq!(status, 200, "{answer:#}");
    let updated = &answer["updated"][0];
    assert_eq!(updated["name"], old.name.as_str(), "{answer:#}");
    assert_eq!(updated["status"], "updated");
    assert_eq!(updated["toImage"], format!("{image}:1.1"));
    let new_id = updated["newContainerId"].as_str().unwrap().to_owned();
    // The container's history, on the replacement.
    let (status, detail) = call(reqwest::Method::GET, format!("/api/containers/{new_id}")).await;
    assert_eq!(status, 200, "{detail:#}");
    assert_eq!(detail["updateAvailable"], false);
    let statuses: Vec<&str> = detail["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["updated", "dry-run"]);
    // Nothing left to update, through either route.
    let (status, outcome) = call(
        reqwest::Method::POST,
        format!("/api/containers/{new_id}/update"),
    )
    .await;
    assert_eq!(status, 200, "{outcome:#}");
    assert_eq!(outcome["status"], "skipped");
    let (status, answer) = call(reqwest::Method::POST, format!("/v1/update?image={image}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["updated"].as_array().map(Vec::len),
        Some(0),
        "{answer:#}"
    );
    let (_, metrics) = call(reqwest::Method::GET, "/metrics".into()).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains(
            "crowsnest_container_updates_total{action=\"nightly\",outcome=\"updated\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"dry-run\"} 1"), "{metrics}");
    // Without a token the route stays refused.
    let (status, _) = {
        let response = http.get(format!("{base}/v1/update")).send().await.unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_service_is_updated_by_digest_and_rolled_back_by_swarm() {
    let world = TestWorld::new("update-swarm");
    let image = world.plain_image("svc");
    let broken = format!("{}-broken:1.2", world.repository("svc"));
    world.build(
        &broken,
        &format!(
            "FROM {}\nCMD [\"sh\", \"-c\", \"exit 5\"]\n",
            test_image("1.1")
        ),
    );
    world.push_tags(
        &image,
        &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
    );
    // Swarm mode changes an engine for everyone on it: an engine of this test's own.
    let own = OwnEngine::start("swarm");
    let swarm = own.engine();
    let listen = format!("127.0.0.1:{}", ports::free_port());
    let data_port = ports::free_port().to_string();
    swarm.docker(&[
        "swarm",
        "init",
        "--advertise-addr",
        "127.0.0.1",
        "--listen-addr",
        &listen,
        "--data-path-port",
        &data_port,
    ]);
    let service = format!("svc{}", std::process::id());
    swarm.docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        &service,
        "--replicas",
        "1",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "4s",
        "--restart-delay",
        "1s",
        "--label",
        "crowsnest.update=true",
        &format!("{image}:1.0"),
    ]);
    let running = || {
        swarm.docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
            &service,
        ])
    };
    crowsnest_testkit::wait::blocking_until(
        std::time::Duration::from_secs(60),
        "the service to run",
        || running().starts_with("Running"),
    );
    let path = world.config(&format!(
        "[watchers.local]\nsocket = \"{}\"\nswarm = true\n\n{ACTION}\n",
        swarm.socket().display()
    ));
    let (scanner, actions, _) = actions(&world, &path).await;
    let report = scanner.scan(&images(&[&image])).await;
    assert!(report.watcher_errors.is_empty(), "{report:#?}");
    let object = report
        .containers
        .iter()
        .find(|c| c.name == service)
        .cloned()
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(object.kind.as_deref(), Some("service"));
    assert_tag_update(&object, "1.0", "1.1", "minor");
    let outcome = actions.update_one(&object, false).await.unwrap();
    assert_eq!(outcome.status, "updated", "{outcome:#?}");
    println!("service updated in {} ms", outcome.duration_ms);
    let spec_image = || {
        swarm.docker(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &service,
        ])
    };
    let digest_of_1_1 = world.docker(&[
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &format!("{image}:1.1"),
    ]);
    let pinned = spec_image();
    assert!(
        pinned.starts_with(&format!("{image}:1.1@sha256:")),
        "{pinned}"
    );
    assert!(
        pinned.ends_with(digest_of_1_1.split('@').nth(1).unwrap()),
        "{pinned} vs {digest_of_1_1}"
    );

    // A broken 1.2: Swarm's own rollback (failure action) brings 1.1 back.
    world.push_tags(&image, &[("1.2", &broken)]);
    let object = scanned(&scanner, &image, &object.id).await;
    assert_tag_update(&object, "1.1", "1.2", "minor");
    let outcome = actions.update_one(&object, false).await.unwrap();
    assert_eq!(outcome.status, "rolled-back", "{outcome:#?}");
    println!(
        "service rolled back by Swarm in {} ms: {}",
        outcome.duration_ms,
        outcome.message.as_deref().unwrap_or_default()
    );
    assert_eq!(spec_image(), pinned, "the service runs 1.1 again");
    swarm.docker(&["service", "rm", &service]);
    let _ = swarm.docker_ok(&["swarm", "leave", "--force"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_action_pulls_every_image_before_the_first_replacement() {
    let world = TestWorld::new("update-batch");
    let first = world.plain_image("one");
    let second = world.plain_image("two");
    for image in [&first, &second] {
        world.push_tags(
            image,
            &[("1.0", &test_image("1.0")), ("1.1", &test_image("1.1"))],
        );
        world.docker(&["rmi", &format!("{image}:1.1")]);
    }
    let one = world.run_with(&[], &format!("{first}:1.0"), &[]);
    let two = world.run_with(&[], &format!("{second}:1.0"), &[]);
    let path = action_config(&world, "", "mode = \"batch\"\n");
    let (scanner, actions, _) = actions(&world, &path).await;
    let report = scanner.scan(&images(&[&first, &second])).await;
    let started = unix_now();
    let updates = actions.run(&report.containers, RunOrigin::Api, false).await;
    let mut names: Vec<&str> = updates.updated.iter().map(|u| u.name.as_str()).collect();
    names.sort();
    let mut expected = [one.name.as_str(), two.name.as_str()];
    expected.sort();
    assert_eq!(names, expected, "{updates:#?}");
    // The engine's own record: both pulls before the first container stopped.
    let until = unix_now();
    let events = world.docker(&[
        "events",
        "--since",
        &started,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
    ]);
    let order: Vec<&str> = events
        .lines()
        .filter(|line| {
            (line.starts_with("image pull") && (line.contains(&first) || line.contains(&second)))
                || (line.starts_with("container stop")
                    && (line.contains(&one.id) || line.contains(&two.id)))
        })
        .collect();
    let first_stop = order
        .iter()
        .position(|line| line.starts_with("container stop"))
        .expect("stops");
    let pulls = order
        .iter()
        .filter(|line| line.starts_with("image pull"))
        .count();
    assert_eq!(pulls, 2, "{events}");
    let pulled_first = order
        .iter()
        .take(first_stop)
        .filter(|line| line.starts_with("image pull"))
        .count();
    assert_eq!(pulled_first, 2, "{order:#?}");
}

/// Now, as `docker events --since/--until` takes it (unix seconds; the
/// engine runs on this machine, so its clock is ours).
fn unix_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default();
    format!("{seconds:.3}")
}
