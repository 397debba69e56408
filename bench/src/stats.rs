//! Latency percentiles and the markdown table.

use crate::load::Sample;
use std::io::Write;
use std::time::Duration;

/// What one run of one workload against one system gave.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Operations completed per second.
    pub ops_per_sec: f64,
    /// Latencies in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Server CPU (all servers) per operation, in microseconds.
    pub cpu_us_per_op: f64,
    /// Operations that failed.
    pub errors: u64,
}

impl Outcome {
    /// Builds an outcome from raw latencies over `elapsed`, with `cpu` server seconds spent.
    pub fn new(mut latencies_us: Vec<u64>, errors: u64, elapsed: Duration, cpu: f64) -> Outcome {
        latencies_us.sort_unstable();
        let n = latencies_us.len() as f64;
        Outcome {
            ops_per_sec: n / elapsed.as_secs_f64(),
            cpu_us_per_op: if n > 0.0 { cpu * 1e6 / n } else { 0.0 },
            latencies_us,
            errors,
        }
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies_us, q)
    }
}

/// The `q` quantile of sorted microsecond samples, in milliseconds.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

/// Writes `samples` to a new file at `path`, one `SENT_UNIX_US LATENCY_US` line each.
pub fn save_samples(path: &str, samples: &[Sample]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_samples(&mut out, samples)?;
    out.flush()
}

/// Writes one `SENT_UNIX_US LATENCY_US` line per sample.
fn write_samples(out: &mut impl Write, samples: &[Sample]) -> std::io::Result<()> {
    for s in samples {
        writeln!(out, "{} {}", s.sent_unix_us, s.latency_us)?;
    }
    Ok(())
}

/// Header of the comparison table.
pub fn header(a: &str, b: &str) -> String {
    format!(
        "| workload | {a} ops/s | {b} ops/s | throughput {a}/{b} | {a} p50 / p99 / p999 ms | \
         {b} p50 / p99 / p999 ms | p99 {a}/{b} | server CPU µs/op {a} / {b} |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
}

/// One row of the comparison table.
pub fn row(label: &str, a: &Outcome, b: &Outcome) -> String {
    let pct = |o: &Outcome| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999)
        )
    };
    let errors = if a.errors + b.errors > 0 {
        format!(" (errors {} / {})", a.errors, b.errors)
    } else {
        String::new()
    };
    format!(
        "| {label}{errors} | {:.0} | {:.0} | {:.2}x | {} | {} | {:.2}x | {:.0} / {:.0} |",
        a.ops_per_sec,
        b.ops_per_sec,
        a.ops_per_sec / b.ops_per_sec,
        pct(a),
        pct(b),
        a.quantile_ms(0.99) / b.quantile_ms(0.99),
        a.cpu_us_per_op,
        b.cpu_us_per_op
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_sample_at_or_above_the_rank() {
        let us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&us, 0.5), 50.0);
        assert_eq!(quantile_ms(&us, 0.99), 99.0);
        assert_eq!(quantile_ms(&us, 0.999), 100.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn samples_are_written_one_line_each() {
        let samples = [
            Sample {
                sent_unix_us: 1_764_645_874_000_001,
                latency_us: 812,
            },
            Sample {
                sent_unix_us: 1_764_645_874_000_050,
                latency_us: 3,
            },
        ];
        let mut out = Vec::new();
        write_samples(&mut out, &samples).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1764645874000001 812\n1764645874000050 3\n"
        );
    }
}
