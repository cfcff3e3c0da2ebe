//! The limits every plugin instance runs under: memory and tables per
//! instance in total (with the limit that was hit remembered for the error message), and
//! guest CPU time per call, measured without the time spent in host imports.

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Resource limits applied to every plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Linear memories and tables of one instance together, in bytes.
    pub memory_bytes: usize,
    /// Guest execution time per call (time spent waiting on host imports is not counted).
    pub cpu_per_call: Duration,
    /// Wall-clock time per call, host imports (HTTP, OCI, SMTP …) included: a
    /// guest looping on `http.send` is stopped here, not by `cpu_per_call`.
    pub call_timeout: Duration,
    /// Per-request cap for raw HTTP.
    pub http_timeout: Duration,
    /// Largest HTTP response body handed to a guest.
    pub http_max_body: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_per_call: Duration::from_secs(1),
            call_timeout: Duration::from_secs(120),
            http_timeout: Duration::from_secs(30),
            http_max_body: 8 << 20,
        }
    }
}

/// Measures guest execution time within one call, excluding host imports.
#[derive(Debug, Default)]
pub struct GuestClock {
    call_started: Option<Instant>,
    in_host: Duration,
    exhausted: bool,
}

impl GuestClock {
    /// Start timing a call.
    pub fn start(&mut self) {
        self.call_started = Some(Instant::now());
        self.in_host = Duration::ZERO;
        self.exhausted = false;
    }

    /// Guest time used by the current call so far.
    pub fn guest_time(&self) -> Duration {
        self.call_started
            .map(|start| start.elapsed().saturating_sub(self.in_host))
            .unwrap_or_default()
    }

    /// Account for time spent inside a host import.
    pub fn add_host_time(&mut self, spent: Duration) {
        self.in_host += spent;
    }

    /// Mark that the CPU limit stopped this call.
    pub fn set_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// Whether the CPU limit stopped the last call.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}

/// Elements one table may hold (a guest's function table needs a few thousand).
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Bytes a table element is counted as against the instance's total (a
/// function reference is a pointer or two in wasmtime).
const TABLE_ELEMENT_BYTES: usize = 16;

/// The store's resource limiter: `memory_bytes` caps the **sum** of every
/// linear memory and table of the instance (a component may define several
/// memories; a per-memory cap would multiply the limit), and it remembers
/// which limit was hit so the error can say so.
///
/// Memories and tables only grow and are freed with the store, which lives
/// exactly as long as the instance, so a running total is exact.
pub struct GuardedLimits {
    total_cap: usize,
    in_use: usize,
    hit: Option<String>,
}

impl GuardedLimits {
    /// Limits for one store: at most `memory_bytes` of memories and tables together.
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            total_cap: memory_bytes,
            in_use: 0,
            hit: None,
        }
    }

    /// The limit that was hit, if one was.
    pub fn hit(&self) -> Option<&str> {
        self.hit.as_deref()
    }

    /// Bytes of memories and tables the instance holds now.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Grants growing by `more` bytes if the total stays within the cap.
    fn grow(&mut self, more: usize, what: impl FnOnce() -> String) -> bool {
        match self.in_use.checked_add(more) {
            Some(total) if total <= self.total_cap => {
                self.in_use = total;
                true
            }
            _ => {
                self.hit = Some(format!(
                    "memory limit: {} would take the instance's memories and tables past {} MiB in total",
                    what(),
                    self.total_cap >> 20
                ));
                false
            }
        }
    }
}

impl ResourceLimiter for GuardedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let granted = self.grow(desired.saturating_sub(current), || {
            format!(
                "growing a memory from {} to {} MiB",
                current >> 20,
                desired >> 20
            )
        });
        if granted {
            Ok(true)
        } else {
            // Trapping (not answering -1 to `memory.grow`) stops the guest at once.
            Err(wasmtime::Error::msg(self.hit.clone().unwrap_or_default()))
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.hit = Some(format!("table limit: guest asked for {desired} elements"));
            return Err(wasmtime::Error::msg(self.hit.clone().unwrap_or_default()));
        }
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let more = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        if self.grow(more, || format!("growing a table to {desired} elements")) {
            Ok(true)
        } else {
            Err(wasmtime::Error::msg(self.hit.clone().unwrap_or_default()))
        }
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        // The total above is the real bound; this only stops absurd modules early.
        64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Instance, Module, Store};

    /// A core module with two memories of `pages` 64 KiB pages each.
    fn two_memories(pages: u8) -> Vec<u8> {
        assert!(pages < 0x80, "one-byte LEB128");
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        // Memory section: two memories, no maximum, `pages` pages each.
        bytes.extend_from_slice(&[5, 5, 2, 0, pages, 0, pages]);
        bytes
    }

    fn instantiate(module: &[u8], cap: usize) -> (Result<(), String>, GuardedLimits) {
        let engine = wasmtime::Engine::default();
        let module = Module::new(&engine, module).unwrap();
        let mut store = Store::new(&engine, GuardedLimits::new(cap));
        store.limiter(|limits| limits);
        let result = Instance::new(&mut store, &module, &[])
            .map(drop)
            .map_err(|err| format!("{err:#}"));
        (result, store.into_data())
    }

    #[test]
    fn the_cap_is_on_all_memories_together() {
        // Two memories of 2.5 MiB: each under a 4 MiB cap, together over it.
        let (result, limits) = instantiate(&two_memories(40), 4 << 20);
        let err = result.unwrap_err();
        assert!(err.contains("memory limit"), "{err}");
        let hit = limits.hit().unwrap();
        assert!(hit.contains("past 4 MiB in total"), "{hit}");
        assert!(limits.in_use() <= 4 << 20);
        // Under a 6 MiB cap both fit, and the total is counted exactly.
        let (result, limits) = instantiate(&two_memories(40), 6 << 20);
        result.unwrap();
        assert_eq!(limits.in_use(), 2 * 40 * 65536);
        assert!(limits.hit().is_none());
    }
}
