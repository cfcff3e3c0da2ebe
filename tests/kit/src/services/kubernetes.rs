//! An emulation of the Kubernetes API server's documented list/watch
//! protocol, on loopback over plain HTTP with a bearer token it verifies.
//! It is NOT a Kubernetes API server — none can run on the test machines —
//! but it follows the "API Concepts" page for what crowsnest uses:
//!
//! - `GET /api/v1/pods` and `GET /api/v1/namespaces/{ns}/pods`: lists with
//!   `labelSelector` (equality and set-based), `limit`/`continue` paging
//!   (a continue token older than the compaction answers `410 Gone`, reason
//!   `Expired`), and `metadata.resourceVersion` of the list;
//! - the same with `watch=1`: a stream of `ADDED`/`MODIFIED`/`DELETED`
//!   events after `resourceVersion`, `BOOKMARK` events when the client asked
//!   for them (`allowWatchBookmarks=true`) and the test sends one, and for a
//!   `resourceVersion` older than the compaction an `ERROR` event carrying a
//!   `Status` with code 410 before the stream ends (what forces a relist);
//! - `GET /apis/apps/v1/namespaces/{ns}/{replicasets,deployments,statefulsets,daemonsets}/{name}`,
//!   `GET /api/v1/namespaces/{ns}/secrets/{name}` and
//!   `.../serviceaccounts/{name}`;
//! - every request needs `Authorization: Bearer TOKEN`; anything else gets
//!   the server's `401 Unauthorized` Status; a missing object `404 NotFound`.
//!
//! A test changes the cluster ([`KubeApiServer::apply_pod`],
//! [`KubeApiServer::delete_pod`], …) and the emulator tells every open watch
//! as the API server would; it records each request ([`KubeApiServer::requests`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use futures::channel::mpsc;
use serde_json::{json, Value};

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct KubeRequest {
    /// Path without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// Whether its bearer token was accepted.
    pub authorized: bool,
}

impl KubeRequest {
    /// Whether it was a watch (`watch=1` or `watch=true`).
    pub fn is_watch(&self) -> bool {
        matches!(
            self.query.get("watch").map(String::as_str),
            Some("1" | "true")
        )
    }
}

/// An object kind the emulator serves, by its URL plural.
const APPS_KINDS: [(&str, &str); 4] = [
    ("replicasets", "ReplicaSet"),
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
    ("daemonsets", "DaemonSet"),
];

/// An open watch: its scope, its selector, where its events go.
struct Watch {
    namespace: Option<String>,
    selector: Selector,
    bookmarks: bool,
    events: mpsc::UnboundedSender<Result<String, std::io::Error>>,
}

/// The cluster's state.
#[derive(Default)]
struct Cluster {
    token: String,
    resource_version: u64,
    /// Watches from a version below this one get `410 Gone`.
    compacted_below: u64,
    /// Pods by (namespace, name).
    pods: BTreeMap<(String, String), Value>,
    /// Changes of Pods: (version, type, object), oldest first.
    history: Vec<(u64, &'static str, Value)>,
    /// Other objects by (plural, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
    watches: Vec<Watch>,
    requests: Vec<KubeRequest>,
    next_uid: u64,
}

/// The emulated API server; stopped on drop.
pub struct KubeApiServer {
    address: SocketAddr,
    cluster: Arc<Mutex<Cluster>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApiServer {
    /// Starts on a free loopback port, accepting `token`.
    pub async fn start(token: &str) -> Self {
        let cluster = Arc::new(Mutex::new(Cluster {
            token: token.to_owned(),
            resource_version: 100,
            ..Default::default()
        }));
        let app = Router::new().fallback(serve).with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API server emulator");
        let address = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            cluster,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig with context `emulator` (the current one, with `token`)
    /// and context `wrong-token` (a token the server refuses).
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: emulator\nclusters:\n- name: emulator\n  cluster:\n    server: {url}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: good\n    namespace: default\n- name: wrong-token\n  context:\n    cluster: emulator\n    user: bad\nusers:\n- name: good\n  user:\n    token: {token}\n- name: bad\n  user:\n    token: not-{token}\n",
            url = self.url()
        )
    }

    fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<KubeRequest> {
        self.cluster().requests.clone()
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.cluster().resource_version
    }

