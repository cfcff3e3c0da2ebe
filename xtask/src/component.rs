//! Turning a core module into a component and checking what it implements.

use anyhow::{bail, Context, Result};
use wit_component::{ComponentEncoder, DecodedWasm};
use wit_parser::WorldItem;

const PACKAGE: &str = "crowsnest:plugin";
const VERSION: &str = "@0.2.0";

/// The crowsnest worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldKind {
    /// `registry-provider`.
    Registry,
    /// `version-strategy`.
    Strategy,
    /// `trigger`.
    Trigger,
}

impl WorldKind {
    /// WIT world name.
    fn name(self) -> &'static str {
        match self {
            Self::Registry => "registry-provider",
            Self::Strategy => "version-strategy",
            Self::Trigger => "trigger",
        }
    }

    /// The interfaces a component of this world exports, fully qualified.
    fn exports(self) -> [String; 2] {
        let kind_interface = match self {
            Self::Registry => "registry",
            Self::Strategy => "strategy",
            Self::Trigger => "notifier",
        };
        [
            format!("{PACKAGE}/meta{VERSION}"),
            format!("{PACKAGE}/{kind_interface}{VERSION}"),
        ]
    }

    /// The function imports a component of this world may have.
    fn allowed_imports(self) -> Vec<String> {
        let names: &[&str] = match self {
            Self::Registry => &[
                "types",
                "registry-types",
                "log",
                "http-client",
                "oci-client",
                "clock",
                "grant-cache",
            ],
            Self::Strategy => &["types"],
            Self::Trigger => &["types", "log", "http-client", "clock", "smtp", "mqtt"],
        };
        names
            .iter()
            .map(|name| format!("{PACKAGE}/{name}{VERSION}"))
            .collect()
    }

    fn all() -> [Self; 3] {
        [Self::Registry, Self::Strategy, Self::Trigger]
    }
}

/// A component with what it imports and exports.
pub struct Component {
    /// The encoded component.
    pub bytes: Vec<u8>,
    /// Imported interface names, sorted (type-only interfaces included).
    pub imports: Vec<String>,
    /// Exported interface names, sorted.
    pub exports: Vec<String>,
    /// The crowsnest world whose exports it has, if any.
    pub world: Option<WorldKind>,
}

impl Component {
    /// Componentizes `core` (wasm32-unknown-unknown: no WASI adapter needed) and validates it.
    pub fn from_core_module(core: &[u8]) -> Result<Self> {
        let mut encoder = ComponentEncoder::default();
        encoder.validate(true);
        encoder
            .module(core)
            .context("reading the core module's component type")?;
        let bytes = encoder.encode().context("encoding the component")?;
        Self::inspect(bytes)
    }

    fn inspect(bytes: Vec<u8>) -> Result<Self> {
        let decoded = wit_component::decode(&bytes).context("decoding the built component")?;
        let DecodedWasm::Component(resolve, world_id) = decoded else {
            bail!("the encoder produced a WIT package, not a component");
        };
        let world = &resolve.worlds[world_id];
        let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, WorldItem>| {
            let mut names: Vec<String> = items
                .keys()
                .map(|key| resolve.name_world_key(key))
                .collect();
            names.sort();
            names
        };
        let imports = names(&world.imports);
        let exports = names(&world.exports);
        let kind = WorldKind::all().into_iter().find(|kind| {
            let mut expected = kind.exports().to_vec();
            expected.sort();
            expected == exports
        });
        Ok(Self {
            bytes,
            imports,
            exports,
            world: kind,
        })
    }

    /// Fails unless the component implements `expected` (`None`: no crowsnest
    /// world at all) and imports only what that world lends.
    pub fn expect_world(&self, expected: Option<WorldKind>) -> Result<()> {
        if self.world != expected {
            bail!(
                "expected world {}, but the component exports {}",
                expected.map_or("(none of crowsnest's)", WorldKind::name),
                self.exports.join(", ")
            );
        }
        if let Some(kind) = expected {
            let allowed = kind.allowed_imports();
            if let Some(extra) = self.imports.iter().find(|import| !allowed.contains(import)) {
                bail!(
                    "imports `{extra}`, which the {} world does not lend",
                    kind.name()
                );
            }
        }
        Ok(())
    }

    /// `crowsnest:plugin/<world>` or `unknown world`.
    pub fn world_label(&self) -> String {
        match self.world {
            Some(kind) => format!("{PACKAGE}/{}", kind.name()),
            None => "unknown world".to_string(),
        }
    }
}
