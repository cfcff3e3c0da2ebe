//! The host's wall clock (`clock` import of the trigger world): for values a
//! service wants unique or dated, such as Matrix transaction ids.

#[cfg(feature = "trigger")]
use crowsnest_plugin_world_trigger::crowsnest::plugin::clock as wit_clock;

/// Seconds and nanoseconds since the Unix epoch (UTC), from the host. Outside
/// wasm (a plugin's native unit tests) there is no host: the process's clock.
pub fn now() -> (u64, u32) {
    if cfg!(target_arch = "wasm32") {
        let now = wit_clock::now();
        return (now.seconds, now.nanoseconds);
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_secs(), since_epoch.subsec_nanos())
}