    /// How many watches are open.
    pub fn open_watches(&self) -> usize {
        let mut cluster = self.cluster();
        cluster.watches.retain(|watch| !watch.events.is_closed());
        cluster.watches.len()
    }

    /// Creates or replaces Pod `pod` (see [`pod`]); open watches get
    /// `ADDED`/`MODIFIED` (or `DELETED` when it stops matching their selector).
    /// Returns its uid.
    pub fn apply_pod(&self, mut pod: Value) -> String {
        let mut cluster = self.cluster();
        let key = object_key(&pod);
        cluster.resource_version += 1;
        let version = cluster.resource_version;
        let old = cluster.pods.get(&key).cloned();
        let uid = match old.as_ref().and_then(|old| old["metadata"]["uid"].as_str()) {
            Some(uid) => uid.to_owned(),
            None => {
                cluster.next_uid += 1;
                format!("00000000-0000-4000-8000-{:012}", cluster.next_uid)
            }
        };
        pod["metadata"]["uid"] = json!(uid);
        pod["metadata"]["resourceVersion"] = json!(version.to_string());
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        cluster.history.push((version, kind, pod.clone()));
        cluster.pods.insert(key, pod.clone());
        cluster.notify(old.as_ref(), Some(&pod));
        uid
    }

    /// Deletes Pod `namespace/name`; open watches that saw it get `DELETED`.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let mut cluster = self.cluster();
        let Some(mut pod) = cluster
            .pods
            .remove(&(namespace.to_owned(), name.to_owned()))
        else {
            return;
        };
        cluster.resource_version += 1;
        pod["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
        let version = cluster.resource_version;
        cluster.history.push((version, "DELETED", pod.clone()));
        cluster.notify(Some(&pod), None);
    }

    /// Stores a non-Pod object: `plural` is `replicasets`, `deployments`,
    /// `statefulsets`, `daemonsets`, `secrets` or `serviceaccounts`.
    pub fn put_object(&self, plural: &str, mut object: Value) {
        let mut cluster = self.cluster();
        cluster.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
        let (namespace, name) = object_key(&object);
        cluster
            .objects
            .insert((plural.to_owned(), namespace, name), object);
    }

    /// Sends a `BOOKMARK` at the current resourceVersion to every watch
    /// that asked for bookmarks.
    pub fn bookmark(&self) {
        let cluster = self.cluster();
        let event = json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": cluster.resource_version.to_string(),
                "annotations": {"k8s.io/initial-events-end": "false"}}}});
        for watch in cluster.watches.iter().filter(|w| w.bookmarks) {
            let _ = watch.events.unbounded_send(Ok(format!("{event}\n")));
        }
    }

    /// Ends every open watch, as the server does when `timeoutSeconds` runs
    /// out: clients watch again from the last version they saw.
    pub fn end_watches(&self) {
        self.cluster().watches.clear();
    }

    /// Compacts the history (every version so far is too old to watch from)
    /// and sends each open watch the `ERROR` event of a `410 Gone` before
    /// ending it: the clients must relist.
    pub fn expire_watches(&self) {
        let mut cluster = self.cluster();
        cluster.compacted_below = cluster.resource_version + 1;
        cluster.history.clear();
        let current = cluster.resource_version;
        for watch in cluster.watches.drain(..) {
            let event = json!({"type": "ERROR", "object": gone(&format!(
                "too old resource version: {} ({current})", current.saturating_sub(1)))});
            let _ = watch.events.unbounded_send(Ok(format!("{event}\n")));
        }
    }
}

