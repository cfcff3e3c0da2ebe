//! The control-plane tests' world (`crowsnest serve`, its APIs and triggers):
//! on the private engine, a registry of their own with an app that has a
//! major update and a lib that has a minor one, a container of each, and a
//! directory for the store. All of it is removed on drop. [`Served`] is
//! that world with a `crowsnest serve` running on it and an [`ApiClient`]
//! of its HTTP API, the fixture of the API, events and dashboard tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

use crowsnest_config::Config;

use crate::containers::{Container, Containers};
use crate::engine::Engine;
use crate::registry::PrivateRegistry;

/// `cn/app` 1.0 and 2.0, `cn/lib` 1.0 and 1.1, and a container running each 1.0.
pub struct AppAndLib {
    /// The container running `cn/app:1.0`.
    pub app: Container,
    /// The container running `cn/lib:1.0`.
    pub lib: Container,
    /// `127.0.0.1:PORT/cn/app:1.0`.
    pub app_image: String,
    /// `127.0.0.1:PORT/cn/lib:1.0`.
    pub lib_image: String,
    /// The guard of these containers; run more with it.
    pub containers: Containers,
    /// The registry holding both repositories.
    pub registry: PrivateRegistry,
    /// The directory of the store.
    pub store: tempfile::TempDir,
}

impl AppAndLib {
    /// Pushes both repositories and runs the two containers.
    pub fn start() -> Self {
        let engine = Engine::private();
        let registry = PrivateRegistry::start(engine);
        let app_image = registry.push("cn/app", &["1.0", "2.0"]).remove(0);
        let lib_image = registry.push("cn/lib", &["1.0", "1.1"]).remove(0);
        let containers = control_plane_containers();
        Self {
            app: containers.run(&app_image, &[]),
            lib: containers.run(&lib_image, &[]),
            app_image,
            lib_image,
            containers,
            registry,
            store: tempfile::tempdir().expect("store dir"),
        }
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.store.path().join("crowsnest.db")
    }

    /// The text of `crowsnest serve`'s configuration on this world (see
    /// [`crate::config::serve`]).
    pub fn config_text(&self, server_extra: &str, extra: &str) -> String {
        crate::config::serve(&self.store_path(), Engine::private(), server_extra, extra)
    }

    /// [`AppAndLib::config_text`], parsed.
    pub fn config(&self, server_extra: &str, extra: &str) -> Config {
        crate::config::parse(&self.config_text(server_extra, extra))
    }

    /// `serve`'s configuration: no start-up scan, `server_extra` in
    /// `[server]`, and the [`UNDELIVERABLE_HOOK`] trigger.
    pub fn serve_config(&self, server_extra: &str) -> Config {
        self.config(
            &format!("scan_on_start = false\n{server_extra}"),
            UNDELIVERABLE_HOOK,
        )
    }

    /// This world with `server` (a running `serve` listening on `http`),
    /// called with `token`.
    pub fn served<S>(self, server: S, http: SocketAddr, token: Option<&str>) -> Served<S> {
        Served {
            server,
            api: ApiClient::new(http, token),
            world: self,
        }
    }

    /// Names of both containers, sorted.
    pub fn both(&self) -> Vec<String> {
        let mut both = vec![self.app.name.clone(), self.lib.name.clone()];
        both.sort();
        both
    }
}

/// Containers on the private engine, named `cn-cp-…`, labelled `crowsnest-test=1`.
pub fn control_plane_containers() -> Containers {
    Containers::new(Engine::private(), "cn-cp").with_label("crowsnest-test", "1")
}

/// `GET {base}{path}` as text (e.g. `/metrics`); panics when it cannot be read.
pub async fn get_text(http: &reqwest::Client, base: &str, path: &str) -> String {
    let what = format!("GET {path}");
    crate::ports::send_ok(http.get(format!("{base}{path}")), &what)
        .await
        .text()
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// A trigger run by API only that can never deliver (port 9 on loopback is closed).
pub const UNDELIVERABLE_HOOK: &str = "[triggers.hook]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:9/never\"\nauto = false\nretries = 0\n";

/// The app-and-lib world with a running server `S` and a client of its API
/// (reached through `Deref`: `fixture.call(…)`).
pub struct Served<S> {
    /// The running server (shut it down at the end of the test).
    pub server: S,
    /// Its HTTP API.
    pub api: ApiClient,
    /// The world it watches.
    pub world: AppAndLib,
}

impl<S> std::ops::Deref for Served<S> {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// A client of a running server's HTTP API.
pub struct ApiClient {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The bearer token [`ApiClient::json`] and [`ApiClient::call_json`] send.
    pub token: Option<String>,
}

impl ApiClient {
    /// A client of the server listening on `http`, sending `token`.
    pub fn new(http: SocketAddr, token: Option<&str>) -> Self {
        Self {
            base: format!("http://{http}"),
            http: reqwest::Client::new(),
            token: token.map(str::to_owned),
        }
    }

    /// `method path` with bearer `token` and JSON `body` when given:
    /// the status, headers and body text.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let what = format!("{method} {path}");
        let method = method
            .parse()
            .unwrap_or_else(|error| panic!("{what}: bad method: {error}"));
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        (status, headers, text)
    }

    /// [`ApiClient::call`] with this client's token: the status and the body
    /// as JSON (a JSON string when it is not JSON).
    pub async fn call_json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, _, text) = self.call(method, path, self.token.as_deref(), body).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// [`ApiClient::call`] with this client's token, which must answer
    /// `expected` with JSON; that JSON.
    pub async fn json(&self, method: &str, path: &str, body: Option<&str>, expected: u16) -> Value {
        let (status, _, text) = self.call(method, path, self.token.as_deref(), body).await;
        assert_eq!(status, expected, "{method} {path}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path} is not JSON: {text}"))
    }
}
