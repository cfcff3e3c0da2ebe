//! Agent mode end to end: `crowsnest agent` (the real binary) runs on the
//! shared engine, sending only the containers of this test's unique label, to
//! an in-process `crowsnest serve` on other loopback ports with its own store
//! and no access to that engine. Containers arrive and are checked against a
//! real registry; engine events arrive; a server restart is survived without
//! deleting anything; a lost agent turns its containers stale; a wrong token
//! is refused and the agent exits 1.
//!
//! Needs `scripts/dockerd.sh start` and `scripts/registries.sh start`.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crowsnest_testkit::engine::Engine;
use crowsnest_testkit::images::{E2E_1_0, E2E_1_1};
use crowsnest_testkit::ports::free_port;
use crowsnest_testkit::wait::eventually;
use crowsnest_testkit::world::{TestWorld, WORLD_LABEL};
use serde_json::Value;

const TOKEN: &str = "agent-s3cret";

fn test_world(test: &str) -> TestWorld {
    TestWorld::new(test).with_crowsnest(env!("CARGO_BIN_EXE_crowsnest"))
}

/// The server's configuration: its own store, fixed ports (it is restarted),
/// the token, and a watcher on an engine that does not exist — it cannot see
/// the agent's engine itself.
fn server_config(world: &TestWorld, http: u16, grpc: u16) -> PathBuf {
    server_config_with(world, http, grpc, "")
}

/// [`server_config`] with `extra` keys of `[server]`.
fn server_config_with(world: &TestWorld, http: u16, grpc: u16, extra: &str) -> PathBuf {
    world.config_named(
        "server.toml",
        &format!(
            "[watchers.central]\nsocket = \"{}\"\nschedule = \"0 0 1 1 *\"\njitter = 0\n\n\
             [server]\nlisten = \"127.0.0.1:{http}\"\ngrpc_listen = \"127.0.0.1:{grpc}\"\n\
             token = \"{TOKEN}\"\nscan_on_start = false\nevents = false\nshutdown_grace_secs = 2\n{extra}",
            world.dir().join("no-engine.sock").display()
        ),
    )
}

/// The agent's configuration: the shared engine, only this test's containers.
fn agent_config(world: &TestWorld) -> PathBuf {
    world.config_named(
        "agent.toml",
        &format!(
            "[watchers.local]\nsocket = \"{}\"\n\n[agent]\nlabel = \"{WORLD_LABEL}={}\"\n",
            Engine::shared().socket().display(),
            world.id
        ),
    )
}

/// A running `crowsnest agent`, killed on drop.
struct Agent {
    child: Child,
}

impl Agent {
    fn start(world: &TestWorld, grpc: u16, token: &str, name: &str) -> Self {
        let child = crowsnest_testkit::binary::Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"))
            .command(world.dir())
            .args(["--config"])
            .arg(agent_config(world))
            .args([
                "agent",
                "--server",
                &format!("http://127.0.0.1:{grpc}"),
                "--token",
                token,
                "--name",
                name,
            ])
            .env("CROWSNEST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start crowsnest agent");
        Self { child }
    }

    /// Waits up to `timeout` for the agent to exit; its code and stderr.
    fn exit_within(mut self, timeout: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    use std::io::Read as _;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status.code(), stderr);
            }
            assert!(
                started.elapsed() < timeout,
                "the agent did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's containers of watcher `agent`.
async fn agent_containers(http: u16, agent: &str) -> Vec<Value> {
    let answer = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{http}/api/containers?watcher={agent}"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Waits until the agent's containers satisfy `done`; returns them.
async fn until(http: u16, agent: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    eventually(Duration::from_secs(60), what, || async {
        let containers = agent_containers(http, agent).await;
        done(&containers).then_some(containers)
    })
    .await
}

fn find<'a>(containers: &'a [Value], id: &str) -> Option<&'a Value> {
    containers.iter().find(|c| c["id"] == id)
}

