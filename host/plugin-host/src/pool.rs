//! Live plugin instances: one `Store` each, reused across calls, replaced by a
//! fresh one from the `InstancePre` after any trap.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::registry::crowsnest::plugin::types;
use crate::bindings::{registry, strategy, trigger};
use crate::engine::{root_cause, shared_engine};
use crate::limits::SandboxLimits;
use crate::observer::{CallOutcome, PluginObserver};
use crate::state::{Capabilities, HostState};
use crate::PluginError;

/// A world's generated bindings, seen uniformly by the pool.
pub trait World: Sized + Send + Sync + 'static {
    /// The generated `*Pre` type.
    type Pre: Clone + Send + Sync + 'static;

    /// Instantiate in `store`.
    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Self>>;

    /// Call `meta.describe`.
    fn describe<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<types::PluginInfo>> + Send + 'a;

    /// Call `meta.configure`.
    fn configure<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
        settings: &'a [types::Setting],
    ) -> impl Future<Output = wasmtime::Result<Result<(), types::ConfigError>>> + Send + 'a;
}

macro_rules! impl_world {
    ($bindings:ty, $pre:ty, $meta:ident) => {
        impl World for $bindings {
            type Pre = $pre;

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut Store<HostState>,
            ) -> BoxFuture<'a, wasmtime::Result<Self>> {
                Box::pin(pre.instantiate_async(store))
            }

            fn describe<'a>(
                &'a self,
                store: &'a mut Store<HostState>,
            ) -> impl Future<Output = wasmtime::Result<types::PluginInfo>> + Send + 'a {
                self.$meta().call_describe(store)
            }

            fn configure<'a>(
                &'a self,
                store: &'a mut Store<HostState>,
                settings: &'a [types::Setting],
            ) -> impl Future<Output = wasmtime::Result<Result<(), types::ConfigError>>> + Send + 'a
            {
                self.$meta().call_configure(store, settings)
            }
        }
    };
}

impl_world!(
    registry::RegistryProvider,
    registry::RegistryProviderPre<HostState>,
    crowsnest_plugin_meta
);
impl_world!(
    strategy::VersionStrategy,
    strategy::VersionStrategyPre<HostState>,
    crowsnest_plugin_meta
);
impl_world!(
    trigger::Trigger,
    trigger::TriggerPre<HostState>,
    crowsnest_plugin_meta
);

/// One instantiated plugin with its own store.
pub struct Live<W> {
    store: Store<HostState>,
    bindings: W,
}

impl<W: World> Live<W> {
    /// Start one guest call under the sandbox's CPU accounting; hand out the
    /// bindings and store to make it with. Finish with [`Live::outcome`].
    pub fn begin(&mut self) -> (&W, &mut Store<HostState>) {
        self.store.data_mut().clock.start();
        self.store.set_epoch_deadline(1);
        (&self.bindings, &mut self.store)
    }

    /// Translate a call's result: traps and limit hits become a `PluginError`
    /// that names the plugin and the cause.
    pub fn outcome<R>(&self, result: wasmtime::Result<R>) -> Result<R, PluginError> {
        result.map_err(|err| trap_error(self.store.data(), &err))
    }
}

/// Make one guest call on a [`Live`] instance or an [`InstancePool`]:
/// `guest_call!(live: target, |bindings, store| bindings.call_x(store, ..))`.
/// A macro rather than a closure-taking method, so the call may borrow its
/// arguments freely.
macro_rules! guest_call {
    (live: $live:expr, |$bindings:ident, $store:ident| $call:expr) => {{
        let live = $live;
        let result = {
            let ($bindings, $store) = live.begin();
            let deadline = $store.data().sandbox().call_timeout;
            $crate::pool::within_deadline(deadline, $call).await
        };
        live.outcome(result)
    }};
    (pool: $pool:expr, |$bindings:ident, $store:ident| $call:expr) => {{
        let pool = $pool;
        let mut checkout = pool.checkout().await?;
        let result = {
            let ($bindings, $store) = checkout.live.begin();
            let deadline = $store.data().sandbox().call_timeout;
            $crate::pool::within_deadline(deadline, $call).await
        };
        pool.finish(checkout, result)
    }};
}
pub(crate) use guest_call;

/// A guest call stopped by its wall-clock deadline ([`SandboxLimits::call_timeout`]).
#[derive(Debug, thiserror::Error)]
#[error("exceeded its wall-clock deadline ({} s per call, host calls included)", .0.as_secs_f64())]
pub struct CallDeadline(pub std::time::Duration);

/// Runs one guest call, abandoning it at `deadline`. The call's future is
/// dropped mid-flight, so its store may be inconsistent: the error makes the
/// pool discard the instance (the next call instantiates a fresh one from the
/// `InstancePre`).
pub async fn within_deadline<R>(
    deadline: std::time::Duration,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(CallDeadline(deadline))),
    }
}

