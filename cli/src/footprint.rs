//! Process-wide memory settings for the pipeline's stages (collector, processor, sink).
//!
//! The collector runs in every cluster of a fleet, next to the workloads, and its RSS
//! is what operators judge first. Most of its anonymous memory was transparent huge
//! pages: mimalloc asks for them on its arenas (`MADV_HUGEPAGE`; the kernel honours
//! that in its default `madvise` mode), so a few live kilobytes in a 2 MiB region cost
//! 2 MiB. Turning THP off for the process took the collector's steady RSS at 5,000
//! events/s from 37 to 25.5 MiB (anonymous 19.5 → 7.5 MiB; BENCHMARKS.md), for no
//! measurable throughput cost: its work is parsing and I/O, not TLB-bound. The
//! processor and the sink run without THP too: at 500 events/s on a real API server
//! their RSS fell from 72 to 45 MiB and from 42 to 32 MiB, and their benches did not
//! move beyond noise (processor / transactional passthrough 0.69 and 0.83 without THP
//! against 0.68 and 0.74 with it; sink / raw insert 0.63 and 0.69 against 0.66 and 0.68,
//! alternating, 2026-12-06).

/// Disable transparent huge pages for this process (`PR_SET_THP_DISABLE`, Linux
/// 3.15+): future faults get 4 KiB pages whatever an allocator advises. Called before
/// the runtime starts, so almost nothing is mapped yet. Failure (another OS, a kernel
/// without it) only costs memory, so it is logged, not fatal.
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments and
        // touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "could not disable transparent huge pages; RSS may be higher");
        }
    }
}
