//! The limits every plugin instance runs under: memory and tables per
//! store (with the limit that was hit remembered for the error message), and
//! guest CPU time per call, measured without the time spent in host imports.

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Resource limits applied to every plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Linear memory per instance, in bytes.
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

/// `StoreLimits` that remembers whether a limit was hit, so the error can say so.
pub struct GuardedLimits {
    inner: StoreLimits,
    hit: Option<String>,
}

impl GuardedLimits {
    /// Limits for one store with `memory_bytes` of linear memory.
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .table_elements(100_000)
                .instances(64)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            hit: None,
        }
    }

    /// The limit that was hit, if one was.
    pub fn hit(&self) -> Option<&str> {
        self.hit.as_deref()
    }
}

impl ResourceLimiter for GuardedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.inner.memory_growing(current, desired, maximum);
        if !matches!(result, Ok(true)) {
            self.hit = Some(format!(
                "memory limit: guest asked for {} MiB",
                desired >> 20
            ));
        }
        result
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.inner.table_growing(current, desired, maximum);
        if !matches!(result, Ok(true)) {
            self.hit = Some(format!("table limit: guest asked for {desired} elements"));
        }
        result
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
