//! Guest SDK for crowsnest plugins.
//!
//! A crowsnest plugin is a WebAssembly component implementing one world of the
//! `crowsnest:plugin` WIT package. This crate hides the generated bindings behind
//! three traits, one per world, each with an export macro:
//!
//! | cargo feature | trait                               | export macro          |
//! |---------------|-------------------------------------|-----------------------|
//! | `registry`    | [`registry::RegistryProvider`]      | [`export_registry!`]  |
//! | `strategy`    | [`strategy::VersionStrategy`]       | [`export_strategy!`]  |
//! | `trigger`     | [`trigger::Trigger`]                | [`export_trigger!`]   |
//!
//! Enable the feature of the world the plugin implements, one per plugin
//! crate. Each world's bindings come from their own crate and only describe
//! the world's imports; the export macro adds the full world (with its
//! exports) to the plugin crate itself, so the componentizer sees exactly
//! the exported world. Several features at once are supported for native
//! builds of a whole workspace (tests, clippy), where nothing is exported.
//!
//! [`log`] and [`http`] exist for the worlds that import them (`registry`,
//! `trigger`), and `clock`; `smtp` and `mqtt` for the `trigger` world, the
//! grant cache ([`registry::grants`]) for the `registry` world. Outside wasm there is no host: logs go to stderr and host
//! calls fail with an error, so a plugin's logic can be unit-tested natively.
//!
//! The value returned by a plugin's `configure` is the plugin instance's state;
//! the SDK keeps it and hands it to every later call as `&self`. A call that
//! arrives before a successful `configure` gets a clear error instead. Each
//! world module's `configure_from` runs the same validation and `configure`
//! on raw `(key, value)` pairs, so unit tests configure a plugin as the host does.

pub mod encoding;
mod info;
#[cfg(any(feature = "registry", feature = "strategy", feature = "trigger"))]
mod instance;
mod settings;
pub mod url;
mod world;

pub use info::{ConfigError, ConfigKey, PluginInfo};
pub use settings::Settings;

#[cfg(any(feature = "registry", feature = "trigger"))]
pub mod clock;
#[cfg(any(feature = "registry", feature = "trigger"))]
pub mod http;
#[cfg(any(feature = "registry", feature = "trigger"))]
pub mod log;
#[cfg(feature = "trigger")]
pub mod mqtt;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "trigger")]
pub mod smtp;
#[cfg(feature = "strategy")]
pub mod strategy;
#[cfg(feature = "trigger")]
pub mod trigger;

/// Re-exported for plugins that build JSON (settings, webhooks, vendor APIs).
pub use serde_json;
