//! One `/v2/` ping per registry origin at a time: the scan's racing workers
//! share the challenge the first one learns instead of each pinging.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The lock a caller holds while it pings one origin.
pub(crate) type PingLock = Arc<tokio::sync::Mutex<()>>;

/// Ping locks by registry origin.
#[derive(Debug, Default)]
pub(crate) struct PingLocks {
    locks: Mutex<HashMap<String, PingLock>>,
}

impl PingLocks {
    /// The lock for `origin`: hold it, look in the scheme cache again, and
    /// ping only when the scheme is still unknown.
    pub fn for_origin(&self, origin: &str) -> PingLock {
        match self.locks.lock() {
            Ok(mut locks) => locks.entry(origin.to_string()).or_default().clone(),
            // A poisoned map only loses the sharing, never correctness.
            Err(_) => Arc::default(),
        }
    }
}
