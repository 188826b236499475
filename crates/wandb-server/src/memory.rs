//! Giving freed memory back to the system. glibc's allocator keeps the pages of freed small allocations in its
//! arenas: after a million-entry manifest was parsed and dropped, the server stayed at 520 MB of resident memory
//! indefinitely (`cargo xtask bench server`). Asking it to trim after such frees brings it back to about 20 MB.

/// Below this many freed manifest entries (a few hundred bytes each) trimming is not worth a walk of the heap.
const TRIM_ABOVE_ENTRIES: usize = 50_000;

/// Called after `entries` parsed manifest entries were dropped.
pub(crate) fn after_freeing(entries: usize) {
    if entries >= TRIM_ABOVE_ENTRIES {
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "malloc_trim has no preconditions: it may be called from any thread at any time")]
fn trim() {
    // SAFETY: see the reason above; the return value only says whether memory was released.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
