//! The `crowsnest` binary, run as a user runs it.
//!
//! Only the tests of the binary's own package know where cargo built it, so
//! they pass the path in: `Crowsnest::at(env!("CARGO_BIN_EXE_crowsnest"))`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
#[derive(Debug, Clone)]
pub struct Crowsnest {
    /// Where cargo built it.
    path: PathBuf,
}

impl Crowsnest {
    /// The binary at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// A command running it in `dir`, untouched by the caller's environment:
    /// no `CROWSNEST_CONFIG`, no `CROWSNEST_TOKEN`, no colours.
    pub fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(&self.path);
        command
            .current_dir(dir)
            .env_remove("CROWSNEST_CONFIG")
            .env_remove("CROWSNEST_TOKEN")
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `crowsnest ARGS` in `dir` and waits for it.
    pub fn run<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Output {
        self.command(dir)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.path.display()))
    }

    /// Runs `crowsnest --config CONFIG ARGS` in `dir` and waits for it.
    pub fn run_with_config(&self, dir: &Path, config: &Path, args: &[&str]) -> Output {
        let mut all = vec![OsStr::new("--config"), config.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        self.run(dir, &all)
    }
}

/// Stdout or stderr as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
