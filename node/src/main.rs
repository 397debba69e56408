//! The `ensemble` command.

/// mimalloc gives freed pages back to the system on its own; glibc's malloc kept a server's
/// high-water mark (see docs/benchmarks.md, "Memory after the data is deleted").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    keep_transparent_huge_pages_off();
    purge_freed_memory_in_the_background();
    ensemble_node::cli::main()
}

/// mimalloc gives freed memory back to the system a little after it was freed, but only when
/// some thread allocates or frees again: a server that went idle right after a snapshot or a
/// SNAP kept the image buffers' 300-600 MiB (docs/benchmarks.md, "Recovery time"). A thread of
/// its own runs the due purges every second.
fn purge_freed_memory_in_the_background() {
    let spawned = std::thread::Builder::new()
        .name("allocator-purge".into())
        .spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            // SAFETY: mi_collect takes no pointer; it only runs mimalloc's own bookkeeping.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
    if let Err(e) = spawned {
        eprintln!("ensemble: no allocator purge thread ({e}); freed memory returns later");
    }
}

/// Turns transparent huge pages off for this process. mimalloc advises them on its arenas,
/// and the kernel then backs any 2 MiB region holding a single live page with a whole huge
/// page: a server's RSS grew to 4x its idle figure after its data was deleted, with nothing
/// running (docs/benchmarks.md, "Memory after the data is deleted").
fn keep_transparent_huge_pages_off() {
    // SAFETY: PR_SET_THP_DISABLE takes integers only and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Kernels before 3.15 lack the option; huge pages then cost memory, not correctness.
        eprintln!("ensemble: transparent huge pages stay on (prctl refused)");
    }
}
