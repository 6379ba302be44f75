//! Process-wide allocator settings: for bulk transfers, and for a large
//! catalog's memory to go back to the kernel.
//!
//! An upload moves through hyper, HTTP/2 and gRPC buffers of a few hundred
//! KiB to a few MiB, each allocated, handed along and freed on another
//! thread. With glibc's defaults such blocks are `mmap`ed or trimmed back
//! to the kernel as soon as they are freed, so every one is faulted in
//! (and zeroed) again: about 13% of btyd's CPU time during a 1 GiB upload,
//! measured with `perf`. Keeping them in the heap makes that ~2%.

/// Blocks below this come from (and return to) the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 8 << 20;
/// Free memory kept at the top of a heap before it goes back to the kernel:
/// a few transfers' worth of buffers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;

/// One heap for every thread. glibc gives threads arenas of their own (up
/// to eight per core); a large catalog's long-lived entries and rows then
/// end up spread over several arenas, each pinned resident by the few live
/// blocks among its freed parse and merge garbage. With 100 000 entries
/// btyd's RSS after a listing was 266 MiB with the default and 182 MiB with
/// one arena (`scripts/bench-scale`). The contention it adds is small: every
/// thread keeps a cache of small blocks, and the bulk paths reuse their
/// buffers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 1;

/// Apply the settings; call once at start-up, before the runtime spreads
/// allocations over its threads. A no-op on other C libraries.
pub fn tune_for_bulk_transfers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (param, value) in [
        (libc::M_ARENA_MAX, ARENA_MAX),
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ] {
        // SAFETY: mallopt only changes allocator tunables, under glibc's
        // own lock; no memory is handed out or touched. A refusal (0)
        // leaves the default in place, which is only slower.
        if unsafe { libc::mallopt(param, value) } == 0 {
            tracing::debug!(param, value, "mallopt refused a setting");
        }
    }
}

/// Hand the heap's free pages back to the kernel. Merging or parsing a
/// large catalog frees tens of MiB of short-lived allocations that the trim
/// threshold above would otherwise keep resident for good; the catalog
/// calls this after such work. A no-op on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own arenas to
    // the kernel; no live allocation is moved or touched.
    unsafe {
        libc::malloc_trim(0);
    }
}