impl Cluster {
    /// Tells every open watch what a Pod's change (`old` -> `new`) means to it.
    fn notify(&mut self, old: Option<&Value>, new: Option<&Value>) {
        self.watches.retain(|watch| !watch.events.is_closed());
        for watch in &self.watches {
            let saw = old.filter(|pod| watch.matches(pod));
            let sees = new.filter(|pod| watch.matches(pod));
            let event = match (saw, sees) {
                (None, Some(pod)) => Some(("ADDED", pod.clone())),
                (Some(_), Some(pod)) => Some(("MODIFIED", pod.clone())),
                (Some(pod), None) => {
                    // Leaving the selection reads as a deletion, at the new version.
                    let mut gone = new.cloned().unwrap_or_else(|| pod.clone());
                    gone["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
                    Some(("DELETED", gone))
                }
                (None, None) => None,
            };
            if let Some((kind, pod)) = event {
                let _ = watch.events.unbounded_send(Ok(watch_line(kind, &pod)));
            }
        }
    }
}

impl Watch {
    fn matches(&self, pod: &Value) -> bool {
        in_namespace(pod, self.namespace.as_deref()) && self.selector.matches(pod)
    }
}

/// `{"type":…,"object":…}` and a newline, the pod with kind and apiVersion.
fn watch_line(kind: &str, pod: &Value) -> String {
    let mut object = pod.clone();
    object["kind"] = json!("Pod");
    object["apiVersion"] = json!("v1");
    format!("{}\n", json!({"type": kind, "object": object}))
}

fn object_key(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned(),
        object["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

fn in_namespace(object: &Value, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
}

/// A `Status` answer.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

fn gone(message: &str) -> Value {
    status(410, "Expired", message)
}

fn answer(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn failure(code: u16, reason: &str, message: &str) -> Response {
    answer(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &status(code, reason, message),
    )
}

async fn serve(State(cluster): State<Arc<Mutex<Cluster>>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let mut cluster = cluster.lock().unwrap_or_else(|e| e.into_inner());
    let expected = format!("Bearer {}", cluster.token);
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(expected.as_str());
    cluster.requests.push(KubeRequest {
        path: path.clone(),
        query: query.clone(),
        authorized,
    });
    if !authorized {
        return failure(401, "Unauthorized", "Unauthorized");
    }
    if request.method() != axum::http::Method::GET {
        return failure(405, "MethodNotAllowed", "the emulator serves GET only");
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "pods"] => pods(&mut cluster, None, &query),
        ["api", "v1", "namespaces", namespace, "pods"] => {
            pods(&mut cluster, Some(namespace), &query)
        }
        ["api", "v1", "namespaces", namespace, plural @ ("secrets" | "serviceaccounts"), name]
        | ["apis", "apps", "v1", "namespaces", namespace, plural @ ("replicasets" | "deployments" | "statefulsets" | "daemonsets"), name] =>
        {
            let key = (plural.to_string(), namespace.to_string(), name.to_string());
            match cluster.objects.get(&key) {
                Some(object) => answer(StatusCode::OK, &with_kind(plural, object)),
                None => failure(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            }
        }
        _ => failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

/// `object` with the `kind` and `apiVersion` of `plural`.
fn with_kind(plural: &str, object: &Value) -> Value {
    let mut object = object.clone();
    let (kind, version) = match APPS_KINDS.iter().find(|(p, _)| *p == plural) {
        Some((_, kind)) => (*kind, "apps/v1"),
        None if plural == "secrets" => ("Secret", "v1"),
        None => ("ServiceAccount", "v1"),
    };
    object["kind"] = json!(kind);
    object["apiVersion"] = json!(version);
    object
}

/// A Pod list or watch.
fn pods(
    cluster: &mut Cluster,
    namespace: Option<&str>,
    query: &BTreeMap<String, String>,
) -> Response {
    let selector = match Selector::parse(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(selector) => selector,
        Err(why) => {
            return failure(
                400,
                "BadRequest",
                &format!("unable to parse requirement: {why}"),
            )
        }
    };
    let watch = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    if watch {
        return watch_pods(cluster, namespace, selector, query);
    }
    // Paging: the continue token carries the list's version and the last key served.
    let (list_version, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match decode_continue(token) {
            Some((version, _)) if version < cluster.compacted_below => {
                return failure(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
            }
            Some((version, after)) => (version, Some(after)),
            None => return failure(400, "BadRequest", "continue key is not valid"),
        },
        None => (cluster.resource_version, None),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut items = Vec::new();
    let mut next = None;
    for ((ns, name), pod) in &cluster.pods {
        let key = format!("{ns}/{name}");
        if after
            .as_ref()
            .is_some_and(|after| key.as_str() <= after.as_str())
        {
            continue;
        }
        if !in_namespace(pod, namespace) || !selector.matches(pod) {
            continue;
        }
        if limit.is_some_and(|limit| items.len() == limit) {
            next = Some(encode_continue(list_version, &key_before(&items)));
            break;
        }
        items.push(pod.clone());
    }
    let mut metadata = json!({"resourceVersion": list_version.to_string()});
    if let Some(token) = next {
        metadata["continue"] = json!(token);
    }
    answer(
        StatusCode::OK,
        &json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items}),
    )
}

/// The key of the last Pod of a page.
fn key_before(items: &[Value]) -> String {
    items
        .last()
        .map(|pod| {
            let (ns, name) = object_key(pod);
            format!("{ns}/{name}")
        })
        .unwrap_or_default()
}

fn encode_continue(version: u64, after: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"rv": version, "start": after}).to_string())
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    Some((value["rv"].as_u64()?, value["start"].as_str()?.to_owned()))
}

fn watch_pods(
    cluster: &mut Cluster,
    namespace: Option<&str>,
    selector: Selector,
    query: &BTreeMap<String, String>,
) -> Response {
    let (sender, receiver) = mpsc::unbounded();
    let from = query
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0);
    let watch = Watch {
        namespace: namespace.map(str::to_owned),
        selector,
        bookmarks: query.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
        events: sender,
    };
    match from {
        Some(version) if version < cluster.compacted_below => {
            let current = cluster.resource_version;
            let event = json!({"type": "ERROR", "object": gone(&format!(
                "too old resource version: {version} ({current})"))});
            let _ = watch.events.unbounded_send(Ok(format!("{event}\n")));
            // Dropped with `watch`: the stream ends after the error.
        }
        Some(version) => {
            for (at, kind, pod) in &cluster.history {
                if *at > version && watch.matches(pod) {
                    let _ = watch.events.unbounded_send(Ok(watch_line(kind, pod)));
                }
            }
            cluster.watches.push(watch);
        }
        None => {
            // "Start at most recent": synthetic ADDED for what exists now.
            for pod in cluster.pods.values().filter(|pod| watch.matches(pod)) {
                let _ = watch.events.unbounded_send(Ok(watch_line("ADDED", pod)));
            }
            cluster.watches.push(watch);
        }
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(receiver))
        .unwrap_or_default()
}

/// A label selector: requirements, all of which must hold.
#[derive(Debug, Clone, Default)]
struct Selector(Vec<Requirement>);

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let mut parts = Vec::new();
        for (index, character) in text.char_indices() {
            match character {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&text[start..index]);
                    start = index + 1;
                }
                _ => {}
            }
        }
        parts.push(&text[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("`{part}`: expected a (set)"))?;
                Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            let requirement = if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(key.trim().into(), set(rest)?)
            } else if let Some((key, rest)) = part.split_once(" in ") {
                Requirement::In(key.trim().into(), set(rest)?)
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().into())
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Requirement::Exists(part.into())
            } else {
                return Err(format!("`{part}`"));
            };
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => {
                label(key).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Requirement::NotIn(key, values) => {
                !label(key).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
        })
    }
}