fn checked_with_update(container: Option<&Value>) -> bool {
    container
        .is_some_and(|c| c["updateAvailable"] == true && c["updateKind"]["remoteValue"] == "1.1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_streams_containers_and_events_and_survives_a_server_restart() {
    let world = test_world("agent");
    let app = world.plain_image("app");
    world.push_tags(&app, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let first = world.run(&format!("{app}:1.0"), &[]);
    let (http, grpc) = (free_port(), free_port());
    let config = crowsnest_testkit::config::load(&server_config(&world, http, grpc));
    let server = crowsnest::cli::serve::start(&config)
        .await
        .expect("serve starts");
    let name = format!("edge-{}", world.id);
    let agent = Agent::start(&world, grpc, TOKEN, &name);

    // The snapshot arrives and is checked against the real registry.
    let containers = until(http, &name, "the agent's snapshot to be checked", |cs| {
        checked_with_update(find(cs, &first))
    })
    .await;
    assert_eq!(
        containers.len(),
        1,
        "only this test's labelled container: {containers:?}"
    );
    assert_eq!(
        find(&containers, &first).map(|c| c["watcher"].clone()),
        Some(Value::from(name.clone()))
    );

    // An engine event (a new container) arrives and is checked.
    let second = world.run(&format!("{app}:1.0"), &[]);
    until(http, &name, "the created container to arrive", |cs| {
        checked_with_update(find(cs, &second))
    })
    .await;
    // A destroyed container leaves.
    world.remove(&first);
    until(http, &name, "the destroyed container to leave", |cs| {
        find(cs, &first).is_none() && find(cs, &second).is_some()
    })
    .await;

    // The server goes away; the engine changes meanwhile; it comes back.
    server.shutdown().await;
    let third = world.run(&format!("{app}:1.0"), &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let server = crowsnest::cli::serve::start(&config)
        .await
        .expect("serve restarts");
    let containers = until(http, &name, "the agent to reconnect and catch up", |cs| {
        checked_with_update(find(cs, &third)) && find(cs, &second).is_some()
    })
    .await;
    assert!(find(&containers, &first).is_none(), "{containers:?}");
    assert!(
        containers.iter().all(|c| c["check"]["stale"] != true),
        "a connected agent's containers are fresh: {containers:?}"
    );

    // The agent goes away: its containers stay, marked stale.
    drop(agent);
    let containers = until(
        http,
        &name,
        "the lost agent's containers to turn stale",
        |cs| cs.len() == 2 && cs.iter().all(|c| c["check"]["stale"] == true),
    )
    .await;
    assert!(find(&containers, &second).is_some() && find(&containers, &third).is_some());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_does_not_return_after_a_server_restart_turns_stale() {
    let world = test_world("agent-grace");
    let app = world.plain_image("app");
    world.push_tags(&app, &[("1.0", E2E_1_0), ("1.1", E2E_1_1)]);
    let running = world.run(&format!("{app}:1.0"), &[]);
    let (http, grpc) = (free_port(), free_port());
    let config = crowsnest_testkit::config::load(&server_config_with(
        &world,
        http,
        grpc,
        "agent_grace_secs = 1\n",
    ));
    let server = crowsnest::cli::serve::start(&config)
        .await
        .expect("serve starts");
    let name = format!("edge-{}", world.id);
    let agent = Agent::start(&world, grpc, TOKEN, &name);
    let checked = until(http, &name, "the agent's snapshot to be checked", |cs| {
        checked_with_update(find(cs, &running))
    })
    .await;
    let last_checked = find(&checked, &running).map(|c| c["check"]["checkedAt"].clone());

    // Both go away; only the server comes back.
    server.shutdown().await;
    drop(agent);
    let server = crowsnest::cli::serve::start(&config)
        .await
        .expect("serve restarts");
    let containers = until(
        http,
        &name,
        "the absent agent's containers to turn stale after the grace",
        |cs| cs.len() == 1 && cs.iter().all(|c| c["check"]["stale"] == true),
    )
    .await;
    let stale = find(&containers, &running).expect("kept, not deleted");
    assert_eq!(
        Some(stale["check"]["checkedAt"].clone()),
        last_checked,
        "the last good check's time is kept: {stale}"
    );
    assert!(
        checked_with_update(Some(stale)),
        "its last result stays: {stale}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_the_agent_exits_1() {
    let world = test_world("agent-token");
    let (http, grpc) = (free_port(), free_port());
    let config = crowsnest_testkit::config::load(&server_config(&world, http, grpc));
    let server = crowsnest::cli::serve::start(&config)
        .await
        .expect("serve starts");
    let agent = Agent::start(&world, grpc, "not-the-token", "intruder");
    let (code, stderr) = agent.exit_within(Duration::from_secs(30));
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("refused agent `intruder`") && stderr.contains("invalid bearer token"),
        "the agent says why: {stderr}"
    );
    assert!(agent_containers(http, "intruder").await.is_empty());
    server.shutdown().await;
}
