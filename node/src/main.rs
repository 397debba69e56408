//! The `ensemble` command.

/// mimalloc gives freed pages back to the system on its own; glibc's malloc kept a server's
/// high-water mark (see docs/benchmarks.md, "Memory after the data is deleted").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ensemble_node::cli::main()
}
