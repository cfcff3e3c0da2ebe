//! Every log line the test process writes, at every level, kept in memory
//! so a test can check that no secret is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The captured lines, shared with the subscriber.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "trace,wasmtime=info,cranelift=info,h2=info,hyper=info,rustls=info",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        sink
    })
}

/// Starts capturing (once per process; later calls do nothing).
pub fn capture() {
    sink();
}

/// Everything logged so far.
pub fn text() -> String {
    String::from_utf8_lossy(
        &sink()
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
    .into_owned()
}

/// Panics naming the secret when any log line so far contains `secret`.
pub fn assert_never_logged(secret: &str) {
    let text = text();
    let leaks: Vec<&str> = text.lines().filter(|line| line.contains(secret)).collect();
    assert!(
        leaks.is_empty(),
        "a secret was logged:\n{}",
        leaks.join("\n")
    );
}
