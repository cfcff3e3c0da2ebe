//! Host-side bindings of the WIT package `crowsnest:plugin@0.2.0`, one module per world.
//!
//! The registry world is generated first; the other two reuse its shared
//! interfaces (`types`, `log`, `http-client`) through `with`, so one Rust type
//! serves every world. `clock` is generated with the registry world too and
//! reused by the trigger world, which alone imports `smtp` and `mqtt`.

/// The `registry-provider` world.
pub mod registry {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "registry-provider",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The `version-strategy` world (no imports).
pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "version-strategy",
        exports: { default: async },
        with: {
            "crowsnest:plugin/types": super::registry::crowsnest::plugin::types,
        },
    });
}

/// The `trigger` world.
pub mod trigger {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "trigger",
        imports: { default: async },
        exports: { default: async },
        with: {
            "crowsnest:plugin/types": super::registry::crowsnest::plugin::types,
            "crowsnest:plugin/log": super::registry::crowsnest::plugin::log,
            "crowsnest:plugin/http-client": super::registry::crowsnest::plugin::http_client,
            "crowsnest:plugin/clock": super::registry::crowsnest::plugin::clock,
        },
    });
}
