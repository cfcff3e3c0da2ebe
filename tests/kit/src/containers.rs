//! Test containers: created or run with `--network none` (or a network of
//! their own), unique names and labels, and removed when their guard drops,
//! also when the test panics — with every container carrying the guard's own
//! unique label, if it has one (replacements an update created), then the
//! guard's networks and volumes.

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
    /// A label no other guard's containers carry: on drop, every container
    /// carrying it goes too (the replacements an update made of ours).
    own_label: Option<(String, String)>,
    /// Ids of those not removed yet.
    ids: Mutex<Vec<String>>,
    /// Networks and volumes created through the guard.
    networks: Mutex<Vec<String>>,
    /// Volumes created through the guard.
    volumes: Mutex<Vec<String>>,
}

impl Containers {
    /// Containers on `engine` named `{prefix}-…`.
    pub fn new(engine: &Engine, prefix: &str) -> Self {
        Self {
            engine: engine.clone(),
            prefix: prefix.to_owned(),
            labels: Vec::new(),
            own_label: None,
            ids: Mutex::default(),
            networks: Mutex::default(),
            volumes: Mutex::default(),
        }
    }

    /// Every container of this guard also carries the label `key=value`.
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Every container of this guard carries `key=value`, a label unique to
    /// this guard (e.g. a test's unique id): on drop, every container with
    /// it is removed, also those made from ours (an update's replacements).
    /// Never a label shared with other guards or images.
    pub fn with_own_label(mut self, key: &str, value: &str) -> Self {
        self.own_label = Some((key.to_owned(), value.to_owned()));
        self.with_label(key, value)
    }

    /// `docker run --detach` of `image` with `labels`.
    pub fn run(&self, image: &str, labels: &[(&str, &str)]) -> Container {
        self.container(&["run", "--detach"], image, labels)
    }

    /// `docker create` (never started) of `image` with `labels`.
    pub fn create(&self, image: &str, labels: &[(&str, &str)]) -> Container {
        self.container(&["create"], image, labels)
    }

    /// `docker run --detach OPTIONS… IMAGE` with `labels`: `options` are
    /// any `docker run` options (`--network none` unless they name one).
    pub fn run_with(&self, options: &[&str], image: &str, labels: &[(&str, &str)]) -> Container {
        let mut verb = vec!["run", "--detach"];
        verb.extend_from_slice(options);
        self.container(&verb, image, labels)
    }

    /// A user-defined bridge network with a /24 subnet of its own (for
    /// static addresses), removed on drop; returns (name, subnet prefix
    /// `a.b.c.`).
    pub fn network(&self) -> (String, String) {
        let name = crate::unique(&format!("{}-net", self.prefix));
        // Other tests' networks may hold a subnet: try the next one.
        let seed = std::process::id() as usize;
        for attempt in 0..64 {
            let third = (seed + attempt * 7) % 250;
            let prefix = format!("10.213.{third}.");
            if self.engine.docker_ok(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &format!("{prefix}0/24"),
                &name,
            ]) {
                self.networks.lock().expect("lock").push(name.clone());
                return (name, prefix);
            }
        }
        panic!("no free subnet for a test network");
    }

    /// A named volume, removed on drop.
    pub fn volume(&self) -> String {
        let name = crate::unique(&format!("{}-vol", self.prefix));
        self.engine.docker(&["volume", "create", &name]);
        self.volumes.lock().expect("lock").push(name.clone());
        name
    }

    /// Records a volume to remove on drop (e.g. an anonymous one).
    pub fn adopt_volume(&self, name: &str) {
        self.volumes.lock().expect("lock").push(name.to_owned());
    }

    /// `docker VERB… [--network none] --name … --label …  IMAGE`, recorded.
    fn container(&self, verb: &[&str], image: &str, labels: &[(&str, &str)]) -> Container {
        let name = crate::unique(&self.prefix);
        let mut args: Vec<String> = verb.iter().map(|arg| (*arg).to_owned()).collect();
        if !verb
            .iter()
            .any(|arg| *arg == "--network" || arg.starts_with("--network="))
        {
            args.extend(["--network", "none"].map(str::to_owned));
        }
        args.extend(["--name", &name].map(str::to_owned));
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
        let mut ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        // Containers made from ours (an update's replacements) carry our own label.
        if let Some((key, value)) = &self.own_label {
            if let Ok(listed) = self
                .engine
                .command()
                .args(["ps", "--all", "--quiet", "--no-trunc", "--filter"])
                .arg(format!("label={key}={value}"))
                .output()
            {
                ids.extend(
                    String::from_utf8_lossy(&listed.stdout)
                        .lines()
                        .map(str::to_owned),
                );
            }
        }
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(ids.iter().map(String::as_str));
            if !self.engine.docker_ok(&args) {
                // Some were already gone: remove the others one by one.
                for id in &ids {
                    let _ = self.engine.docker_ok(&["rm", "--force", "--volumes", id]);
                }
            }
        }
        for network in std::mem::take(&mut *self.networks.lock().unwrap_or_else(|e| e.into_inner()))
        {
            if !self.engine.docker_ok(&["network", "rm", &network]) {
                eprintln!("cleanup: could not remove network {network}");
            }
        }
        for volume in std::mem::take(&mut *self.volumes.lock().unwrap_or_else(|e| e.into_inner())) {
            let _ = self.engine.docker_ok(&["volume", "rm", "--force", &volume]);
        }
    }
}
