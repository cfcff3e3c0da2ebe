//! Generated bindings of the crowsnest `registry-provider` world.
//!
//! Each world lives in its own crate because wit-bindgen's cross-crate export
//! macros are `#[macro_export]`ed under names derived from the interface
//! (`meta` is exported by every world): two worlds in one crate would clash.
//! Plugins use these through `crowsnest-plugin-sdk`, not directly.
#![allow(missing_docs, clippy::all)]

wit_bindgen::generate!({
    world: "registry-provider",
    path: "../../../../wit",
    pub_export_macro: true,
    export_macro_name: "export_world",
    additional_derives: [PartialEq, Eq],
    default_bindings_module: "crowsnest_plugin_sdk::registry::bindings",
});
