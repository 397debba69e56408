//! Side-by-side benchmark of two ZooKeeper-protocol ensembles (ensemble and Apache ZooKeeper)
//! over an independent client, the `zookeeper-client` crate. `scripts/bench-compare` starts the
//! servers and calls this tool; see `docs/benchmarks.md`.

mod load;
mod scenarios;
mod stats;
mod target;

use load::Workload;
use stats::{header, row, Outcome};
use std::time::Duration;
use target::Target;

const USAGE: &str = "usage:
  ensemble-bench rows A B SECS WORKLOAD..   WORKLOAD = OP:CLIENTSxINFLIGHT, OP = create|set|get|mixed
  ensemble-bench watch A B WATCHERS ROUNDS
  ensemble-bench sessions A B PARALLEL SECS
  ensemble-bench load T SECS WORKLOAD [SAMPLES]
                                            one system alone (for profiling); with SAMPLES,
                                            also every completed request to that file, one
                                            line each: SENT_UNIX_US LATENCY_US
  ensemble-bench gap T WRITERS
  ensemble-bench reconnect T CLIENTS
where A, B, T = NAME=HOST:PORT,..@PID,.. (A and B run alternately, A first)";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = dispatch(&args).await {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    }
}

async fn dispatch(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let num = |i: usize| -> Result<usize, String> {
        arg(i)?.parse().map_err(|e| format!("argument {i}: {e}"))
    };
    match arg(0)? {
        "rows" => {
            let (a, b) = (Target::parse(arg(1)?)?, Target::parse(arg(2)?)?);
            let secs = Duration::from_secs(num(3)? as u64);
            let rows = args[4..]
                .iter()
                .map(|w| Workload::parse(w))
                .collect::<Result<Vec<_>, _>>()?;
            rows_table(&a, &b, secs, &rows).await
        }
        "load" => {
            let t = Target::parse(arg(1)?)?;
            let secs = Duration::from_secs(num(2)? as u64);
            let w = Workload::parse(arg(3)?)?;
            let (o, samples) = load::run_sampled(&t, w, "/bench-load", secs)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(path) = args.get(4) {
                stats::save_samples(path, &samples).map_err(|e| format!("{path}: {e}"))?;
            }
            println!(
                "{} {}: {:.0} ops/s, p50 / p99 / p999 {:.2} / {:.2} / {:.2} ms, {:.0} server µs/op, {} errors",
                t.name,
                w.label(),
                o.ops_per_sec,
                o.quantile_ms(0.5),
                o.quantile_ms(0.99),
                o.quantile_ms(0.999),
                o.cpu_us_per_op,
                o.errors
            );
            Ok(())
        }
        "watch" => {
            let (a, b) = (Target::parse(arg(1)?)?, Target::parse(arg(2)?)?);
            let (n, rounds) = (num(3)?, num(4)?);
            let label = format!("watch notification, {n} watchers");
            let ra = scenarios::watch_latency(&a, n, rounds)
                .await
                .map_err(|e| e.to_string())?;
            let rb = scenarios::watch_latency(&b, n, rounds)
                .await
                .map_err(|e| e.to_string())?;
            print_pair(&a, &b, &label, &ra, &rb);
            Ok(())
        }
        "sessions" => {
            let (a, b) = (Target::parse(arg(1)?)?, Target::parse(arg(2)?)?);
            let (n, secs) = (num(3)?, Duration::from_secs(num(4)? as u64));
            let label = format!("session creation, {n} in parallel");
            let ra = scenarios::session_rate(&a, n, secs).await;
            let rb = scenarios::session_rate(&b, n, secs).await;
            print_pair(&a, &b, &label, &ra, &rb);
            Ok(())
        }
        "gap" => {
            let t = Target::parse(arg(1)?)?;
            let ms = scenarios::write_gap(&t, num(2)?).await?;
            println!("{} write gap after killing the leader: {ms:.0} ms", t.name);
            Ok(())
        }
        "reconnect" => {
            let t = Target::parse(arg(1)?)?;
            let n = num(2)?;
            let ms = scenarios::reconnect_all(&t, n).await?;
            println!(
                "{} all {n} sessions back after killing the leader: {ms:.0} ms",
                t.name
            );
            Ok(())
        }
        other => Err(format!("unknown mode {other}")),
    }
}

/// Runs every workload against `a` then `b` and prints the table.
async fn rows_table(
    a: &Target,
    b: &Target,
    secs: Duration,
    rows: &[Workload],
) -> Result<(), String> {
    println!("{}", header(&a.name, &b.name));
    for (i, w) in rows.iter().enumerate() {
        let root = format!("/bench-{i}-{}", w.op.label().replace(['%', ' '], ""));
        let ra = load::run(a, *w, &root, secs)
            .await
            .map_err(|e| format!("{}: {e}", a.name))?;
        let rb = load::run(b, *w, &root, secs)
            .await
            .map_err(|e| format!("{}: {e}", b.name))?;
        println!("{}", row(&w.label(), &ra, &rb));
    }
    Ok(())
}

fn print_pair(a: &Target, b: &Target, label: &str, ra: &Outcome, rb: &Outcome) {
    println!("{}", header(&a.name, &b.name));
    println!("{}", row(label, ra, rb));
}
