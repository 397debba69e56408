//! The `ensemble` command.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ensemble: {e}");
            2
        }
    };
    std::process::exit(code);
}
