//! Configuration files for `crowsnest`, written the way a user writes them.
//!
//! Snippets compose by concatenation: every one ends with a blank line.

use std::path::{Path, PathBuf};

use crowsnest_config::Config;

use crate::engine::Engine;
use crate::registry::Registries;

/// `[store]` at `path`, without a tag cache (every scan asks the registry).
pub fn store(path: &Path) -> String {
    format!(
        "[store]\npath = \"{}\"\ntag_cache_ttl = 0\n\n",
        path.display()
    )
}

/// `[registries.hub]` pointed at the loopback token registry, so that nothing
/// a test scans ever makes crowsnest reach Docker Hub.
pub fn hub(registries: &Registries) -> String {
    format!(
        "[registries.hub]\nplugin = \"dockerhub\"\nurl = \"http://{}\"\n\n",
        registries.token
    )
}

/// `[watchers.local]` on `engine`, with the `extra` lines of that table.
pub fn watcher(engine: &Engine, extra: &str) -> String {
    format!(
        "[watchers.local]\nsocket = \"{}\"\n{extra}\n",
        engine.socket().display()
    )
}

/// A configuration for `crowsnest serve` on loopback, watching `engine` with
/// a yearly schedule: a store at `store`, the `server_extra` lines of
/// `[server]`, then `extra` (e.g. `[triggers.…]`) as is.
pub fn serve(store_path: &Path, engine: &Engine, server_extra: &str, extra: &str) -> String {
    format!(
        "{}{}\n[server]\nlisten = \"127.0.0.1:0\"\ngrpc_listen = \"127.0.0.1:0\"\nevent_debounce_ms = 100\n{server_extra}\n\n{extra}\n",
        store(store_path),
        watcher(engine, "schedule = \"0 0 1 1 *\"\njitter = 0"),
    )
}

/// Writes `text` to `dir/file`; returns the path.
pub fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    path
}

/// Parses `text` (named `test-config.toml` in errors), without environment overrides.
pub fn parse(text: &str) -> Config {
    Config::parse(text, Some(Path::new("test-config.toml")), &[])
        .unwrap_or_else(|error| panic!("test config does not parse: {error}\n{text}"))
}

/// Loads the configuration file at `path` as `crowsnest` does.
pub fn load(path: &Path) -> Config {
    Config::load(Some(path)).unwrap_or_else(|error| panic!("config does not load: {error}"))
}
