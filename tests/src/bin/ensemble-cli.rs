//! The `ensemble` command, built inside the tests package so that process tests can run it.

fn main() {
    ensemble_node::cli::main()
}