/// A running Pod `namespace/name` whose containers are `(name, image,
/// imageID)`; `owner` is its controller `(kind, name)`.
pub fn pod(
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
    containers: &[(&str, &str, &str)],
    owner: Option<(&str, &str)>,
) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
    if let Some((kind, owner)) = owner {
        let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        metadata["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
            "name": owner, "uid": format!("uid-{owner}"), "controller": true}]);
    }
    let specs: Vec<Value> = containers
        .iter()
        .map(|(name, image, _)| json!({"name": name, "image": image}))
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|(name, image, image_id)| json!({"name": name, "image": image, "imageID": image_id,
            "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}))
        .collect();
    json!({"metadata": metadata, "spec": {"containers": specs},
        "status": {"phase": "Running", "containerStatuses": statuses}})
}

/// `object` (`metadata` of `namespace/name`) with `owner` as its controller.
pub fn owned_object(namespace: &str, name: &str, owner: Option<(&str, &str)>) -> Value {
    let mut object = json!({"metadata": {"name": name, "namespace": namespace}});
    if let Some((kind, owner)) = owner {
        object["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": owner, "uid": format!("uid-{owner}"), "controller": true}]);
    }
    object
}

/// A `kubernetes.io/dockerconfigjson` secret with `user:password` for `registry`.
pub fn pull_secret(
    namespace: &str,
    name: &str,
    registry: &str,
    user: &str,
    password: &str,
) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let config =
        json!({"auths": {registry: {"auth": engine.encode(format!("{user}:{password}"))}}});
    json!({"metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": engine.encode(config.to_string())}})
}
