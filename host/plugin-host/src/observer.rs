//! How the plugin host reports what its instances do, without knowing who
//! listens: the daemon's metrics implement [`PluginObserver`]; a one-shot scan
//! passes [`NoObserver`].

/// How one guest call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Returned normally.
    Ok,
    /// Returned something the host refused, or could not start.
    Failed,
    /// Trapped: panic, CPU or memory limit, ABI violation.
    Trapped,
}

/// Told about every guest call of every pool it is given to.
pub trait PluginObserver: Send + Sync + 'static {
    /// One call into the instance labelled `plugin` finished with `outcome`.
    fn call_finished(&self, plugin: &str, outcome: CallOutcome);
}

/// Observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl PluginObserver for NoObserver {
    fn call_finished(&self, _plugin: &str, _outcome: CallOutcome) {}
}
