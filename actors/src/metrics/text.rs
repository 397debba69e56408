//! Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE` and samples.

use super::summary::{SummarySnapshot, QUANTILES};
use std::fmt::Write;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds one exposition; each metric family is written whole.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// A sample value as Prometheus reads it: integers without a fraction, `NaN`, `+Inf`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str) {
        // ZooKeeper's provider uses the metric name as its help text.
        let _ = writeln!(self.out, "# HELP {name} {name}\n# TYPE {name} {kind}");
    }

    /// A gauge.
    pub fn gauge(&mut self, name: &str, value: f64) {
        self.header(name, "gauge");
        let _ = writeln!(self.out, "{name} {}", number(value));
    }

    /// A counter (named as ZooKeeper 3.8's client library does, without `_total`).
    pub fn counter(&mut self, name: &str, value: u64) {
        self.header(name, "counter");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A summary in milliseconds: its quantiles, `_count` and `_sum`.
    pub fn summary(&mut self, name: &str, s: &SummarySnapshot) {
        self.header(name, "summary");
        for (q, v) in QUANTILES.iter().zip(s.quantiles) {
            let _ = writeln!(self.out, "{name}{{quantile=\"{q}\"}} {}", number(v));
        }
        let _ = writeln!(self.out, "{name}_count {}", s.count);
        let _ = writeln!(self.out, "{name}_sum {}", number(s.sum_ms));
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_the_text_format() {
        let mut e = Exposition::default();
        e.gauge("znode_count", 5.0);
        e.counter("looking_count", 2);
        e.summary(
            "fsynctime",
            &SummarySnapshot {
                count: 3,
                sum_ms: 4.5,
                min_ms: 1.0,
                max_ms: 2.0,
                quantiles: [1.0, 2.0, f64::NAN],
            },
        );
        assert_eq!(
            e.finish(),
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5\n\
             # HELP looking_count looking_count\n# TYPE looking_count counter\nlooking_count 2\n\
             # HELP fsynctime fsynctime\n# TYPE fsynctime summary\n\
             fsynctime{quantile=\"0.5\"} 1\nfsynctime{quantile=\"0.9\"} 2\n\
             fsynctime{quantile=\"0.99\"} NaN\nfsynctime_count 3\nfsynctime_sum 4.5\n"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.25), "0.25");
    }
}
