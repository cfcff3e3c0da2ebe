//! Test containers: created or run with `--network none`, unique names and
//! labels, and removed when their guard drops, also when the test panics.

use std::sync::Mutex;

use crate::engine::Engine;

/// A container a [`Containers`] guard created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Full id.
    pub id: String,
    /// Name (`{prefix}-{pid}-…`).
    pub name: String,
}

/// The containers of one test on one engine, all removed on drop.
pub struct Containers {
    /// Where they run.
    engine: Engine,
    /// Their names' prefix.
    prefix: String,
    /// Labels every one of them carries.
    labels: Vec<(String, String)>,
    /// Ids of those not removed yet.
    ids: Mutex<Vec<String>>,
}

impl Containers {
    /// Containers on `engine` named `{prefix}-…`.
    pub fn new(engine: &Engine, prefix: &str) -> Self {
        Self {
            engine: engine.clone(),
            prefix: prefix.to_owned(),
            labels: Vec::new(),
            ids: Mutex::default(),
        }
    }

    /// Every container of this guard also carries the label `key=value`.
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `docker run --detach` of `image` with `labels`.
    pub fn run(&self, image: &str, labels: &[(&str, &str)]) -> Container {
        self.container(&["run", "--detach"], image, labels)
    }

    /// `docker create` (never started) of `image` with `labels`.
    pub fn create(&self, image: &str, labels: &[(&str, &str)]) -> Container {
        self.container(&["create"], image, labels)
    }

    /// `docker VERB… --network none --name … --label …  IMAGE`, recorded.
    fn container(&self, verb: &[&str], image: &str, labels: &[(&str, &str)]) -> Container {
        let name = crate::unique(&self.prefix);
        let mut args: Vec<String> = verb.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(["--network", "none", "--name", &name].map(str::to_owned));
        let own = self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (key, value) in own.chain(labels.iter().copied()) {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.push(image.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.engine.docker(&args);
        // `run` may print pull progress first; the id is the last line.
        let id = output.lines().last().unwrap_or_default().to_owned();
        self.ids.lock().expect("lock").push(id.clone());
        Container { id, name }
    }

    /// Stops a container now (no grace period).
    pub fn stop(&self, id: &str) {
        self.engine.docker(&["stop", "--time", "0", id]);
    }

    /// Removes a container now (the guard then forgets it).
    pub fn remove(&self, id: &str) {
        self.engine.docker(&["rm", "--force", id]);
        self.ids.lock().expect("lock").retain(|known| known != id);
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return;
        }
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(ids.iter().map(String::as_str));
        if !self.engine.docker_ok(&args) {
            eprintln!("cleanup: could not remove containers {ids:?}");
        }
    }
}
