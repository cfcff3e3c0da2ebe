//! The one shared wasmtime `Engine` and its epoch ticker.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances. A runaway guest is looked at this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process-wide engine: one configuration, one epoch ticker thread.
pub fn shared_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        // The configuration above is static and valid; failure here is a build defect.
        #[allow(clippy::expect_used)]
        let engine = Engine::new(&config).expect("static wasmtime configuration is valid");
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("crowsnest-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .ok();
        engine
    })
}

/// The wasmtime version this host was built with (part of the cache key).
pub fn wasmtime_version() -> &'static str {
    // Pinned in host/Cargo.toml; keep in step with it.
    "48.0.8"
}

/// The innermost message of an error chain, which is what a user can act on.
pub fn root_cause(err: &wasmtime::Error) -> String {
    err.root_cause().to_string()
}
