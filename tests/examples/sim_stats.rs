//! Prints what each simulated seed did: `cargo run -p ensemble-tests --example sim_stats -- FROM TO`.

use ensemble_tests::sim::{Sim, SimConfig};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (from, to) = (
        args.first().copied().unwrap_or(0),
        args.get(1).copied().unwrap_or(20),
    );
    for seed in from..to {
        let cfg = SimConfig::for_seed(seed);
        let shape = format!("{cfg:?}");
        match Sim::new(seed, cfg).run() {
            Ok(r) => println!("seed {seed}: {r:?} {shape}"),
            Err(e) => println!("seed {seed}: FAILED {shape}: {e}"),
        }
    }
}
