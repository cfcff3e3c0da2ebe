//! The glue every world shares: converting the SDK's descriptions into the
//! world's generated records, and keeping the instance `configure` builds.
//! Every world generates its own copy of the `types` and `meta` interfaces,
//! hence a macro, expanded once in each world's module.

/// Expands, inside a world's module: the public `configure_from`, the
/// world's `meta` export for its adapter type, the instance slot with
/// `with_instance` for the world's own calls, and the record conversions.
#[cfg(any(feature = "registry", feature = "strategy", feature = "trigger"))]
macro_rules! impl_world_glue {
    (
        types: $types:path,
        meta_guest: $meta_guest:path,
        kind: $kind:ident,
        plugin: $plugin:ident,
        export: $export:ident $(,)?
    ) => {
        use $types as world_types;

        thread_local! {
            static INSTANCE: $crate::instance::InstanceSlot =
                const { $crate::instance::InstanceSlot::new() };
        }

        /// Validates raw `(key, value)` settings against `T::describe()` and
        /// builds the instance with `T::configure`, exactly as the host's
        /// `configure` call does; lets a plugin's unit tests configure it.
        pub fn configure_from<T: $plugin>(
            pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        ) -> Result<T, $crate::ConfigError> {
            let settings = $crate::Settings::new(pairs, &T::describe().config_keys)?;
            T::configure(&settings)
        }

        /// Runs `body` on the configured instance; before a successful
        /// `configure`, the error message for `call` instead.
        fn with_instance<T: $plugin, R>(
            call: &str,
            body: impl FnOnce(&T) -> R,
        ) -> Result<R, String> {
            match INSTANCE.with(|slot| slot.get::<T>()) {
                Some(instance) => Ok(body(&instance)),
                None => Err($crate::instance::not_configured_message(
                    &T::describe().name,
                    call,
                )),
            }
        }

        impl<T: $plugin> $meta_guest for $export<T> {
            fn describe() -> world_types::PluginInfo {
                plugin_info_to_wit(T::describe())
            }

            fn configure(
                settings: Vec<world_types::Setting>,
            ) -> Result<(), world_types::ConfigError> {
                INSTANCE.with($crate::instance::InstanceSlot::clear);
                let pairs = settings
                    .into_iter()
                    .map(|setting| (setting.key, setting.value));
                let instance = configure_from::<T>(pairs).map_err(config_error_to_wit)?;
                INSTANCE.with(|slot| slot.install(instance));
                Ok(())
            }
        }

        fn plugin_info_to_wit(info: $crate::PluginInfo) -> world_types::PluginInfo {
            world_types::PluginInfo {
                name: info.name,
                version: info.version,
                kind: world_types::PluginKind::$kind,
                description: info.description,
                config_keys: info
                    .config_keys
                    .into_iter()
                    .map(|key| world_types::ConfigKey {
                        name: key.name,
                        description: key.description,
                        required: key.required,
                        secret: key.secret,
                    })
                    .collect(),
            }
        }

        fn config_error_to_wit(error: $crate::ConfigError) -> world_types::ConfigError {
            world_types::ConfigError {
                key: error.key,
                message: error.message,
            }
        }
    };
}

#[cfg(any(feature = "registry", feature = "strategy", feature = "trigger"))]
pub(crate) use impl_world_glue;

/// Exports `$crate::$world::$adapter<$plugin>` as this component's world: the shared
/// body of [`export_registry!`](crate::export_registry),
/// [`export_strategy!`](crate::export_strategy) and
/// [`export_trigger!`](crate::export_trigger).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($world:ident, $adapter:ident, $plugin:ty) => {
        // Exports exist only in wasm: native builds (unit tests, clippy) cannot
        // link symbol names such as `crowsnest:plugin/meta@0.2.0#describe`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __CrowsnestExport = $crate::$world::$adapter<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::$world::bindings::export_world!(
            __CrowsnestExport with_types_in $crate::$world::bindings
        );
    };
}