/// Describe a failed call in words: which limit, trap or malformed value.
fn trap_error(state: &HostState, err: &wasmtime::Error) -> PluginError {
    let plugin = state.label.to_string();
    let cause = if let Some(deadline) = err.downcast_ref::<CallDeadline>() {
        deadline.to_string()
    } else if state.clock.exhausted() {
        format!(
            "exceeded its CPU time limit ({} ms of guest execution)",
            state.sandbox().cpu_per_call.as_millis()
        )
    } else if let Some(limit) = state.limits.hit() {
        format!(
            "exceeded its {limit} (limit {} MiB)",
            state.sandbox().memory_bytes >> 20
        )
    } else if let Some(trap) = err.downcast_ref::<Trap>() {
        match trap {
            Trap::UnreachableCodeReached => {
                "trapped: the guest panicked or aborted (wasm `unreachable`)".to_string()
            }
            Trap::StackOverflow => "trapped: stack overflow".to_string(),
            other => format!("trapped: {other}"),
        }
    } else {
        // Not a trap: a value the host could not lift (bad UTF-8, bad discriminant, out-of-bounds pointer).
        format!("broke the component ABI: {}", root_cause(err))
    };
    PluginError::Trap { plugin, cause }
}

/// Create a store and instance, with limits and the CPU watchdog installed.
pub async fn instantiate_once<W: World>(
    pre: &W::Pre,
    label: Arc<str>,
    limits: SandboxLimits,
    capabilities: Capabilities,
) -> Result<Live<W>, PluginError> {
    let mut store = Store::new(
        shared_engine(),
        HostState::new(label.clone(), limits, capabilities),
    );
    store.limiter(|state| &mut state.limits);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if state.clock.guest_time() >= state.sandbox().cpu_per_call {
            state.clock.set_exhausted();
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Yield so a busy guest never monopolises an executor thread.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store.data_mut().clock.start();
    store.set_epoch_deadline(1);
    match W::instantiate(pre, &mut store).await {
        Ok(bindings) => Ok(Live { store, bindings }),
        Err(err) => Err(match trap_error(store.data(), &err) {
            PluginError::Trap { plugin, cause } => PluginError::Trap {
                plugin,
                cause: format!("failed to instantiate: {cause}"),
            },
            other => other,
        }),
    }
}

/// What one configured plugin instance is built from, whatever its world.
#[derive(Clone)]
pub struct InstanceSpec {
    /// Settings passed to `configure`.
    pub settings: Vec<(String, String)>,
    /// Sandbox limits.
    pub limits: SandboxLimits,
    /// Capabilities lent to every instance.
    pub capabilities: Capabilities,
    /// Concurrent instances at most.
    pub max_instances: usize,
    /// Told about every call's outcome (metrics).
    pub observer: Arc<dyn PluginObserver>,
}

/// Reusable instances of one configured plugin instance.
///
/// Calls take an idle instance (or create and configure one, up to
/// `max_instances`), and return it afterwards unless the call trapped: a
/// trapped instance is poisoned and dropped, so the next call starts fresh.
pub struct InstancePool<W: World> {
    pre: W::Pre,
    label: Arc<str>,
    settings: Vec<types::Setting>,
    limits: SandboxLimits,
    capabilities: Capabilities,
    observer: Arc<dyn PluginObserver>,
    idle: Mutex<Vec<Live<W>>>,
    permits: tokio::sync::Semaphore,
}

impl<W: World> InstancePool<W> {
    /// A pool whose first instance is created and configured now, so a bad
    /// configuration is reported at start-up.
    pub async fn new(
        pre: W::Pre,
        label: Arc<str>,
        spec: InstanceSpec,
    ) -> Result<Self, PluginError> {
        let pool = Self {
            pre,
            label,
            settings: spec
                .settings
                .into_iter()
                .map(|(key, value)| types::Setting { key, value })
                .collect(),
            limits: spec.limits,
            capabilities: spec.capabilities,
            observer: spec.observer,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(spec.max_instances.max(1)),
        };
        let first = pool.fresh().await?;
        pool.put_back(first);
        Ok(pool)
    }

    /// The label used in errors and logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    async fn fresh(&self) -> Result<Live<W>, PluginError> {
        let mut live = instantiate_once::<W>(
            &self.pre,
            self.label.clone(),
            self.limits,
            self.capabilities.clone(),
        )
        .await?;
        let configured = guest_call!(live: &mut live, |bindings, store| bindings.configure(store, &self.settings))?;
        configured.map_err(|err| PluginError::Config {
            plugin: self.label.to_string(),
            key: err.key,
            message: err.message,
        })?;
        Ok(live)
    }

    fn take_idle(&self) -> Option<Live<W>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn put_back(&self, live: Live<W>) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(live);
    }

    /// Take an instance for one call (waiting while `max_instances` are busy).
    pub async fn checkout(&self) -> Result<Checkout<'_, W>, PluginError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PluginError::Trap {
                plugin: self.label.to_string(),
                cause: "plugin pool closed".into(),
            })?;
        let live = match self.take_idle() {
            Some(live) => live,
            None => self.fresh().await?,
        };
        Ok(Checkout {
            live,
            _permit: permit,
        })
    }

    /// Return the instance after a call, unless the call failed (a failed
    /// instance may be poisoned: the next call gets a fresh one).
    pub fn finish<R>(
        &self,
        checkout: Checkout<'_, W>,
        result: wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let result = checkout.live.outcome(result);
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(PluginError::Trap { .. }) => CallOutcome::Trapped,
            Err(_) => CallOutcome::Failed,
        };
        self.observer.call_finished(&self.label, outcome);
        if result.is_ok() {
            self.put_back(checkout.live);
        } else {
            tracing::warn!(
                plugin = &*self.label,
                "discarding plugin instance after a failed call"
            );
        }
        result
    }
}

/// An instance taken from a pool for one call.
pub struct Checkout<'p, W> {
    /// The instance.
    pub live: Live<W>,
    _permit: tokio::sync::SemaphorePermit<'p>,
}
