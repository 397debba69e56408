//! The `ensemble` command.

fn main() {
    ensemble_node::cli::main()
}
