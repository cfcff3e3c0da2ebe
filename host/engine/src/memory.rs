//! Handing the memory a scan freed back to the system.
//!
//! glibc's allocator keeps freed blocks in per-thread arenas; a scan of
//! thousands of containers frees megabytes on every tokio worker, so
//! without a trim a server's RSS stays at the largest scan's peak (and grows
//! with the number of arenas that served one). `malloc_trim` returns the
//! free pages of every arena; elsewhere it is a no-op.

/// Returns the allocator's free pages to the system (glibc), after a scan.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers; it only walks the
        // allocator's own free lists under its locks.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::trace!(released = released != 0, "malloc_trim after a scan");
    }
}
